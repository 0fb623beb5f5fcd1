#!/usr/bin/env bash
# Measures exec/s of every fuzz target beside an empty libFuzzer target built with the same
# flags, in the same run, and prints a Markdown table per build (docs/fuzzing.md records them).
#
#   fuzz/bench_fuzzers.sh [-b] [-t SECONDS] [-T TARGET]... [BUILD_DIR...]
#   fuzz/bench_fuzzers.sh BUILD_DIR SECONDS                     (the older form)
#
# BUILD_DIR defaults to both libFuzzer builds that exist: build/fuzz (preset `fuzz`,
# ASan+UBSan) and build/fuzz-nosan (preset `fuzz-nosan`, no sanitizers). -b first configures
# (when needed) and builds both presets (empty_fuzzer and the measured targets, -j2), so both
# always run. SECONDS defaults to 20 per target; -T limits the targets (empty_fuzzer always
# runs first, as the baseline).
#
# Each target runs single-process with -seed=1 for SECONDS from its seed corpus (the custom
# mutator is active for the exit-sequence fuzzer, as in a campaign); exec/s is libFuzzer's
# stat::average_exec_per_sec at the end; exec per CPU second (user+sys) is printed beside it
# because the wall-clock figure depends on how busy a shared machine is; peak RSS is libFuzzer's
# stat::peak_rss_mb.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
seconds=20
build_first=0
targets=()
builds=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -b) build_first=1; shift ;;
    -t) seconds=$2; shift 2 ;;
    -T) targets+=("$2"); shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *)
      if [[ ${#builds[@]} -eq 1 && $1 =~ ^[0-9]+$ ]]; then seconds=$1; else builds+=("$1"); fi
      shift ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(exit_sequence_fuzzer trace_reader_fuzzer trace_text_fuzzer
                                      kvm_trace_parser_fuzzer kvm_trace_importer_fuzzer)
if ((build_first)); then
  for preset in fuzz fuzz-nosan; do
    [[ -f $root/build/$preset/build.ninja ]] ||
      (cd "$root" && cmake --preset "$preset" >/dev/null) || exit 2
    cmake --build "$root/build/$preset" -j2 --target empty_fuzzer "${targets[@]}" >/dev/null || exit 2
  done
fi
if [[ ${#builds[@]} -eq 0 ]]; then
  for b in "$root/build/fuzz" "$root/build/fuzz-nosan"; do
    [[ -x $b/fuzz/empty_fuzzer ]] && builds+=("$b")
  done
fi
[[ ${#builds[@]} -gt 0 ]] || { echo "no libFuzzer build: build the fuzz or fuzz-nosan preset (or pass -b)" >&2; exit 2; }
for b in "$root/build/fuzz" "$root/build/fuzz-nosan"; do
  [[ -x $b/fuzz/empty_fuzzer ]] || echo "note: $b has no empty_fuzzer: pass -b to build preset $(basename "$b")" >&2
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"

bench_build() {
build=$1
bindir=$build/fuzz
[[ -x $bindir/empty_fuzzer ]] || { echo "no $bindir/empty_fuzzer: build a fuzz preset" >&2; return 2; }

seeds_for() {
  case $1 in
    trace_text_fuzzer) echo "$bindir/seeds/text" ;;
    kvm_trace_parser_fuzzer | kvm_trace_importer_fuzzer) echo "$here/seeds/kvm_trace" ;;
    empty_fuzzer) echo "" ;;
    *) echo "$bindir/seeds/traces" ;;
  esac
}

flags=$(grep -m1 'CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2)
san=$(grep -m1 'MSRTRACE_SANITIZERS:' "$build/CMakeCache.txt" | cut -d= -f2)
echo
echo "build: $build ($flags, sanitizers: ${san:-none}); $seconds s per target, -seed=1, 1 process"
echo "command: fuzz/bench_fuzzers.sh -t $seconds $build"
echo
echo "| target | exec/s (wall) | executions | CPU s | exec per CPU s | vs. empty (per CPU s) | peak RSS MB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
empty_eps=
for t in empty_fuzzer "${targets[@]}"; do
  bin=$bindir/$t
  [[ -x $bin ]] || continue
  # CPU time too: on a shared machine wall-clock exec/s understates the target.
  TIMEFORMAT='%U %S'
  # shellcheck disable=SC2046
  rm -rf "${tmp:?}/$t"; mkdir -p "$tmp/$t"
  { time "$bin" -seed=1 -max_total_time="$seconds" -print_final_stats=1 -max_len=65536 \
      -rss_limit_mb=2560 -artifact_prefix="$tmp/" "$tmp/$t" $(seeds_for "$t") >"$tmp/$t.log" 2>&1; } 2>"$tmp/$t.time" || true
  eps=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$tmp/$t.log" | tail -1)
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$tmp/$t.log" | tail -1)
  rss=$(sed -nE 's/^stat::peak_rss_mb: *([0-9]+).*/\1/p' "$tmp/$t.log" | tail -1)
  cpu=$(awk '{ printf "%.1f", $1 + $2 }' "$tmp/$t.time")
  per_cpu=$(awk -v r="${runs:-0}" -v c="$cpu" 'BEGIN { if (c > 0) printf "%.0f", r / c; else print "?" }')
  if [[ $t == empty_fuzzer ]]; then
    empty_eps=$eps
    empty_per_cpu=$per_cpu
    ratio=1
  else
    ratio=$(awk -v a="${per_cpu:-0}" -v b="${empty_per_cpu:-0}" 'BEGIN { if (b > 0) printf "%.5f", a / b; else print "?" }')
  fi
  echo "| $t | ${eps:-?} | ${runs:-?} | $cpu | $per_cpu | $ratio | ${rss:-?} |"
done
}

for b in "${builds[@]}"; do bench_build "$(cd "$b" && pwd)"; done
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
