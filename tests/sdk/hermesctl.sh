#!/bin/sh
# Tests of hermesctl, the operator command: what it prints and how it
# exits for a good config, a bad one, an unknown backend, the plugin
# listing and a wrong command line.  Run by `make check` with
# HERMES_TEST_BUILDDIR and HERMES_TEST_SRCDIR set (see Makefile.am); every
# assertion prints what it expected when it fails, and the script exits
# non-zero if any did.

set -u

builddir=${HERMES_TEST_BUILDDIR:?HERMES_TEST_BUILDDIR is not set}
ctl=$builddir/hermesctl
failures=0

# A user's environment must not change what the tests see.
unset HERMES_CONFIG HERMES_PLUGIN_PATH

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hermesctl-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
    echo "FAIL: $1"
    echo "  command output was:"
    sed 's/^/    /' "$tmp/out"
    failures=$((failures + 1))
}

pass() {
    echo "PASS: $1"
}

# run EXPECTED_STATUS ARGS...: runs hermesctl with stdout and stderr in
# $tmp/out and checks its exit status.
run() {
    want=$1
    shift
    "$ctl" "$@" >"$tmp/out" 2>&1
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "hermesctl $*: expected exit status $want, got $got"
        return 1
    fi
    return 0
}

# expect DESCRIPTION FIXED-STRING: the last run's output contains it.
expect() {
    if grep -qF -- "$2" "$tmp/out"; then
        pass "$1"
    else
        fail "$1: expected output containing '$2'"
    fi
}

# --- check with the built-in defaults opens the dict backend
if run 0 check; then
    expect "check with defaults names the dict backend" \
        "ok: backend dict "
    expect "check with defaults says it is built in" "(built-in)"
    expect "check says the dict flushes by prefix" \
        "flush: deletes every key under 'cache:'"
fi

# --- HERMES_CONFIG is used when -c is not given
printf '[hermes]\nbackend = dict\nprefix = viaenv\n' >"$tmp/env.ini"
if HERMES_CONFIG=$tmp/env.ini run 0 check; then
    expect "check reads HERMES_CONFIG" "config: $tmp/env.ini"
fi

# --- a bad value is reported as FILE:LINE: KEY: and exits 1
printf '[hermes]\nbackend = dict\nttl = soon\n' >"$tmp/bad.ini"
if run 1 -c "$tmp/bad.ini" check; then
    expect "check with a bad config names file, line and key" \
        "$tmp/bad.ini:3: ttl:"
fi

# --- an unknown key in the backend's own section, reported by the plugin
printf '[hermes]\nbackend = dict\n\n[dict]\ncolour = blue\n' >"$tmp/badkey.ini"
if run 1 -c "$tmp/badkey.ini" check; then
    expect "check with an unknown plugin key names file, line and key" \
        "$tmp/badkey.ini:5: colour:"
fi

# --- an unknown backend: the error says where the loader looked
printf '[hermes]\nbackend = nosuchbackend\nplugin_path = %s/nowhere\n' \
    "$tmp" >"$tmp/unknown.ini"
if run 1 -c "$tmp/unknown.ini" check; then
    expect "check with an unknown backend names the plugin" \
        "plugin 'nosuchbackend' not found"
    expect "check with an unknown backend lists where it looked" \
        "looked in: $tmp/nowhere/nosuchbackend.{la,so}"
    expect "check with an unknown backend names the config line" \
        "$tmp/unknown.ini:2: backend:"
fi

# --- odd backend paths are refused with a message, never an abort inside
# libltdl (exit status 1, not 134)
for spec in / // . .. "$tmp" "$tmp/" "$builddir/plugins/dict/dict.la/"; do
    printf '[hermes]\nbackend = %s\n' "$spec" >"$tmp/odd.ini"
    if run 1 -c "$tmp/odd.ini" check; then
        expect "check with backend = $spec names the config line" \
            "$tmp/odd.ini:2: backend:"
    fi
done

# --- a backend that opens but whose server is down is not "ok": plugins
# connect lazily, so check reads a key.  Port 1 on loopback refuses at once.
if [ -f "$builddir/plugins/redis/redis.la" ]; then
    printf '[hermes]\nbackend = redis\nplugin_path = %s/plugins/redis\n\n[redis]\nhost = 127.0.0.1\nport = 1\n' \
        "$builddir" >"$tmp/down.ini"
    if run 1 -c "$tmp/down.ini" check; then
        expect "check with a dead server says the backend does not answer" \
            "backend redis ($builddir/plugins/redis/redis.la) opened but does not answer"
    fi
else
    echo "SKIP: check with a dead server (no redis plugin built)"
fi

# --- plugins lists the built-in dict
if run 0 plugins; then
    expect "plugins lists the built-in dict" "$(printf 'ok\tdict\t')"
    expect "plugins shows the built-in's path" "$(printf '\t(built-in)\t')"
fi

# --- with the build's plugin directory on the path, the dict module file
# is listed too (shadowed: "dict" by name always means the built-in)
if HERMES_PLUGIN_PATH=$builddir/plugins/dict run 0 plugins; then
    expect "plugins lists the dict module file" \
        "$builddir/plugins/dict/dict.la"
    expect "plugins marks the dict module file as shadowed" \
        "$(printf 'shadowed\tdict\t')"
fi

# --- a file that does not load is listed with the reason
mkdir "$tmp/plugins" && echo "not a shared object" >"$tmp/plugins/broken.so"
if HERMES_PLUGIN_PATH=$tmp/plugins run 0 plugins; then
    expect "plugins lists a broken file as an error" \
        "$(printf 'error\tbroken\t-\t-\t%s/plugins/broken.so\tcannot load:' "$tmp")"
