#!/usr/bin/env bash
# The differential self-test: diff_test.sh <fuzzer> <cli> <workdir> <seeds-dir> <allowlist>
# <fuzzer> and <cli> are built from acme's handlers with ACME_PLANTED_DEVIATIONS; ACME_DEVIATION
# picks one deliberate semantic deviation from KVM. For each class the differential fuzzer runs
# from acme's default seeds with a fixed seed and a bounded number of executions and must report
# "FAILED: differential" naming the deviant MSR; then `<cli> replay --against=reference` on the
# saved input must exit 1 and name it too (the fuzzer's second reproduce line).
set -uo pipefail
fuzzer=$1 cli=$2 workdir=$3 seeds=$4 allowlist=$5
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$workdir"
mkdir -p "$workdir"
fail() { echo "FAIL: $*" >&2; exit 1; }

classes=(
  "write-accepted IA32_MTRR_DEF_TYPE"
  "reserved-unchecked MSR_TSC_AUX"
  "wrong-reset-value IA32_PAT"
  "stale-read MSR_KERNEL_GS_BASE"
  "vcpu-leak MSR_STAR"
  "related-update-missing IA32_TIME_STAMP_COUNTER"
)
for entry in "${classes[@]}"; do
  read -r class msr <<<"$entry"
  wd=$workdir/$class
  mkdir -p "$wd"
  ACME_DEVIATION=$class bash "$here/../../fuzz/run_fuzzer.sh" "$fuzzer" -seed=1 -runs=20000 \
    -max_total_time=120 -artifact_prefix="$wd/" -corpus="$wd/corpus" -- "$seeds" >"$wd/log" 2>&1
  grep -q "FAILED: differential" "$wd/log" || { tail -20 "$wd/log"; fail "$class: not found"; }
  finding=$(grep -A1 "FAILED: differential" "$wd/log" | tail -1)
  grep -q "$msr" <<<"$finding" || fail "$class: the finding does not name $msr: $finding"
  crash=$(ls "$wd"/crash-* 2>/dev/null | head -1)
  [[ -n $crash ]] || fail "$class: no crash artifact"
  ACME_DEVIATION=$class "$cli" replay --against=reference --allowlist="$allowlist" "$crash" \
    >"$wd/replay.out" 2>&1
  code=$?
  [[ $code == 1 ]] || { cat "$wd/replay.out"; fail "$class: replay --against exit $code"; }
  grep -q "$msr" "$wd/replay.out" || fail "$class: replay --against does not name $msr"
  runs=$(grep -Eo "^#[0-9]+" "$wd/log" | tail -1)
  echo "$class: found ($msr) after ${runs:-the seeds}: $finding"
done
echo "every planted deviation found"
