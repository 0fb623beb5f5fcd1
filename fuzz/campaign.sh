#!/usr/bin/env bash
# A fuzzing campaign over every msrtrace fuzz target, on all cores.
#
#   fuzz/campaign.sh [-b BUILD_DIR] [-t SECONDS_PER_TARGET] [-j JOBS] [-o OUT_DIR] [TARGET...]
#
# Needs a real-fuzzer build (default build/fuzz: `cmake --preset fuzz && cmake --build --preset
# fuzz`). For each target (default: every *_fuzzer in BUILD_DIR/fuzz except the planted and
# empty ones):
#   1. fuzz in libFuzzer's -fork mode with JOBS workers (default: nproc) for SECONDS, starting
#      from OUT_DIR/corpus/<target> merged with the seed corpus (generated seeds + corpus/);
#   2. merge and minimize the corpus (-merge=1 into a fresh directory, which keeps the smallest
#      input per feature) and replace OUT_DIR/corpus/<target> with it;
#   3. triage every crash/timeout/oom artifact: minimize it (-minimize_crash=1), keep the
#      smallest reproducer as OUT_DIR/findings/<target>/<kind>-<sha1>.trace, and record the
#      oracle/sanitizer line it reports (dedup by that line);
#   4. print a summary: exec/s, coverage (cov: and ft: from the final stats), corpus size
#      before/after, findings;
#   5. for targets whose inputs are traces, reduce every finding further with `msrtrace reduce
#      --fuzz-target` (delta debugging over events, snapshot and values, keeping the same
#      oracle/sanitizer signature) into <kind>-<sha1>.min.trace;
#   6. print the MSR-table coverage map's summary of the final corpora plus corpus/ (`msrtrace
#      coverage --replay`) and write OUT_DIR/coverage.{json,html} (the nightly workflow
#      .github/workflows/fuzz_campaign.yml keeps them, with the summary and findings, as an
#      artifact).
# Every finding of the exit-sequence fuzzer is a trace: reproduce it with
#   <BUILD_DIR>/fuzz/exit_sequence_fuzzer <finding>      (the oracles)
#   msrtrace replay <finding>                            (architectural checks)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build/fuzz
seconds=600
jobs=$(nproc)
out=$root/fuzz-out
while getopts "b:t:j:o:h" opt; do
  case $opt in
    b) build=$(cd "$OPTARG" && pwd) ;;
    t) seconds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    o) out=$OPTARG ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

