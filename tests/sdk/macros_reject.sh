#!/bin/sh
# The macro layer refuses types it cannot key or store losslessly: each
# snippet below must fail to compile, in C (no _Generic default) and in C++
# (deleted overloads), while the same snippet with a supported type
# compiles, so a failure is the type's and not the harness's.  Run by
# `make check` with CC, CXX, HERMES_TEST_SRCDIR and HERMES_TEST_BUILDDIR
# set (see Makefile.am).

set -u

srcdir=${HERMES_TEST_SRCDIR:?HERMES_TEST_SRCDIR is not set}
# <hermes/version.h> is generated into the build tree.
builddir=${HERMES_TEST_BUILDDIR:?HERMES_TEST_BUILDDIR is not set}
cc=${CC:?CC is not set}
cxx=${CXX:?CXX is not set}
failures=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/macros-reject.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# compile LANG WANT NAME CODE: WANT is ok or error.
compile() {
    lang=$1 want=$2 name=$3 code=$4
    if [ "$lang" = c ]; then
        file=$tmp/t.c
        set -- $cc -std=c11 -pedantic -Wall -Wextra -Werror
    else
        file=$tmp/t.cpp
        set -- $cxx -std=c++20 -pedantic -Wall -Wextra -Werror
    fi
    printf '#include <hermes/hermes.h>\n%s\n' "$code" >"$file"
    if "$@" -I"$srcdir/sdk/include" -I"$builddir/sdk/include" -fsyntax-only "$file" >"$tmp/out" 2>&1
    then got=ok; else got=error; fi
    if [ "$got" = "$want" ]; then
        echo "PASS: $lang: $name"
    else
        echo "FAIL: $lang: $name: wanted $want, got $got"
        sed 's/^/    /' "$tmp/out" | head -20
        failures=$((failures + 1))
    fi
}

for lang in c cxx; do
    compile $lang ok "int argument, int result" \
        'HERMES_FUNC(int, f, int, x) { return x; }'
    compile $lang error "pointer argument" \
        'HERMES_FUNC(int, f, int *, p) { return *p; }'
    compile $lang error "long double argument" \
        'HERMES_FUNC(int, f, long double, x) { return (int)x; }'
    compile $lang error "const char * result (a literal would be freed)" \
        'HERMES_FUNC(const char *, f, int, x) { return x ? "a" : "b"; }'
    compile $lang error "pointer result" \
        'static int v; HERMES_FUNC(int *, f, int, x) { return x ? &v : 0; }'
    compile $lang error "seven arguments" \
        'HERMES_FUNC(int, f, int, a, int, b, int, c, int, d, int, e, int, g, int, h) { return a; }'
    compile $lang error "an odd argument count (a type without a name)" \
        'HERMES_FUNC(int, f, int) { return 0; }'
done

[ "$failures" -eq 0 ] || { echo "$failures failed"; exit 1; }
