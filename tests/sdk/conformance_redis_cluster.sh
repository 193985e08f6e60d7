#!/bin/sh
# Runs hermes-conformance against the redis plugin on a private Redis
# Cluster of three masters (cluster = ..., no persistence), including the
# checks for a cluster that goes away (every node killed) and comes back
# (restarted on the same ports, from its nodes.conf).  A missing
# redis-server or redis-cli fails the test: apt-get install redis-server.
# Run by `make check` with HERMES_TEST_BUILDDIR set.
set -u
. "$(dirname "$0")/conformance_lib.sh"

builddir=${HERMES_TEST_BUILDDIR:-.}
conf="$builddir/hermes-conformance"
server=${HERMES_REDIS_SERVER:-redis-server}
cli=${HERMES_REDIS_CLI:-redis-cli}
[ -x "$conf" ] || { echo "$conf not built"; exit 99; }
for b in "$server" "$cli"; do
    command -v "$b" >/dev/null 2>&1 || {
        echo "FAILED: $b not found: apt-get install redis-server"
        exit 99
    }
done

# start_node DIR PORT: a cluster node; waits until it answers PING.
start_node() {
    mkdir -p "$1"
    rm -f "$1/pid"
    "$server" --port "$2" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
        --save '' --appendonly no --daemonize yes --pidfile "$1/pid" \
        --dir "$1" --logfile "$1/log" || return 1
    i=0
    while [ $i -lt 100 ]; do
        "$cli" -p "$2" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
        i=$((i + 1))
    done
    [ -f "$1/pid" ] && kill -9 "$(cat "$1/pid")" 2>/dev/null
    return 1
}

# cluster_ok: every node says cluster_state:ok (up to 20 s).
cluster_ok() {
    i=0
    while [ $i -lt 400 ]; do
        ok=1
        for p in $ports; do
            "$cli" -p "$p" cluster info 2>/dev/null |
                grep -q '^cluster_state:ok' || ok=0
        done
        [ $ok = 1 ] && return 0
        sleep 0.05
        i=$((i + 1))
    done
    echo "FAILED: the cluster did not reach cluster_state:ok" >&2
    return 1
}

# The --restart-cmd: `sh THIS --restart DIR PORTS...` starts the killed
# nodes again on their ports and waits for the cluster.
if [ "${1:-}" = --restart ]; then
    tmp=$2
    shift 2
    ports="$*"
    for p in $ports; do start_node "$tmp/n$p" "$p" || exit 1; done
    cluster_ok
    exit
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hconf-cluster.XXXXXX") || exit 99
ports=""
cleanup() {
    for d in "$tmp"/n*; do
        [ -f "$d/pid" ] && kill -9 "$(cat "$d/pid")" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# Three masters on free ports whose bus ports (+10000) are free too.
n=0
while [ $n -lt 3 ]; do
    p=$(( $(od -An -N2 -tu2 /dev/urandom) % 25000 + 20000 ))
    if start_node "$tmp/n$p" "$p"; then
        ports="$ports $p"
        n=$((n + 1))
    fi
done
nodes=""
seeds=""
for p in $ports; do
    nodes="$nodes 127.0.0.1:$p"
    seeds="${seeds:+$seeds, }127.0.0.1:$p"
done
# shellcheck disable=SC2086
"$cli" --cluster create $nodes --cluster-replicas 0 --cluster-yes \
    >"$tmp/create.log" 2>&1 || {
    cat "$tmp/create.log"
    echo "FAILED: $cli --cluster create"
    exit 99
}
cluster_ok || exit 99

cat >"$tmp/cluster.ini" <<EOI
[hermes]
backend = redis
plugin_path = $builddir/plugins/redis
[redis]
cluster = $seeds
connect_timeout_ms = 200
command_timeout_ms = 1000
# A limit the value_limit check finds, so that it also checks TOOBIG.
max_value_bytes = 1048576
EOI

# Kill every node; restart them on their ports, from nodes.conf.
# The nodes of the cluster only: a port found taken left a directory with
# no pid behind.
kill_cmd="for p in$ports; do kill -9 \$(cat $tmp/n\$p/pid); done"
"$conf" -v -c "$tmp/cluster.ini" --kill-cmd "$kill_cmd" \
    --restart-cmd "sh $0 --restart $tmp$ports" >"$tmp/out" 2>"$tmp/err"
status=$?
conformance_verdict "redis cluster" $status "$tmp/out" "$tmp/err" \
    server_gone server_back set_if_absent_race lock_ttl_takeover value_limit \
    two_states batch_duplicates lock_ttl_zero ttl_expiry
echo "conformance redis cluster: ok"