bindir=$build/fuzz
msrtrace=$build/tools/msrtrace
[[ -x $msrtrace ]] || msrtrace=$(command -v msrtrace || true)
if (($#)); then
  targets=("$@")
else
  targets=()
  for f in "$bindir"/*_fuzzer; do
    n=$(basename "$f")
    [[ -x $f && $n != empty_fuzzer && $n != *_planted ]] && targets+=("$n")
  done
fi
((${#targets[@]})) || { echo "campaign: no fuzz targets in $bindir (build the fuzz preset)" >&2; exit 2; }

mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
printf '%-26s %9s %8s %8s %9s %9s %9s\n' target "exec/s" cov ft "corpus0" "corpus1" findings |
  tee -a "$summary"

seeds_for() {  # Seed dirs of a target (what ctest's <target>_corpus uses).
  case $1 in
    trace_text_fuzzer) echo "$bindir/seeds/text $root/corpus" ;;
    kvm_trace_parser_fuzzer | kvm_trace_importer_fuzzer) echo "$here/seeds/kvm_trace $root/corpus" ;;
    *) echo "$bindir/seeds/traces $root/corpus" ;;
  esac
}

options_for() {  # The target's .options as libFuzzer flags.
  local f=$bindir/$1.options
  [[ -f $f ]] || return 0
  while IFS='=' read -r k v; do
    k=${k// /} v=${v// /}
    [[ -n $k && $k != \[* && $k != \#* ]] && printf -- '-%s=%s\n' "$k" "$v"
  done <"$f"
}

# The line that names a finding, with PIDs, addresses and numbers masked: the oracle
# ("FAILED: fault-atomicity"), else the sanitizer report, else the target's own message before
# libFuzzer's "deadly signal", else the artifact kind.
dedup_key() {
  local bin=$1 input=$2 kind=$3 log key
  log=$("$bin" "${opts[@]}" "$input" 2>&1 || true)
  key=$(grep -m1 -oE 'FAILED: [a-z-]+' <<<"$log" ||
    grep -m1 -oE '(ERROR: AddressSanitizer: [a-z-]+|runtime error: .*)' <<<"$log" ||
    grep -B1 -m1 'ERROR: libFuzzer: deadly signal' <<<"$log" | head -1 ||
    true)
  [[ -z $key || $key == *"ERROR: libFuzzer"* ]] && key=$kind
  sed -E 's/==[0-9]+==//g; s/0x[0-9a-f]+/0x_/g; s/[0-9]+/N/g' <<<"$key"
}

for t in "${targets[@]}"; do
  bin=$bindir/$t
  corpus=$out/corpus/$t
  work=$out/work/$t
  findings=$out/findings/$t
  mkdir -p "$corpus" "$work/artifacts" "$findings"
  mapfile -t opts < <(options_for "$t")
  dict=()
  [[ -f $bin.dict ]] && dict=(-dict="$bin.dict")
  # shellcheck disable=SC2046
  before=$(find "$corpus" -type f | wc -l)

  # 1. Fuzz on all cores. -fork keeps going after a crash (-ignore_crashes) so one finding does
  #    not end the campaign; artifacts land in $work/artifacts.
  log=$work/fuzz.log
  "$bin" "${opts[@]}" "${dict[@]}" -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 \
    -ignore_ooms=1 -max_total_time="$seconds" -artifact_prefix="$work/artifacts/" \
    -print_final_stats=1 "$corpus" $(seeds_for "$t") >"$log" 2>&1 || true

  # 2. Merge + minimize the corpus.
  rm -rf "$work/merged" && mkdir -p "$work/merged"
  "$bin" "${opts[@]}" -merge=1 "$work/merged" "$corpus" $(seeds_for "$t") \
    >"$work/merge.log" 2>&1 || true
  if [[ -n $(ls -A "$work/merged") ]]; then
    rm -rf "$corpus" && mv "$work/merged" "$corpus"
  fi
  after=$(find "$corpus" -type f | wc -l)

  # 3. Triage: minimize each artifact, dedup by its first report line.
  declare -A seen=()
  n_findings=0
  for a in "$work"/artifacts/*; do
    [[ -f $a ]] || continue
    kind=$(basename "$a" | cut -d- -f1)
    min=$work/min-$(basename "$a")
    "$bin" "${opts[@]}" -minimize_crash=1 -runs=2000 -exact_artifact_path="$min" "$a" \
      >"$work/minimize.log" 2>&1 || true
    [[ -s $min ]] || cp "$a" "$min"
    key=$(dedup_key "$bin" "$min" "$kind")
    [[ -n ${seen[$key]:-} ]] && continue
    seen[$key]=1
    sha=$(sha1sum "$min" | cut -c1-12)
    cp "$min" "$findings/$kind-$sha.trace"
    echo "$key" >"$findings/$kind-$sha.txt"
    # 5. Trace inputs: reduce further with msrtrace reduce (same signature, bounded).
    case $t in
      exit_sequence_fuzzer* | trace_reader_fuzzer)
        if [[ -n $msrtrace ]]; then
          "$msrtrace" reduce "$findings/$kind-$sha.trace" --fuzz-target="$bin" --max-seconds=120 \
            -o "$findings/$kind-$sha.min.trace" >>"$work/reduce.log" 2>&1 ||
            echo "campaign: msrtrace reduce could not reduce $kind-$sha (see $work/reduce.log)" >&2
        fi
        ;;
    esac
    n_findings=$((n_findings + 1))
  done
  unset seen

  # 4. Summary line from libFuzzer's stats (the last "#N ... cov: ft: ... exec/s:" line).
  last=$(grep -E 'cov: [0-9]+' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
  eps=$(sed -nE 's/.*exec\/s:? ([0-9]+).*/\1/p' <<<"$last")
  printf '%-26s %9s %8s %8s %9s %9s %9s\n' "$t" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$before" \
    "$after" "$n_findings" | tee -a "$summary"
done

# 6. The MSR-table coverage map of the final corpora plus the checked-in corpus.
if [[ -n $msrtrace ]]; then
  echo
  # libFuzzer names corpus files by hash (no .trace), so the exit-sequence corpus is listed.
  cov_paths=("$root/corpus")
  for t in "${targets[@]}"; do
    [[ $t == exit_sequence_fuzzer && -d $out/corpus/$t ]] &&
      mapfile -t -O "${#cov_paths[@]}" cov_paths < <(find "$out/corpus/$t" -type f | sort)
  done
  "$msrtrace" coverage --replay --skip-bad "${cov_paths[@]}" --json="$out/coverage.json" \
    --html="$out/coverage.html" 2>"$out/coverage.log" | tee -a "$summary" || true
fi

echo
echo "corpora: $out/corpus/<target>   findings: $out/findings/<target>   summary: $summary"
[[ -f $out/coverage.html ]] && echo "coverage map: $out/coverage.html ($out/coverage.json)"
echo "cores: $jobs of $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
