#!/usr/bin/env bash
# Measures exec/s of every fuzz target beside an empty libFuzzer target built with the same
# flags, in the same run, and prints a Markdown table (docs/fuzzing.md records it).
#
#   fuzz/bench_fuzzers.sh [BUILD_DIR] [SECONDS]     (default: build/fuzz, 20 s per target)
#
# Each target runs single-process with -seed=1 for SECONDS from its seed corpus (the custom
# mutator is active for the exit-sequence fuzzer, as in a campaign); exec/s is libFuzzer's
# stat::average_exec_per_sec at the end; exec per CPU second (user+sys) is printed beside it
# because the wall-clock figure depends on how busy a shared machine is.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build/fuzz}
seconds=${2:-20}
bindir=$build/fuzz
[[ -x $bindir/empty_fuzzer ]] || { echo "no $bindir/empty_fuzzer: build a fuzz preset" >&2; exit 2; }

seeds_for() {
  case $1 in
    trace_text_fuzzer) echo "$bindir/seeds/text" ;;
    kvm_trace_parser_fuzzer | kvm_trace_importer_fuzzer) echo "$here/seeds/kvm_trace" ;;
    empty_fuzzer) echo "" ;;
    *) echo "$bindir/seeds/traces" ;;
  esac
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags=$(grep -m1 'CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2)
san=$(grep -m1 'MSRTRACE_SANITIZERS:' "$build/CMakeCache.txt" | cut -d= -f2)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "build: $build ($flags, sanitizers: ${san:-none}); $seconds s per target, -seed=1, 1 process"
echo "command: fuzz/bench_fuzzers.sh $build $seconds"
echo
echo "| target | exec/s (wall) | executions | CPU s | exec per CPU s | vs. empty (per CPU s) |"
echo "|---|---:|---:|---:|---:|---:|"
empty_eps=
for t in empty_fuzzer exit_sequence_fuzzer trace_reader_fuzzer trace_text_fuzzer \
         kvm_trace_parser_fuzzer kvm_trace_importer_fuzzer; do
  bin=$bindir/$t
  [[ -x $bin ]] || continue
  mkdir -p "$tmp/$t"
  # CPU time too: on a shared machine wall-clock exec/s understates the target.
  TIMEFORMAT='%U %S'
  # shellcheck disable=SC2046
  { time "$bin" -seed=1 -max_total_time="$seconds" -print_final_stats=1 -max_len=65536 \
      -rss_limit_mb=2560 -artifact_prefix="$tmp/" "$tmp/$t" $(seeds_for "$t") >"$tmp/$t.log" 2>&1; } 2>"$tmp/$t.time" || true
  eps=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$tmp/$t.log" | tail -1)
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$tmp/$t.log" | tail -1)
  cpu=$(awk '{ printf "%.1f", $1 + $2 }' "$tmp/$t.time")
  per_cpu=$(awk -v r="${runs:-0}" -v c="$cpu" 'BEGIN { if (c > 0) printf "%.0f", r / c; else print "?" }')
  if [[ $t == empty_fuzzer ]]; then
    empty_eps=$eps
    empty_per_cpu=$per_cpu
    ratio=1
  else
    ratio=$(awk -v a="${per_cpu:-0}" -v b="${empty_per_cpu:-0}" 'BEGIN { if (b > 0) printf "%.5f", a / b; else print "?" }')
  fi
  echo "| $t | ${eps:-?} | ${runs:-?} | $cpu | $per_cpu | $ratio |"
done
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
