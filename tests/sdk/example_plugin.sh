#!/bin/sh
# Installs Hermes into a temporary root (`make install DESTDIR=...`), then
# builds the SDK's example plugin (sdk/examples/backend-memory) the way a
# vendor would - out of tree, with its own Makefile and nothing but
# pkg-config pointed at that root - installs it into the root's plugin
# directory, runs hermes-conformance on it by path and by name, and runs
# the quickstart with `backend = memory`.
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

die() {
    echo "FAILED: $*"
    exit 1
}

[ -x "$conf" ] || { echo "$conf not built"; exit 99; }
command -v pkg-config >/dev/null || { echo "FAILED: pkg-config missing"; exit 99; }

# The environment of `make check` (MAKEFLAGS, MAKELEVEL) must not leak into
# the nested makes below.
clean_make() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make "$@"
}

# Hermes, really installed, into a root of its own.  pkg-config then sees
# the root through PKG_CONFIG_SYSROOT_DIR, which also applies to plugindir.
root="$tmp/root"
echo "== make install DESTDIR=$root"
clean_make -C "$builddir" install DESTDIR="$root" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; die "make install failed"; }
pc="$builddir/sdk/hermes-backend.pc"
libdir=$(pkg-config --variable=libdir "$pc")
includedir=$(pkg-config --variable=includedir "$pc")
pcdir="$root$libdir/pkgconfig"
[ -f "$pcdir/hermes-backend.pc" ] || die "no hermes-backend.pc in $pcdir"
[ -f "$root$includedir/hermes/backend.h" ] || die "backend.h not installed"
mkdir -p "$tmp/src" || exit 99

# A copy of the example, built by its own Makefile.
for f in memory.c Makefile hermes.ini; do
    cp "$srcdir/sdk/examples/backend-memory/$f" "$tmp/src/" || exit 99
done
chmod u+w "$tmp/src"/*
vendor_make() {
    PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_LIBDIR="$pcdir" \
        PKG_CONFIG_SYSROOT_DIR="$root" clean_make -C "$tmp/src" "$@"
}
echo "== building the example against $root"
vendor_make || die "the example plugin does not build"
[ -f "$tmp/src/memory.so" ] || die "make did not produce memory.so"
vendor_make install || die "make install of the plugin failed"
plugindir="$root$libdir/hermes"
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
