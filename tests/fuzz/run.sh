#!/usr/bin/env bash
# Fuzzes each target with libFuzzer for a bounded time.
#
#   tests/fuzz/run.sh [-t SECONDS] [TARGET...]
#
# Builds every target (tests/fuzz/fuzz_TARGET.c) with clang,
# -fsanitize=fuzzer,address,undefined, over the core's and plugins' sources,
# then runs each for SECONDS (default $FUZZ_SECONDS, else 60) starting
# from its checked-in corpus (tests/fuzz/corpus/TARGET) and its past crash
# inputs (tests/fuzz/crashes/TARGET).  Prints the executions of each target
# and exits non-zero when any target crashed, leaked, broke a property,
# ran out of memory (-rss_limit_mb, default 2048) or timed out on one input
# (-timeout, default 10 s).  A crashing input is left in
# $FUZZ_WORK/TARGET/crashes/ (FUZZ_WORK defaults to ./build-fuzz); copy it
# into tests/fuzz/crashes/TARGET/ with the fix, so that make check replays it
# from then on.  New corpus entries go to $FUZZ_WORK/TARGET/corpus/, never
# into the checked-in corpus.
#
# Environment: CLANG (default clang-14, else clang), FUZZ_SECONDS,
# FUZZ_WORK, FUZZ_JOBS (targets fuzzed at once, default 1), FUZZ_FLAGS
# (extra libFuzzer flags).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${FUZZ_SECONDS:-60}
while getopts t: opt; do
    case $opt in
    t) secs=$OPTARG ;;
    *) echo "usage: $0 [-t SECONDS] [TARGET...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
all_targets="config keys record roundtrip redis metadump"
targets=${*:-$all_targets}
work=${FUZZ_WORK:-$PWD/build-fuzz}
jobs=${FUZZ_JOBS:-1}
cc=${CLANG:-}
if [ -z "$cc" ]; then
    for c in clang-14 clang; do
        command -v "$c" >/dev/null && { cc=$c; break; }
    done
fi
[ -n "$cc" ] || { echo "run.sh: clang not found (apt-get install clang-14)" >&2; exit 1; }

san="-fsanitize=address,undefined -fno-sanitize-recover=all"
cflags="-g -O1 -std=c11 -pthread $san -fsanitize=fuzzer-no-link
    -D_GNU_SOURCE -DHERMES_PLUGINDIR=\"/nonexistent\"
    -I$work/include -I$src/sdk/include -I$src/core -I$src/plugins/dict
    -I$src/plugins/common -I$src/tests/fuzz
    $(pkg-config --cflags libxxhash hiredis)"
libs="$(pkg-config --libs libxxhash hiredis) -lltdl -lpthread"

mkdir -p "$work/obj" "$work/include/hermes"
# <hermes/version.h> is made by configure, which this script does not run:
# fill its template from the three numbers configure.ac writes.
ver() { sed -n "s/^m4_define(\[hermes_$1\], \[\([0-9]*\)\])/\1/p" "$src/configure.ac"; }
vmaj=$(ver major) vmin=$(ver minor) vpat=$(ver patch)
[ -n "$vmaj" ] && [ -n "$vmin" ] && [ -n "$vpat" ] || { echo "run.sh: no version in configure.ac" >&2; exit 1; }
sed -e "s/@HERMES_VERSION_MAJOR@/$vmaj/g" -e "s/@HERMES_VERSION_MINOR@/$vmin/g" \
    -e "s/@HERMES_VERSION_PATCH@/$vpat/g" -e "s/@PACKAGE_VERSION@/$vmaj.$vmin.$vpat/g" \
    "$src/sdk/include/hermes/version.h.in" >"$work/include/hermes/version.h"
compile() { # source object [flags...]
    local s=$1 o=$2; shift 2
    [ "$o" -nt "$s" ] && [ -z "$(find "$src/core" "$src/sdk/include" "$src/plugins" "$src/tests/fuzz" -name '*.h' -newer "$o" -print -quit)" ] && return 0
    # shellcheck disable=SC2086
    "$cc" $cflags "$@" -c "$s" -o "$o"
}

