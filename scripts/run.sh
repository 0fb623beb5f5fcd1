#!/usr/bin/env bash
# The main job: installs what is missing, builds, then
#   1. records a Linux-boot MSR sequence (2 vCPUs) against the reference handlers and prints what
#      happened, one line per exit, and the replay summary of that recording;
#   2. replays every trace in corpus/ (golden recordings and imported production captures) against
#      the reference handlers and prints the report;
#   3. fuzzes the exit-sequence target (libFuzzer, ASan+UBSan, structure-aware mutator, oracles)
#      for a short bounded time and prints the campaign summary.
# It builds only what it runs (the msrtrace CLI, then the exit-sequence fuzzer), not the tests.
# Environment: MSRTRACE_FUZZ_SECONDS (default 60), MSRTRACE_JOBS (default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh default msrtrace
bin=build/default/tools/msrtrace
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo
echo "=== 1. A Linux-boot MSR sequence on the reference handlers (intel-icx, 2 vCPUs)"
"$bin" record --workload=linux-boot --profile=intel-icx --vcpus=2 -o "$out/boot.trace"
"$bin" show --format=log --head=40 "$out/boot.trace"
"$bin" replay "$out/boot.trace"

echo
echo "=== 2. Replay of corpus/ against the reference handlers"
status=0
"$bin" replay corpus/ || status=$?
# Exit 3: a deliberately torn trace (corpus/golden/incomplete-*) replayed clean. Anything else
# non-zero is a real failure.
if [[ $status -ne 0 && $status -ne 3 ]]; then
  echo "run.sh: replay of corpus/ failed (exit $status)" >&2
  exit "$status"
fi

echo
echo "=== 3. Fuzzing the exit-sequence target for ${MSRTRACE_FUZZ_SECONDS:-60}s"
bash scripts/build.sh fuzz exit_sequence_fuzzer
bash fuzz/campaign.sh -b build/fuzz -t "${MSRTRACE_FUZZ_SECONDS:-60}" -o "$out/fuzz" \
  exit_sequence_fuzzer
