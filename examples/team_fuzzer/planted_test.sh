#!/usr/bin/env bash
# The planted-bug test of a team fuzzer: planted_test.sh <fuzzer> <workdir> <seeds-dir>
# Runs the fuzzer from its default seeds with a fixed seed and a bounded number of executions
# (fuzz/run_fuzzer.sh, so its .options apply), expects the fault-atomicity oracle to fire, then
# runs the two reproduce lines of the report exactly as printed, with <input> the saved finding:
# the fuzzer must fail again and the team's CLI replay must report the divergence (exit 1).
set -uo pipefail
fuzzer=$1 workdir=$2 seeds=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$workdir"
mkdir -p "$workdir"
fail() { echo "FAIL: $*" >&2; exit 1; }

bash "$here/../../fuzz/run_fuzzer.sh" "$fuzzer" -seed=1 -runs=20000 \
  -artifact_prefix="$workdir/" -corpus="$workdir/corpus" -- "$seeds" >"$workdir/log" 2>&1
grep -q "FAILED: fault-atomicity" "$workdir/log" || { tail -30 "$workdir/log"; fail "not found"; }
grep -E "stat::number_of_executed_units|Done [0-9]+ runs|^#[0-9]+" "$workdir/log" | tail -2
crash=$(ls "$workdir"/crash-* 2>/dev/null | head -1)
[[ -n $crash ]] || fail "no crash artifact"
grep -A1 "reproduce:" "$workdir/log" | sed 's/^ *reproduce: //; s/^ *//' >"$workdir/repro"
cat "$workdir/repro"
[[ $(wc -l <"$workdir/repro") == 2 ]] || fail "expected two reproduce lines"
n=0
while read -r line; do
  n=$((n + 1))
  cmd=${line//<input>/$crash}
  eval "$cmd" >"$workdir/repro$n.out" 2>&1
  code=$?
  if ((n == 1)); then
    grep -q "FAILED: fault-atomicity" "$workdir/repro$n.out" || fail "reproduce line 1: $cmd"
  else
    [[ $code == 1 ]] || { cat "$workdir/repro$n.out"; fail "reproduce line 2 exit $code: $cmd"; }
    grep -q "ACME_WRITE_COUNTER" "$workdir/repro$n.out" || fail "replay does not name the MSR"
    grep "divergence 1:" "$workdir/repro$n.out"
  fi
done <"$workdir/repro"
echo "planted bug found and reproduced"