fi

# --- NAME.la and NAME.so side by side (as libtool installs a plugin) are
# one plugin: listed once, as the .la
mkdir "$tmp/twice" && echo junk >"$tmp/twice/x.la" && echo junk >"$tmp/twice/x.so"
if HERMES_PLUGIN_PATH=$tmp/twice run 0 plugins; then
    n=$(grep -c "$(printf '\tx\t')" "$tmp/out")
    if [ "$n" -eq 1 ]; then
        pass "plugins lists x.la and x.so once"
    else
        fail "plugins lists x.la and x.so $n times, expected once"
    fi
    expect "plugins lists the .la of the pair" "$tmp/twice/x.la"
fi

# --- plugin_path from the config is searched too
printf '[hermes]\nplugin_path = %s/plugins\n' "$tmp" >"$tmp/pp.ini"
if run 0 -c "$tmp/pp.ini" plugins; then
    expect "plugins searches the config's plugin_path" \
        "$tmp/plugins/broken.so"
fi

# --- a relative plugin_path is relative to the config file, wherever
# hermesctl runs
printf '[hermes]\nplugin_path = plugins\n' >"$tmp/rel.ini"
(cd / && "$ctl" -c "$tmp/rel.ini" plugins) >"$tmp/out" 2>&1
expect "plugins resolves a relative plugin_path from the config's directory" \
    "$tmp/plugins/broken.so"

# --- a section that names no plugin is a typo, reported with its line
printf '[hermes]\nbackend = dict\n\n[redsi]\nhost = x\n' >"$tmp/typo.ini"
if run 1 -c "$tmp/typo.ini" check; then
    expect "check reports a section naming no plugin" \
        "$tmp/typo.ini:4: unknown section [redsi]"
fi

# --- stats prints the dict backend's counters as "name: value"
if run 0 stats; then
    expect "stats prints the dict's entry count" "entries: 0"
fi

# --- clean and flush work against the built-in backend
if run 0 clean sometag othertag; then
    expect "clean reports the number of tags" "ok: cleaned 2 tags"
fi
if run 0 flush; then
    expect "flush names the prefix" "ok: flushed every key under 'cache:'"
fi
if run 0 clean "a tag with spaces"; then
    expect "clean takes a tag with spaces" "ok: cleaned 1 tag"
fi
if run 1 clean ""; then
    expect "clean rejects an empty tag" "empty"
fi

# --- version: hermesctl, the library, the ABI and each plugin, all the
# version configure wrote into <hermes/version.h>
ver=$(sed -n 's/^#define HERMES_VERSION "\(.*\)"$/\1/p' \
    "$builddir/sdk/include/hermes/version.h")
if [ -z "$ver" ]; then
    echo "FAIL: no HERMES_VERSION in $builddir/sdk/include/hermes/version.h"
    failures=$((failures + 1))
fi
HERMES_PLUGIN_PATH=$builddir/plugins/redis
export HERMES_PLUGIN_PATH
for how in --version version; do
    if run 0 $how; then
        expect "$how names hermesctl's version" "hermesctl $ver"
        expect "$how names the library's version" "library $ver (0x"
        expect "$how names the backend ABI" "backend ABI 1."
        expect "$how names the built-in plugin" "plugin dict $ver ABI 1."
        expect "$how names a plugin on the path" "plugin redis $ver ABI 1."
    fi
done
unset HERMES_PLUGIN_PATH
if run 2 version extra; then
    expect "version takes no arguments" "wrong number of arguments"
fi

# --- counters: exactly the names of HERMES_STATS_MAP, in its order, each
# with its description
srcdir=${HERMES_TEST_SRCDIR:?HERMES_TEST_SRCDIR is not set}
if run 0 counters; then
    awk '/^#define HERMES_STATS_MAP/ { on = 1; next }
         on && /^ *X\(/ { n = $0; sub(/^ *X\(/, "", n); sub(/,.*/, "", n)
                          print n }
         on && !/\\$/ { on = 0 }' \
        "$srcdir/sdk/include/hermes/hermes.h" >"$tmp/want"
    cut -f1 "$tmp/out" >"$tmp/got"
    if [ -s "$tmp/want" ] && cmp -s "$tmp/want" "$tmp/got"; then
        pass "counters lists every HERMES_STATS_MAP name in order"
    else
        fail "counters: expected the names $(tr '\n' ' ' <"$tmp/want")"
    fi
    expect "counters describes each" "$(printf 'hits\tcalls answered')"
fi
if run 2 counters extra; then
    expect "counters takes no arguments" "wrong number of arguments"
fi

# --- usage: help on stdout, mistakes on stderr with status 2
if run 0 --help; then
    expect "--help prints usage" "usage: hermesctl"
fi
if run 2 frobnicate; then
    expect "an unknown command is named" "unknown command 'frobnicate'"
    expect "an unknown command prints usage" "usage: hermesctl"
fi
"$ctl" frobnicate >"$tmp/out" 2>/dev/null
if [ -s "$tmp/out" ]; then
    fail "usage for an unknown command must go to stderr, not stdout"
else
    pass "usage for an unknown command goes to stderr"
fi
if run 2; then
    pass "no command exits 2"
fi
if run 2 clean; then
    pass "clean without tags exits 2"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures assertion(s) failed"
    exit 1
fi
exit 0
