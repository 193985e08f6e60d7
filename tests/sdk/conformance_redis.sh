#!/bin/sh
# Runs hermes-conformance against the redis plugin and a private
# redis-server (unix socket only, no persistence), including the checks for
# a server that goes away and comes back.  A missing redis-server fails the
# test: install it with `apt-get install redis-server`.
# Run by `make check` with HERMES_TEST_BUILDDIR set.
set -u
. "$(dirname "$0")/conformance_lib.sh"

builddir=${HERMES_TEST_BUILDDIR:-.}
conf="$builddir/hermes-conformance"
server=${HERMES_REDIS_SERVER:-redis-server}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hconf-redis.XXXXXX") || exit 99
sock="$tmp/redis.sock"
start="$server --port 0 --unixsocket $sock --save '' --appendonly no --daemonize yes --pidfile $tmp/redis.pid --dir $tmp"
stop='kill -9 $(cat '"$tmp"'/redis.pid); rm -f '"$sock"

cleanup() {
    [ -f "$tmp/redis.pid" ] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

[ -x "$conf" ] || { echo "$conf not built"; exit 99; }
command -v "$server" >/dev/null 2>&1 || {
    echo "FAILED: $server not found: apt-get install redis-server"
    exit 99
}
sh -c "$start" || { echo "FAILED: cannot start $server"; exit 99; }
i=0
while [ ! -S "$sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$sock" ] || { echo "FAILED: $server did not come up"; exit 99; }

cat >"$tmp/redis.ini" <<EOI
[hermes]
backend = redis
plugin_path = $builddir/plugins/redis
[redis]
socket = $sock
connect_timeout_ms = 200
command_timeout_ms = 1000
# A limit the value_limit check finds, so that it also checks TOOBIG.
max_value_bytes = 1048576
EOI

# After the restart the socket takes a moment to appear.
restart="$start && while [ ! -S $sock ]; do sleep 0.05; done"
"$conf" -v -c "$tmp/redis.ini" --kill-cmd "$stop" --restart-cmd "$restart" \
    >"$tmp/out" 2>"$tmp/err"
status=$?
conformance_verdict "redis" $status "$tmp/out" "$tmp/err" \
    server_gone server_back set_if_absent_race lock_ttl_takeover value_limit \
    two_states batch_duplicates lock_ttl_zero ttl_expiry
# value_limit found max_value_bytes, so TOOBIG past it was checked too.
grep -q '^#   the largest value stored is 10485[0-9][0-9] bytes' "$tmp/out" || {
    echo "FAILED: value_limit did not find the 1 MiB max_value_bytes"
    exit 1
}
echo "conformance redis: ok"