# Which sources each target links, besides its own file.
core_objs() {
    local objs="" s o
    for s in "$src"/core/*.c "$src"/plugins/dict/dict.c "$src"/plugins/dict/siphash.c; do
        o=$work/obj/$(basename "$(dirname "$s")")_$(basename "${s%.c}").o
        compile "$s" "$o"
        objs="$objs $o"
    done
    echo "$objs"
}
redis_objs() {
    local objs="" s o
    # The plugin's own sources and what Makefile.am links into it.
    for s in "$src"/plugins/redis/*.c "$src"/plugins/dict/siphash.c \
        "$src"/plugins/common/forklist.c; do
        o=$work/obj/redis_$(basename "${s%.c}").o
        compile "$s" "$o"
        objs="$objs $o"
    done
    echo "$objs"
}

build() { # target -> $work/TARGET/fuzz_TARGET
    local t=$1 objs extra=""
    case $t in
    redis) objs=$(redis_objs) ;;
    metadump)
        # The memcached plugin's metadump reader alone.
        compile "$src/plugins/memcached/metadump.c" "$work/obj/mc_metadump.o"
        objs=$work/obj/mc_metadump.o
        extra=-I$src/plugins/memcached ;;
    record)
        # The checksum always passes, so that the fuzzer reaches the fields.
        compile "$src/core/record.c" "$work/obj/record_nocheck.o" -DHM_RECORD_NO_CHECKSUM
        objs=$work/obj/record_nocheck.o
        extra=-DHM_RECORD_NO_CHECKSUM ;;
    *) objs=$(core_objs) ;;
    esac
    mkdir -p "$work/$t/corpus" "$work/$t/crashes"
    # shellcheck disable=SC2086
    "$cc" $cflags $extra -fsanitize=fuzzer "$src/tests/fuzz/fuzz_$t.c" $objs $libs \
        -o "$work/$t/fuzz_$t"
}

fuzz() { # target: runs it, prints one line, returns non-zero on a crash
    local t=$1 dir=$work/$1 seeds=$src/tests/fuzz/corpus/$1 past=$src/tests/fuzz/crashes/$1
    local dirs=("$dir/corpus" "$seeds")
    [ -d "$past" ] && dirs+=("$past")
    local rc=0
    # shellcheck disable=SC2086
    (cd "$dir" && "./fuzz_$t" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$dir/crashes/" ${FUZZ_FLAGS:-} "${dirs[@]}") \
        >"$dir/log" 2>&1 || rc=$?
    local execs
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
    if [ $rc -ne 0 ]; then
        echo "FAIL $t: exit $rc after ${execs:-?} executions in ${secs}s (log $dir/log):"
        grep -E 'ERROR|property failed|SUMMARY|Test unit written' "$dir/log" | head -8 | sed 's/^/    /'
        return 1
    fi
    echo "ok   $t: ${execs:-?} executions in ${secs}s ($(find "$dir/corpus" -type f | wc -l) corpus files grown)"
}

for t in $targets; do
    [ -f "$src/tests/fuzz/fuzz_$t.c" ] || { echo "run.sh: no target $t (known: $all_targets)" >&2; exit 2; }
done
echo "run.sh: building $targets with $cc in $work"
for t in $targets; do build "$t"; done

failed=0
running=0
pids=()
names=()
for t in $targets; do
    if [ "$jobs" -le 1 ]; then
        fuzz "$t" || failed=1
    else
        fuzz "$t" >"$work/$t.result" &
        pids+=($!)
        names+=("$t")
        running=$((running + 1))
        if [ $running -ge "$jobs" ]; then
            wait "${pids[0]}" || failed=1
            cat "$work/${names[0]}.result"
            pids=("${pids[@]:1}")
            names=("${names[@]:1}")
            running=$((running - 1))
        fi
    fi
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed=1
    cat "$work/${names[$i]}.result"
done
exit $failed
