#!/bin/sh
# Runs hermes-conformance against the built-in dict backend, against the
# same backend loaded from its module file (dict.la, with a config file),
# and against deliberately broken plugins (tests/sdk/broken_*.la, built
# from tests/sdk/broken.c with one defect each), each of which it must fail
# naming the check that guards the rule the plugin breaks.
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
    # The summary counts every check reported, none dropped.
    lines=$(grep -Ec '^(ok  |FAIL|skip) ' "$tmp/out")
    counted=$(echo "$summary" |
        sed -En 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?$/\1 \2 \4/p' |
        awk '{ print $1 + $2 + $3 }')
    if [ -z "$counted" ] || [ "$counted" -ne "$lines" ]; then
        fail "$what: summary '$summary' does not count the $lines checks reported"
    fi
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

# A plugin with one defect, tests/sdk/$1.la: exit 1, failures counted in
# the summary, and "FAIL $2: ..." for the check guarding the broken rule.
# Other checks may fail too when the defect shows through them; $3, when
# given, names one unrelated check that must still pass; the rest are
# more arguments for hermes-conformance.
expect_broken() {
    plugin=$1
    check=$2
    unrelated=${3:-}
    shift 3
    run "$plugin" "$@" "$builddir/tests/sdk/$plugin.la"
    if [ "$status" -ne 1 ]; then
        fail "$plugin: exit status $status, want 1"
    elif ! grep -q "^FAIL $check: " "$tmp/out"; then
        fail "$plugin: no 'FAIL $check:' line"
    elif ! echo "$summary" | grep -Eq '^[0-9]+ passed, [1-9][0-9]* failed(, [0-9]+ skipped)?$'; then
        fail "$plugin: last line '$summary' reports no failure"
    elif [ -n "$unrelated" ] && ! grep -q "^ok   $unrelated\$" "$tmp/out"; then
        fail "$plugin: unrelated check $unrelated did not pass"
    fi
}

[ -x "$conf" ] || { echo "$conf not built"; exit 99; }

# Out of the box (value_limit finds a quarter of the 64 MiB default), then
# with a config (whose section reaches the plugin).
expect_pass "built-in dict, no config" dict
printf '[hermes]\nbackend = dict\n\n[dict]\nmax_bytes = 268435456\n' \
    >"$tmp/dict.ini"
expect_pass "built-in dict" -c "$tmp/dict.ini" dict
expect_pass "dict module" -c "$tmp/dict.ini" "$builddir/plugins/dict/dict.la"
expect_pass "dict named by the config's backend" -c "$tmp/dict.ini"

# The broken plugins: each defect caught by the check guarding its rule.
# unlock ignores the owner token.
expect_broken broken_unlock unlock_wrong_token set_if_absent_race
# set-if-absent overwrites an existing key.
expect_broken broken_add set_if_absent ttl_expiry
# set ignores ttl_ms: values never expire.
expect_broken broken_ttl ttl_expiry set_if_absent
# flush deletes every key, ignoring the prefix.
expect_broken broken_flush flush_prefix delete
# cannot flush by prefix, and its flush deletes every key but answers
# UNSUPPORTED (nothing done).
expect_broken broken_nsflush flush_prefix delete
# get reports found values at index n-1-i.
expect_broken broken_batch get_batch set_get_binary
# lock ignores its TTL: an expired lock is never free.
expect_broken broken_lockttl lock_ttl_takeover unlock_wrong_token

# set cuts TTLs to 1%: values vanish early.
expect_broken broken_ttlearly ttl_expiry set_if_absent
# set triples TTLs, and has no scan whose reported TTLs would show it.
expect_broken broken_ttllong ttl_expiry set_if_absent
# lock cuts its TTL to 1%: a second owner gets a lock still held.
expect_broken broken_lockearly lock_ttl_takeover unlock_wrong_token

# set stops at the first failing item of a batch.
expect_broken broken_stopfirst value_limit get_batch
grep -q '^FAIL value_limit: .*every item is attempted' "$tmp/out" ||
    fail "broken_stopfirst: not caught for the item after the refused one"
# An overwrite refused as too big leaves the old value readable.
expect_broken broken_keepold value_limit get_batch
grep -q '^FAIL value_limit: .*old value must not stay readable' "$tmp/out" ||
    fail "broken_keepold: not caught for the old value left readable"

# lock takes ttl 0 as "never expires".
expect_broken broken_lockzero lock_ttl_zero lock_ttl_takeover
# get reports a key repeated in its batch only once.
expect_broken broken_dupget batch_duplicates get_batch
# Every open returns one global state: two handles share a store.
expect_broken broken_global two_states get_batch
# TTLs follow the wall clock, which the kit sets a day ahead.
expect_broken broken_wallclock ttl_expiry get_batch
grep -q '^FAIL lock_ttl_takeover: ' "$tmp/out" ||
    fail "broken_wallclock: the lock TTL is not caught following the clock"
# stats runs its callback on another thread.
expect_broken broken_statsthread stats get_batch
# del returns UNSUPPORTED, which only scan and stats may.
expect_broken broken_unsupported delete get_batch

# stats crashes: that check fails (killed by SIGSEGV, or a sanitizer's
# exit), and the checks after it still run and pass.
expect_broken broken_crash stats concurrency

# scan never returns: that check fails at its deadline, the process
# running it is killed, and the checks after it still run and pass.
expect_broken broken_hang scan stats --timeout 5
grep -q '^FAIL scan: did not finish within 5 s' "$tmp/out" ||
    fail "broken_hang: scan not reported as hung"
grep -q '^ok   concurrency$' "$tmp/out" ||
    fail "broken_hang: the last check did not run after the hung one"
# get prints to stdout.
expect_broken broken_print get_missing descriptor
grep -q '^FAIL get_missing: the plugin wrote 14 bytes to standard output' \
    "$tmp/out" || fail "broken_print: the bytes printed are not reported"

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
