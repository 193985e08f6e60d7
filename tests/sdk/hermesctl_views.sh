#!/bin/sh
# hermesctl's views (tags, entries, locks, explain, stats) against a private
# redis-server and entries another process wrote (tests/sdk/write_entries):
# fresh entries, then the stale ones a clean made, naming the moved tag, and
# the counters a running process publishes.  A missing redis-server fails
# the test: install it with `apt-get install redis-server`.  Run by
# `make check` with HERMES_TEST_BUILDDIR set; every assertion prints what
# it expected when it fails.
set -u

builddir=${HERMES_TEST_BUILDDIR:?HERMES_TEST_BUILDDIR is not set}
ctl=$builddir/hermesctl
writer=$builddir/tests/sdk/write_entries
server=${HERMES_REDIS_SERVER:-redis-server}
failures=0
unset HERMES_CONFIG HERMES_PLUGIN_PATH

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hermesctl-views.XXXXXX") || exit 99
sock=$tmp/redis.sock
cleanup() {
    [ -f "$tmp/redis.pid" ] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

command -v "$server" >/dev/null 2>&1 || {
    echo "FAILED: $server not found: apt-get install redis-server"
    exit 99
}
"$server" --port 0 --unixsocket "$sock" --save '' --appendonly no \
    --daemonize yes --pidfile "$tmp/redis.pid" --dir "$tmp" >/dev/null ||
    { echo "FAILED: cannot start $server"; exit 99; }
i=0
while [ ! -S "$sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$sock" ] || { echo "FAILED: $server did not come up"; exit 99; }

cat >"$tmp/redis.ini" <<EOI
[hermes]
backend = redis
plugin_path = $builddir/plugins/redis
prefix = views
publish_interval_ms = 100
[redis]
socket = $sock
EOI

fail() {
    echo "FAIL: $1"
    echo "  command output was:"
    sed 's/^/    /' "$tmp/out"
    failures=$((failures + 1))
}
pass() { echo "PASS: $1"; }

# run EXPECTED_STATUS ARGS...: hermesctl's stdout and stderr in $tmp/out.
run() {
    want=$1
    shift
    "$ctl" -c "$tmp/redis.ini" "$@" >"$tmp/out" 2>&1
    got=$?
    [ "$got" -eq "$want" ] && return 0
    fail "hermesctl $*: expected exit status $want, got $got"
    return 1
}
# expect DESCRIPTION EXTENDED-REGEX: a line of the last output matches.
expect() {
    if grep -Eq -- "$2" "$tmp/out"; then pass "$1"; else
        fail "$1: expected a line matching '$2'"; fi
}
# count DESCRIPTION N EXTENDED-REGEX: exactly N lines match.
count() {
    n=$(grep -Ec -- "$3" "$tmp/out")
    if [ "$n" -eq "$2" ]; then pass "$1"; else
        fail "$1: expected $2 lines matching '$3', got $n"; fi
}
tab=$(printf '\t')

"$writer" "$tmp/redis.ini" fill || { echo "FAILED: write_entries fill"; exit 1; }

# --- fresh: what the writer stored, as it stored it
if run 0 entries; then
    count "entries lists the writer's 4 entries" 4 "views:entry:"
    count "power's two entries are fresh" 2 "^fresh${tab}power${tab}"
    expect "square's entry is fresh" "^fresh${tab}square${tab}[0-9]+${tab}"
    expect "hermes_set's entry has no function" \
        "^fresh${tab}-${tab}[0-9]+${tab}[0-9.]+${tab}views:entry:plain${tab}-$"
    expect "the total counts 4 fresh entries" "^total: 4 entries, fresh 4 "
fi
if run 0 tags; then
    expect "tags lists math with its 3 entries, none stale" \
        "^math${tab}[A-Za-z0-9_-]{22}${tab}3${tab}0${tab}0$"
    expect "tags lists ints with its 2 entries" "^ints${tab}[^${tab}]+${tab}2${tab}0"
    expect "tags counts two tags" "^total: 2 tags$"
fi
key=$("$ctl" -c "$tmp/redis.ini" entries | awk -F"$tab" '$2 == "square" { print $5 }')
if run 0 explain "$key"; then
    expect "explain names the function" "^function: square$"
    expect "explain says fresh" "^state: fresh: "
    expect "explain shows math stored = current" \
        "^tag 'math': stored ([0-9a-f]{16}), current \\1 \\(same\\)$"
fi

# --- stale: a clean of math.  Records name tags by a 32-bit id; with no
# tag key and no process publishing the tag lists, the name is unknown.
if run 0 clean math; then pass "clean math"; fi
if run 0 entries; then
    count "a clean makes the 3 math entries stale, the tag gone" 3 \
        "^stale${tab}(power|square)${tab}.*${tab}tag #[0-9a-f]{8} gone$"
    expect "the plain entry stays fresh" "^fresh${tab}-${tab}"
    expect "the total counts 3 stale entries" ", stale 3 \\([1-9][0-9]* bytes\\)"
fi
if run 0 explain "$key"; then
    expect "explain says a tag is gone, its name unknown" \
        "^state: stale: tag #[0-9a-f]{8} \\(name unknown\\) is gone"
fi

# --- a running writer publishes its counters and its functions' tag
# lists: stats shows it, and the gone tag has its name again
mkfifo "$tmp/hold"
"$writer" "$tmp/redis.ini" serve <"$tmp/hold" &
wpid=$!
exec 3>"$tmp/hold"
seen=0
i=0
while [ $i -lt 100 ]; do
    "$ctl" -c "$tmp/redis.ini" stats >"$tmp/out" 2>&1
    if grep -q "^process [^ ]*:$wpid: backend redis" "$tmp/out" &&
        grep -Eq "^  fn cube: hits [1-9]" "$tmp/out"; then
        seen=1
        break
    fi
    sleep 0.1
    i=$((i + 1))
done
if [ $seen -eq 1 ]; then
    pass "stats shows the running writer's process"
    expect "stats shows its hits" "^  hits: [1-9]"
    expect "stats shows power's tag list" \
        "^  fn power: hits 0, misses 0, tags ints math$"
    expect "stats shows cube's hits and misses" \
        "^  fn cube: hits [1-9][0-9]*, misses 1, tags$"
    expect "stats shows wait percentiles" "^  lock_wait_p99_us: [0-9]+$"
    expect "stats still shows the backend's own statistics" "^[a-z_]+: "
    if run 0 entries; then
        count "with the tag lists published, the stale entries name math" 3 \
            "^stale${tab}(power|square)${tab}.*${tab}tag math gone$"
    fi
    if run 0 explain "$key"; then
        expect "explain says math is gone" "^state: stale: tag 'math' is gone"
        expect "explain shows math's stored version and none now" \
            "^tag 'math': stored [0-9a-f]{16}, current none \\(gone\\)$"
    fi
else
    fail "stats did not show process $wpid within 10 s"
fi
exec 3>&-
wait $wpid || fail "write_entries serve failed"
# A closed handle removes its key.
if run 0 stats; then
    count "a writer that closed is no longer listed" 0 ":$wpid: backend"
fi

# --- moved: the writer's calls recompute the stale entries; a new clean
# and power's call create math anew, and square's entry carries the
# version before
"$writer" "$tmp/redis.ini" fill || { echo "FAILED: write_entries fill"; exit 1; }
if run 0 entries; then
    count "the writer's calls recompute every stale entry" 0 "^stale"
fi
run 0 clean math
"$writer" "$tmp/redis.ini" once || fail "write_entries once"
if run 0 entries; then
    expect "square's entry is stale: math moved" \
        "^stale${tab}square${tab}.*${tab}tag math moved$"
    count "power(2,10) is fresh again, power(3,3) stale" 1 "^fresh${tab}power"
fi
if run 0 explain "$key"; then
    expect "explain says math moved" \
        "^state: stale: tag 'math' moved from [0-9a-f]{16} to [0-9a-f]{16}"
    expect "explain marks math moved" \
        "^tag 'math': stored [0-9a-f]{16}, current [0-9a-f]{16} \\(moved\\)$"
fi
if run 0 tags; then
    expect "tags counts math's 2 stale entries" \
        "^math${tab}[A-Za-z0-9_-]{22}${tab}3${tab}2${tab}[1-9][0-9]*$"
fi

# --- locks: none held once the writers are done
if run 0 locks; then
    expect "no locks are held" "^total: 0 locks$"
fi

# --- usage
if run 2 explain; then pass "explain without a key exits 2"; fi
if run 1 explain nosuchkey; then
    expect "explain of a missing key says so" "no entry 'nosuchkey'"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures assertion(s) failed"
    exit 1
fi
exit 0
