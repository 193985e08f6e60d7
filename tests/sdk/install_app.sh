#!/bin/sh
# The README's "Using Hermes in your own program", done as a user would:
# `make install` (into a temporary root, DESTDIR), then the README's own
# app.c (extracted from README.md, so the text and the test cannot drift
# apart) built with exactly `cc -o app app.c $(pkg-config --cflags --libs
# hermes)` against that root, and run.  LD_LIBRARY_PATH stands in for
# ldconfig, which cannot be pointed at a DESTDIR.  Run by `make check` (and
# distcheck, whose srcdir is read-only: all work happens in a temporary
# directory) with HERMES_TEST_BUILDDIR and HERMES_TEST_SRCDIR set.
set -u

builddir=${HERMES_TEST_BUILDDIR:?HERMES_TEST_BUILDDIR is not set}
srcdir=${HERMES_TEST_SRCDIR:?HERMES_TEST_SRCDIR is not set}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hermes-install-app.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM

die() {
    echo "FAILED: $*"
    exit 1
}

command -v pkg-config >/dev/null || die "pkg-config is missing"
unset HERMES_CONFIG HERMES_PLUGIN_PATH

# The environment of `make check` must not leak into the nested make.
root="$tmp/root"
echo "== make install DESTDIR=$root"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
    make -C "$builddir" install DESTDIR="$root" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; die "make install failed"; }
libdir=$(pkg-config --variable=libdir "$builddir/sdk/hermes.pc")
pcdir="$root$libdir/pkgconfig"
[ -f "$pcdir/hermes.pc" ] || die "no hermes.pc in $pcdir"

# The program between the README's markers, without the ``` fences.
sed -n '/^<!-- app.c: begin -->$/,/^<!-- app.c: end -->$/p' \
    "$srcdir/README.md" | sed '1,2d;$d' | sed '$d' >"$tmp/app.c"
grep -q 'int main' "$tmp/app.c" || die "no program between the README's app.c markers"

# The build's own compiler and flags: in a sanitizer build the installed
# library needs the program built the same way (empty -g -O2 otherwise).
mk() { sed -n "s/^$1 = //p" "$builddir/Makefile" | head -n 1; }
cc=$(mk CC)
cflags="$(mk CFLAGS) $(mk LDFLAGS)"
echo "== $cc $cflags -o app app.c \$(pkg-config --cflags --libs hermes)"
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_LIBDIR="$pcdir" \
    PKG_CONFIG_SYSROOT_DIR="$root"
flags=$(pkg-config --cflags --libs hermes) || die "pkg-config does not know hermes"
echo "   flags: $flags"
# shellcheck disable=SC2086 # flags are words
(cd "$tmp" && $cc $cflags -o app app.c $flags) ||
    die "the README's app.c does not build"
# And cleanly, for anyone who copies it into a -Werror build.
# shellcheck disable=SC2086
(cd "$tmp" && $cc $cflags -std=c11 -Wall -Wextra -pedantic -Werror \
    -o app-strict app.c $flags) || die "the README's app.c warns"

echo "== ./app"
LD_LIBRARY_PATH="$root$libdir" "$tmp/app" >"$tmp/out" 2>&1
status=$?
cat "$tmp/out"
[ "$status" -eq 0 ] || die "app exited with status $status"
[ "$(cat "$tmp/out")" = "$(printf 'hello world\ncleaned')" ] ||
    die "app printed something else than 'hello world' and 'cleaned'"
# It ran against the installed library, not one from the build tree.
LD_LIBRARY_PATH="$root$libdir" ldd "$tmp/app" | grep -F "$root$libdir/libhermes.so" ||
    die "app is not linked against $root$libdir/libhermes.so"
echo "PASS: the README's program builds with pkg-config and runs"
exit 0
