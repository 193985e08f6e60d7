#!/bin/sh
# Runs hermes-conformance against the built-in dict backend, against the
# same backend loaded from its module file (dict.la, with a config file),
# and against a deliberately broken plugin (tests/sdk/broken_lock.la,
# whose unlock ignores the owner token), which it must fail by name.
# Run by `make check` with HERMES_TEST_BUILDDIR set.
set -u

builddir=${HERMES_TEST_BUILDDIR:-.}
conf="$builddir/hermes-conformance"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hconf-dict.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAILED: $*"
    echo "--- stdout"
    cat "$tmp/out"
    echo "--- stderr"
    cat "$tmp/err"
    failures=$((failures + 1))
}

# Runs the suite; $1 describes the run, the rest are its arguments.
run() {
    what=$1
    shift
    echo "== $what: hermes-conformance $*"
    "$conf" "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
    cat "$tmp/out"
    summary=$(tail -n 1 "$tmp/out")
}

# Every check passes: exit 0, no FAIL line, "N passed, 0 failed" last.
expect_pass() {
    run "$@"
    if [ "$status" -ne 0 ]; then
        fail "$what: exit status $status, want 0"
    elif grep -q '^FAIL ' "$tmp/out"; then
        fail "$what: FAIL lines despite exit status 0"
    elif ! echo "$summary" | grep -Eq '^[1-9][0-9]* passed, 0 failed$'; then
        fail "$what: last line '$summary' is not a clean summary"
    fi
}

[ -x "$conf" ] || { echo "$conf not built"; exit 99; }

# dict's default memory limit (64 MiB over 16 shards) leaves each shard a
# 4 MiB budget, too small for the suite's 4 MiB value, so it gets more.
printf '[hermes]\nbackend = dict\n\n[dict]\nmax_bytes = 268435456\n' \
    >"$tmp/dict.ini"
expect_pass "built-in dict" -c "$tmp/dict.ini" dict
expect_pass "dict module" -c "$tmp/dict.ini" "$builddir/plugins/dict/dict.la"
expect_pass "dict named by the config's backend" -c "$tmp/dict.ini"

# The broken plugin: exit 1, failures counted, the defect named.
run "broken plugin" "$builddir/tests/sdk/broken_lock.la"
if [ "$status" -ne 1 ]; then
    fail "broken plugin: exit status $status, want 1"
elif ! grep -q '^FAIL unlock_wrong_token: ' "$tmp/out"; then
    fail "broken plugin: no 'FAIL unlock_wrong_token:' line"
elif ! echo "$summary" | grep -Eq '^[0-9]+ passed, [1-9][0-9]* failed$'; then
    fail "broken plugin: last line '$summary' reports no failure"
elif ! grep -q '^ok   set_if_absent_race$' "$tmp/out"; then
    fail "broken plugin: checks unrelated to the defect did not pass"
fi

# A plugin that cannot be loaded is one failed check, not a crash.
run "missing plugin" no_such_plugin_hconf
if [ "$status" -ne 1 ] || ! grep -q '^FAIL load: ' "$tmp/out" ||
    [ "$summary" != "0 passed, 1 failed" ]; then
    fail "missing plugin: want exit 1, 'FAIL load:' and '0 passed, 1 failed'"
fi

# A config key the plugin does not know makes open fail, naming it.
printf '[dict]\nno_such_key = 1\n' >"$tmp/bad.ini"
run "unknown config key" -c "$tmp/bad.ini" dict
if [ "$status" -ne 1 ] || ! grep -q '^FAIL open: .*no_such_key' "$tmp/out"; then
    fail "unknown config key: want exit 1 and 'FAIL open: ...no_such_key'"
fi

[ "$failures" -eq 0 ] || exit 1
exit 0
