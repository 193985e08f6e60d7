#!/bin/sh
# Builds the SDK's example plugin (sdk/examples/backend-memory) the way a
# vendor would - out of tree, with its own Makefile and nothing but
# pkg-config - against an SDK "installed" into a temporary prefix (only
# backend.h and a hermes-backend.pc rewritten from the built one), then
# installs it with DESTDIR, runs hermes-conformance on it by path and by
# name, and runs the quickstart with `backend = memory`.
# Run by `make check` (and distcheck, whose srcdir is read-only: all work
# happens in a temporary directory) with HERMES_TEST_BUILDDIR and
# HERMES_TEST_SRCDIR set.
set -u

builddir=${HERMES_TEST_BUILDDIR:-.}
srcdir=${HERMES_TEST_SRCDIR:-$(dirname "$0")/../..}
conf="$builddir/hermes-conformance"
quickstart="$builddir/sdk/examples/quickstart"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hconf-example.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"

die() {
    echo "FAILED: $*"
    exit 1
}

[ -x "$conf" ] || { echo "$conf not built"; exit 99; }
command -v pkg-config >/dev/null || { echo "pkg-config missing"; exit 77; }

# The SDK: backend.h alone (a plugin must not need hermes.h) and a .pc
# whose directory variables point into the prefix; the rest of the file
# (Name, Version, Cflags) is the built one, so its Cflags are tested.
mkdir -p "$prefix/include/hermes" "$prefix/lib/pkgconfig" "$tmp/src" ||
    exit 99
cp "$srcdir/sdk/include/hermes/backend.h" "$prefix/include/hermes/" || exit 99
{
    echo "prefix=$prefix"
    echo 'exec_prefix=${prefix}'
    echo 'libdir=${exec_prefix}/lib'
    echo 'includedir=${prefix}/include'
    echo 'plugindir=${libdir}/hermes'
    grep -Ev '^(prefix|exec_prefix|libdir|includedir|plugindir)=' \
        "$builddir/sdk/hermes-backend.pc"
} >"$prefix/lib/pkgconfig/hermes-backend.pc" || exit 99

# A copy of the example, built by its own Makefile.  The environment of
# `make check` (MAKEFLAGS, MAKELEVEL) must not leak into this unrelated
# build.
for f in memory.c Makefile hermes.ini; do
    cp "$srcdir/sdk/examples/backend-memory/$f" "$tmp/src/" || exit 99
done
chmod u+w "$tmp/src"/*
vendor_make() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
        PKG_CONFIG_PATH="$prefix/lib/pkgconfig" make -C "$tmp/src" "$@"
}
echo "== building the example against $prefix"
vendor_make || die "the example plugin does not build"
[ -f "$tmp/src/memory.so" ] || die "make did not produce memory.so"
vendor_make install DESTDIR="$tmp/dest" || die "make install failed"
plugindir="$tmp/dest$prefix/lib/hermes"
[ -f "$plugindir/memory.so" ] || die "make install did not put memory.so in $plugindir"

# Runs the suite, which must pass completely; $1 describes the run.
expect_pass() {
    what=$1
    shift
    echo "== $what: hermes-conformance $*"
    "$conf" "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
    cat "$tmp/out"
    summary=$(tail -n 1 "$tmp/out")
    if [ "$status" -ne 0 ] || grep -q '^FAIL ' "$tmp/out" ||
        ! echo "$summary" | grep -Eq '^[1-9][0-9]* passed, 0 failed$'; then
        echo "--- stderr"
        cat "$tmp/err"
        die "$what: exit status $status, summary '$summary'"
    fi
}

expect_pass "memory.so by path" "$tmp/src/memory.so"
HERMES_PLUGIN_PATH=$plugindir
export HERMES_PLUGIN_PATH
expect_pass "installed plugin by name" -c "$tmp/src/hermes.ini" memory
unset HERMES_PLUGIN_PATH

# The application side: the quickstart loads the plugin through the core.
echo "== quickstart with backend = memory"
[ -x "$quickstart" ] || die "$quickstart is not built"
printf '[hermes]\nbackend = memory\nplugin_path = %s\n' "$tmp/src" \
    >"$tmp/quickstart.ini"
"$quickstart" "$tmp/quickstart.ini" >"$tmp/out" 2>&1
status=$?
cat "$tmp/out"
[ "$status" -eq 0 ] || die "quickstart exited with status $status"
grep -qF 'foo(2, 333) = 666' "$tmp/out" ||
    die "quickstart output lacks 'foo(2, 333) = 666'"
exit 0
