#!/bin/sh
# Runs hermes-conformance against the memcached plugin and a pool of two
# private memcached servers (loopback, free ports, nothing on disk),
# including the checks for a server that goes away and comes back (the
# second server is killed and restarted).  A missing memcached fails the
# test: install it with `apt-get install memcached`.
# Run by `make check` with HERMES_TEST_BUILDDIR set.
set -u
. "$(dirname "$0")/conformance_lib.sh"

builddir=$(cd "${HERMES_TEST_BUILDDIR:-.}" && pwd)
conf="$builddir/hermes-conformance"
server=${HERMES_MEMCACHED:-memcached}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hconf-mc.XXXXXX") || exit 99
user=""
[ "$(id -u)" = 0 ] && user="-u root" # memcached refuses root without -u

cleanup() {
    for p in "$tmp"/*.pid; do
        [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

[ -x "$conf" ] || { echo "$conf not built"; exit 99; }
command -v "$server" >/dev/null 2>&1 || {
    echo "FAILED: $server not found: apt-get install memcached"
    exit 99
}
# A free loopback port: memcached exits at once when its port is taken.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
up() { # port
    python3 - "$1" <<'EOP'
import socket, sys, time
end = time.time() + 5
while time.time() < end:
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)
        s.sendall(b"version\r\n")
        if s.recv(64).startswith(b"VERSION"):
            sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
EOP
}
pa=$(free_port) && pb=$(free_port) || { echo "FAILED: no free port"; exit 99; }
start_a="$server -d -l 127.0.0.1 -U 0 -p $pa $user -P $tmp/a.pid"
start_b="$server -d -l 127.0.0.1 -U 0 -p $pb $user -P $tmp/b.pid"
sh -c "$start_a" && sh -c "$start_b" || { echo "FAILED: cannot start $server"; exit 99; }
up "$pa" && up "$pb" || { echo "FAILED: $server did not come up"; exit 99; }

cat >"$tmp/memcached.ini" <<EOI
[hermes]
backend = memcached
plugin_path = $builddir/plugins/memcached
[memcached]
servers = 127.0.0.1:$pa, 127.0.0.1:$pb
connect_timeout_ms = 200
poll_timeout_ms = 500
retry_timeout_s = 1
EOI

# The kill takes the whole pool away (every key fails); the restart brings
# both back.
stop="kill -9 \$(cat $tmp/a.pid) \$(cat $tmp/b.pid)"
restart="$start_a && $start_b"
# --ttl-late 2500: memcached keeps keys up to 2 s past their TTL (the
# plugin pads TTLs by 2 s so that a skipped tick of memcached's clock
# never drops one early; README "TTLs").
"$conf" -c "$tmp/memcached.ini" --ttl-late 2500 --kill-cmd "$stop" --restart-cmd "$restart" \
    memcached >"$tmp/out" 2>"$tmp/err"
status=$?
# memcached cannot delete by prefix and says so (HERMES_CAP_NO_PREFIX_FLUSH):
# the kit checks that its flush() answers UNSUPPORTED and deletes nothing.
# No failure is allowed; a skip is (long_key: memcached's keys are at most
# 250 bytes, which the kit reports as a skip).
conformance_skips=allowed
conformance_verdict "memcached" $status "$tmp/out" "$tmp/err" \
    server_gone server_back set_if_absent_race lock_race lock_ttl_takeover \
    unlock_owner ttl_expiry batch_duplicates flush_prefix
# hermesctl on the same pool says which flush memcached has.
ctl_out=$("$builddir/hermesctl" -c "$tmp/memcached.ini" check 2>&1 &&
    "$builddir/hermesctl" -c "$tmp/memcached.ini" flush 2>&1) || {
    echo "FAILED: hermesctl check/flush on memcached: $ctl_out"
    exit 1
}
for want in "flush: through the namespace key cache:ns (backend memcached" \
    "ok: invalidated every entry under 'cache:' (backend memcached"; do
    echo "$ctl_out" | grep -qF "$want" || {
        echo "FAILED: hermesctl does not say '$want':"
        echo "$ctl_out"
        exit 1
    }
done
echo "conformance memcached: ok"
