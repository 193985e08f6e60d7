#!/bin/sh
# hermes-inspector -c against a private redis-server, in a real terminal:
# another process (tests/inspector/writer) caches 9 tagged entries and holds
# one lock; the inspector must show them, the writer's lock and published
# counters; then the test selects tag alpha, presses i and confirms, and the
# screen must show alpha's version gone, its 7 entries stale and the garbage
# count rise from 0 to 7; q exits 0 with the terminal restored.  --json is
# checked field by field before and after (check_json.py).  A missing
# redis-server or tmux fails the test.  Run by `make check`.
set -u

builddir=${HERMES_TEST_BUILDDIR:?HERMES_TEST_BUILDDIR is not set}
srcdir=${HERMES_TEST_SRCDIR:?HERMES_TEST_SRCDIR is not set}
insp=$builddir/hermes-inspector
writer=$builddir/tests/inspector/writer
server=${HERMES_REDIS_SERVER:-redis-server}
unset HERMES_CONFIG
tmp=$(mktemp -d "${TMPDIR:-/tmp}/insp-redis.XXXXXX") || exit 99
. "$srcdir/tests/inspector/tmux.sh"

writer_pid=
cleanup() {
    $T kill-server 2>/dev/null
    [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null
    [ -f "$tmp/redis.pid" ] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

for f in "$insp" "$writer"; do
    [ -x "$f" ] || { echo "FAILED: $f not built"; exit 99; }
done
command -v "$server" >/dev/null 2>&1 || {
    echo "FAILED: $server not found: apt-get install redis-server"
    exit 99
}
sock=$tmp/redis.sock
"$server" --port 0 --unixsocket "$sock" --save '' --appendonly no \
    --daemonize yes --pidfile "$tmp/redis.pid" --dir "$tmp" >/dev/null ||
    { echo "FAILED: cannot start $server"; exit 99; }
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$sock" ] || { echo "FAILED: $server did not come up"; exit 99; }

cat >"$tmp/redis.ini" <<EOI
[hermes]
backend = redis
plugin_path = $builddir/plugins/redis
prefix = insptest
publish_stats = yes
publish_interval_ms = 200
lock_ttl_ms = 600000
[redis]
socket = $sock
EOI

"$writer" "$tmp/redis.ini" "$tmp/ready" >"$tmp/writer.out" 2>&1 &
writer_pid=$!
wait_file "the writer cached its entries and holds its lock" "$tmp/ready" || {
    cat "$tmp/writer.out"
    exit 1
}
host=$(python3 -c 'import socket; print(socket.gethostname()[:63])')

# --- --json before: what the writer wrote, field by field
json_check() { # PHASE
    if "$insp" -c "$tmp/redis.ini" --json >"$tmp/$1.json" 2>"$tmp/$1.err"; then
        if python3 "$srcdir/tests/inspector/check_json.py" "$tmp/$1.json" "$1" \
            "$writer_pid" "$host"; then
            pass "--json $1 the invalidation: every field as written"
        else
            fail "--json $1 the invalidation"
        fi
    else
        fail "--json $1: exit status $?: $(cat "$tmp/$1.err")"
    fi
}
# The writer publishes its counters at its next call after 200 ms.
deadline=$(($(date +%s) + WAIT_SECONDS))
until "$insp" -c "$tmp/redis.ini" --json 2>/dev/null | grep -q "\"pid\":$writer_pid,\"age_ms\""; do
    [ "$(date +%s)" -ge "$deadline" ] && break
    sleep 0.1
done
json_check before

# --- --once: the same snapshot as text
if "$insp" -c "$tmp/redis.ini" --once >"$tmp/once.txt" 2>&1; then
    for want in '^9 entries: 9 fresh, 0 stale, 0 expired, 0 foreign, 0 corrupt' \
        '^alpha +[^ ]+ +7 +0 ' '^profile +[^ ]+ +fresh ' \
        "^slow:[^ ]+ +$host:$writer_pid " "^$host:$writer_pid +[0-9]+ "; do
        grep -Eq -- "$want" "$tmp/once.txt" && pass "--once: $want" ||
            { fail "--once: no line matching $want"; cat "$tmp/once.txt"; }
    done
else
    fail "--once: exit status $?: $(cat "$tmp/once.txt")"
fi

# --- the screen
start_pane "$(pane_command "'$insp' -c '$tmp/redis.ini' -r 0.2")"
wait_screen "Tags shows alpha on 7 entries, none stale" \
    '^alpha +[^ ]+ +7 +0 +[^ ]+\|' || exit 1
version_before=$(field 2)
wait_screen "Tags shows beta on 3 entries" '^beta +[^ ]+ +3 +0 ' &&
    beta_before=$(field 2)
wait_screen "Tags shows gamma on 2 entries" '^gamma +[^ ]+ +2 +0 '
wait_screen "the title counts 9 entries, none stale" '9 entries, 0 stale'
wait_screen "Garbage's total: 9 entries, 0 stale" '\|total +9 +0 '
wait_screen "Entries shows profile's fresh entries with tag alpha" \
    '^profile +[^ ]+ +fresh +[0-9.]+[BK] +[0-9]+m +alpha'
wait_screen "Entries shows feed's entries with tags alpha,beta" \
    '^feed +[^ ]+ +fresh .* alpha,beta'
wait_screen "Locks shows the writer's lock on slow with its owner" \
    "^slow:[^ ]+ +$host:$writer_pid +[0-9.]+m?s"
wait_screen "Processes shows the writer's published counters" \
    "^$host:$writer_pid +[0-9]+ +[0-9]+ +[0-9]+ "

# select alpha (/ filters to it), i, confirm
keys / a l p h a Enter
wait_screen "the filter is shown" '\[/alpha\]'
wait_screen "only alpha is left in Tags" '^Tags 1/3 '
keys i
wait_screen "i asks for confirmation" "Invalidate tag 'alpha'\\?"
wait_screen "the dialog says how many entries turn stale" \
    'Its 7 entries turn stale'
keys y
wait_screen "the status line says it was done" 'tag alpha invalidated'
wait_screen "alpha's version changed: its key is gone, its 7 entries stale" \
    '^alpha +\(gone\) +7 +7 +[0-9.]+m?s'
[ "$version_before" != "(gone)" ] &&
    pass "alpha had a version before ($version_before)" ||
    fail "alpha had no version before"
keys Escape
wait_screen "the title counts 7 stale" '9 entries, 7 stale'
wait_screen "Garbage's total rose to 7 stale" '\|total +9 +7 '
wait_screen "Garbage: profile's 4 entries are stale" '\|profile +4 +4 '
wait_screen "Garbage: feed's 3 entries are stale" '\|feed +3 +3 '
wait_screen "Garbage: other's 2 are not" '\|other +2 +0 '
wait_screen "Entries: a profile entry is stale because alpha moved" \
    '^profile +[^ ]+ +stale .* alpha +alpha$'
wait_screen "beta keeps its version; its 3 entries carry alpha too: stale" \
    '^beta +[^ ]+ +3 +3 ' && [ "$(field 2)" = "${beta_before:-}" ] &&
    pass "beta's version is the same" || fail "beta's version changed"
keys q
check_clean_exit

json_check after

kill "$writer_pid"
wait "$writer_pid"
status=$?
writer_pid=
[ $status = 0 ] && pass "the writer exits cleanly" ||
    { fail "writer exit status $status"; cat "$tmp/writer.out"; }

if [ $failures -ne 0 ]; then
    echo "FAILED: $failures checks"
    exit 1
fi
echo "inspector over redis: ok"
