#!/usr/bin/env bash
# The main job: installs what is missing, builds, then
#   1. records a Linux-boot MSR sequence against the reference handlers and prints what happened,
#   2. replays every trace in corpus/ against the reference handlers and prints the report,
#   3. fuzzes the exit-sequence target for a short bounded time and prints the campaign summary.
# Environment: MSRTRACE_FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh default
bin=build/default/tools/msrtrace
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo
echo "=== 1. Linux-boot MSR sequence on the reference handlers (intel-icx, 2 vCPUs)"
"$bin" record --workload=linux-boot --profile=intel-icx --vcpus=2 -o "$out/boot.trace" --print

echo
echo "=== 2. Replay of corpus/ against the reference handlers"
"$bin" replay corpus/ || status=$?
status=${status:-0}
# 3 = an intentionally torn trace replayed clean; anything else non-zero is a real failure.
if [[ $status -ne 0 && $status -ne 3 ]]; then
  echo "run.sh: replay reported divergences (exit $status)" >&2
  exit "$status"
fi

echo
echo "=== 3. Fuzzing the exit-sequence target for ${MSRTRACE_FUZZ_SECONDS:-60}s"
bash scripts/build.sh fuzz
bash fuzz/campaign.sh --build build/fuzz --seconds "${MSRTRACE_FUZZ_SECONDS:-60}" --target exit_sequence_fuzzer
