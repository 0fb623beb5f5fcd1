#!/usr/bin/env bash
# Builds the benchmark targets of the default preset (build/default) and runs every benchmark
# whose figures docs/benchmarks.md reports (bench/replay_vs_stats.sh included), writing the
# outputs and a machine description to OUT (default build/default/bench/results). Takes several
# minutes on 2 cores.
#
#   bench/run_all.sh                 # everything
#   REPS=3 SIZES="10000 100000" bench/run_all.sh
#
# Environment: REPS (benchmark repetitions, default 5), SIZES (replay_memory.sh trace sizes,
# default "10000 100000 1000000 5000000"), JOBS (build parallelism, default 2), OUT, and BUILD
# (an already configured build directory to use instead of the default preset's; it must have
# MSRTRACE_BUILD_BENCH=ON).
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-5}
SIZES=${SIZES:-10000 100000 1000000 5000000}
JOBS=${JOBS:-2}
if [[ -z "${BUILD:-}" ]]; then
  BUILD=build/default
  cmake --preset default >/dev/null
fi
OUT=${OUT:-$BUILD/bench/results}
targets=(dispatch_bench replay_bench msrtrace)
if ninja -C "$BUILD" -t targets all 2>/dev/null | grep -q '^import_bench:'; then
  targets+=(import_bench)
fi
cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}"
mkdir -p "$OUT"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty tree)')"
  echo "nproc: $(nproc)"
  echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "compiler: $(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt") ($("$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt")" --version | head -1))"
  echo "build type: $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt")"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

bench_flags=(--benchmark_repetitions="$REPS" --benchmark_report_aggregates_only=true
             --benchmark_counters_tabular=true)

run() {
  local name=$1
  shift
  echo "== $name: $*" | tee "$OUT/$name.txt"
  "$@" 2>&1 | tee -a "$OUT/$name.txt"
}

run dispatch_bench "$BUILD/bench/dispatch_bench" "${bench_flags[@]}"
run replay_bench "$BUILD/bench/replay_bench" "${bench_flags[@]}"
if [[ -x "$BUILD/bench/import_bench" ]]; then
  run import_bench "$BUILD/bench/import_bench" "${bench_flags[@]}"
fi
# shellcheck disable=SC2086
run replay_memory env REPS="$REPS" bench/replay_memory.sh "$BUILD/tools/msrtrace" $SIZES
run replay_vs_stats bench/replay_vs_stats.sh "$BUILD/tools/msrtrace"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
echo "results in $OUT"
