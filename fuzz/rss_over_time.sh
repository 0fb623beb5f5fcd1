#!/usr/bin/env bash
# Resident memory of one fuzz target over a long single-process run: samples the process's
# VmRSS (/proc/PID/status) every INTERVAL seconds beside libFuzzer's own counters (executions,
# corpus units and bytes), then prints the growth after warm-up. This is the "RSS is flat after
# warm-up" measurement docs/fuzzing.md reports.
#
#   fuzz/rss_over_time.sh [-t SECONDS] [-i INTERVAL] [-w WARMUP] [-T TARGET] BUILD_DIR [-- FLAG...]
#
# Defaults: 600 s, a sample every 30 s, warm-up 60 s, exit_sequence_fuzzer. BUILD_DIR is a
# libFuzzer build (build/fuzz: ASan+UBSan, build/fuzz-nosan: none). The target runs with
# -seed=1 from its shipped seeds and the memory limits of its fuzz/<target>.options (what
# OSS-Fuzz and fuzz/campaign.sh use); FLAGs after -- are added (e.g. -rss_limit_mb=0). New units
# go to a temporary directory (removed at exit), never into the seed directory. ASAN_OPTIONS from
# the environment is passed through, so ASan's own share (its quarantine of freed blocks, 256 MiB
# by default) can be told apart from the target's state:
#
#   ASAN_OPTIONS=quarantine_size_mb=0 fuzz/rss_over_time.sh build/fuzz
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=600
interval=30
warmup=60
target=exit_sequence_fuzzer
extra=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -t) seconds=$2; shift 2 ;;
    -i) interval=$2; shift 2 ;;
    -w) warmup=$2; shift 2 ;;
    -T) target=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
[[ -n ${build:-} ]] || { echo "usage: $0 [-t SECONDS] [-i INTERVAL] [-w WARMUP] [-T TARGET] BUILD_DIR [-- FLAG...]" >&2; exit 2; }
for n in "$seconds" "$interval" "$warmup"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "not a positive number of seconds: $n" >&2; exit 2; }
done
bin=$build/fuzz/$target
[[ -x $bin ]] || { echo "no $bin: build the fuzz or fuzz-nosan preset" >&2; exit 2; }
# The memory limits the target is deployed with (key = value lines of its .options file).
limits=()
if [[ -f $here/$target.options ]]; then
  while IFS='= ' read -r key value; do
    [[ $key == rss_limit_mb || $key == malloc_limit_mb ]] && limits+=("-$key=$value")
  done <"$here/$target.options"
fi
case $target in
  trace_text_fuzzer) seeds=$build/fuzz/seeds/text ;;
  kvm_trace_parser_fuzzer | kvm_trace_importer_fuzzer) seeds=$here/seeds/kvm_trace ;;
  *) seeds=$build/fuzz/seeds/traces ;;
esac

tmp=$(mktemp -d)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir "$tmp/corpus"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "target: $bin, $seconds s, -seed=1, 1 process, flags: ${limits[*]} ${extra[*]}, ASAN_OPTIONS=${ASAN_OPTIONS:-(unset)}"
echo "command: ${ASAN_OPTIONS:+ASAN_OPTIONS=$ASAN_OPTIONS }fuzz/rss_over_time.sh -t $seconds -i $interval -w $warmup -T $target $build${extra[*]:+ -- ${extra[*]}}"
"$bin" -seed=1 -max_total_time="$seconds" "${limits[@]}" "${extra[@]}" -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$tmp/" "$tmp/corpus" "$seeds" >"$tmp/log" 2>&1 &
pid=$!

# The newest libFuzzer status line: "#123456 NEW cov: ... corp: 80/20Kb ... exec/s: 9000 rss: 400Mb".
last_status() { grep -E '^#[0-9]+' "$tmp/log" | tail -1 || true; }

echo
echo "| s | RSS MiB | executions (libFuzzer) | corpus units/bytes |"
echo "|---:|---:|---:|---:|"
start=$SECONDS
warm_rss=
rss=
while kill -0 "$pid" 2>/dev/null; do
  sleep "$interval"
  kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [[ -n $kb ]] || break
  rss=$((kb / 1024))
  t=$((SECONDS - start))
  line=$(last_status)
  execs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$line")
  corp=$(sed -nE 's/.*corp: ([0-9]+\/[0-9]+[A-Za-z]*).*/\1/p' <<<"$line")
  echo "| $t | $rss | ${execs:-?} | ${corp:-?} |"
  if [[ -z $warm_rss && $t -ge $warmup ]]; then warm_rss=$rss; warm_t=$t; fi
done
wait "$pid" || true
pid=
if grep -qE '^(==[0-9]+==ERROR|SUMMARY: )' "$tmp/log"; then
  echo "the target reported an error (a finding or a sanitizer report):" >&2
  grep -m3 -E '^(==[0-9]+==ERROR|SUMMARY: )' "$tmp/log" >&2
  exit 1
fi
echo
execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$tmp/log" | tail -1)
peak=$(sed -nE 's/^stat::peak_rss_mb: *([0-9]+).*/\1/p' "$tmp/log" | tail -1)
echo "executions: ${execs:-?}, libFuzzer peak RSS: ${peak:-?} MiB"
if [[ -n $warm_rss && -n $rss ]]; then
  echo "after warm-up: ${warm_rss} MiB at ${warm_t} s -> ${rss} MiB at the last sample ($((rss - warm_rss)) MiB)"
fi
