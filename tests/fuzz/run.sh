#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer + UBSan) and runs each
# for SECONDS (default 60) from its seed corpus (tests/fuzz/corpus/<target>).
# New inputs go to a scratch corpus, never into the checked-in one; a crash,
# leak or timeout leaves its reproducer in $FUZZ_OUT (default
# build-fuzz/artifacts) and fails the run. Prints executions per target.
#
#   tests/fuzz/run.sh            # 60 s per target
#   tests/fuzz/run.sh 20         # CI smoke run
#   FUZZ_TARGETS="decode" tests/fuzz/run.sh 3600   # a long run of one target
#   build-fuzz/tests/fuzz/fuzz_decode build-fuzz/artifacts/crash-...  # replay
set -euo pipefail
SECONDS_PER_TARGET=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
BUILD=${FUZZ_BUILD:-$src/build-fuzz}
OUT=${FUZZ_OUT:-$BUILD/artifacts}
TARGETS=${FUZZ_TARGETS:-decode policy keyring config}

CC=${CC:-clang} cmake -S "$src" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DPS_FUZZ=ON > /dev/null
cmake --build "$BUILD" -j"$(nproc)" --target $(printf 'fuzz_%s ' $TARGETS) > "$BUILD/fuzz-build.log"
mkdir -p "$OUT"
export PS_SOURCE_DIR=$src
# Leaks are checked per input; the reachable runtime of fuzz_decode is not one.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

status=0
summary=""
for t in $TARGETS; do
    work=$(mktemp -d /tmp/pseudostream-fuzz-corpus-XXXXXX)
    log="$OUT/fuzz_$t.log"
    rc=0
    "$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$OUT/$t-" \
        "$work" "$here/corpus/$t" > "$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //')
    line=$(printf '%-8s %10s executions  coverage %6s  %s' "$t" "${execs:-?}" "${cov:-?}" \
        "$([ "$rc" -eq 0 ] && echo ok || echo "FAILED (see $log)")")
    echo "$line"
    summary+="$line"$'\n'
    [ "$rc" -eq 0 ] || { status=1; tail -30 "$log"; }
    rm -rf "$work"
done
printf '%s' "$summary" > "$OUT/summary.txt"
exit $status
