#!/usr/bin/env bash
# Source coverage (llvm-cov) of the reference handlers (handlers/) and the controller
# (harness/core/controller.cc) from the checked-in corpus plus a bounded fuzz run.
#
#   scripts/coverage.sh [-b BUILD_DIR] [-t FUZZ_SECONDS] [-o OUT_DIR]
#
# Builds msrtrace and the exit-sequence fuzzer in their own build directory (default
# build/coverage: clang-14, -fprofile-instr-generate -fcoverage-mapping, no sanitizers), then
#   1. replays every trace of corpus/ with the instrumented `msrtrace replay`;
#   2. runs the instrumented exit_sequence_fuzzer for FUZZ_SECONDS (default 60, -seed=1) from
#      the generated seeds and corpus/ (an empty corpus directory is made for its new inputs);
#   3. merges the raw profiles (llvm-profdata-14) and prints `llvm-cov-14 report` for
#      handlers/ and harness/core/controller.* (tests excluded), writes the same as text to
#      OUT_DIR/report.txt and an HTML view to OUT_DIR/html/index.html.
# Needs llvm-14 (scripts/deps.sh). Uses 2 build jobs; the fuzz run uses one core.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build/coverage
seconds=60
out=$root/coverage-out
while getopts "b:t:o:h" opt; do
  case $opt in
    b) build=$OPTARG ;;
    t) seconds=$OPTARG ;;
    o) out=$OPTARG ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
  esac
done
for tool in clang++-14 llvm-profdata-14 llvm-cov-14; do
  command -v "$tool" >/dev/null || { echo "coverage: $tool not found (scripts/deps.sh)" >&2; exit 2; }
done

flags="-fprofile-instr-generate -fcoverage-mapping"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 "${launcher[@]}" \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
  -DMSRTRACE_BUILD_TESTS=OFF -DMSRTRACE_BUILD_BENCH=OFF -DMSRTRACE_BUILD_FUZZERS=ON \
  -DMSRTRACE_SANITIZERS= >/dev/null
cmake --build "$build" --target msrtrace exit_sequence_fuzzer fuzz_generated -j2 >/dev/null

rm -rf "$out" && mkdir -p "$out/profiles" "$out/fuzz-corpus"
msrtrace=$build/tools/msrtrace
fuzzer=$build/fuzz/exit_sequence_fuzzer

# 1. The corpus, replayed (divergences and incomplete traces, exit 1 and 3, are not this
#    script's business; exit 2, unusable input, is).
rc=0
LLVM_PROFILE_FILE="$out/profiles/replay-%p.profraw" "$msrtrace" replay "$root/corpus" \
  >"$out/replay.log" 2>&1 || rc=$?
[[ $rc -ne 2 ]] || { echo "coverage: msrtrace replay failed (see $out/replay.log)" >&2; exit 1; }
# 2. A bounded fuzz run.
LLVM_PROFILE_FILE="$out/profiles/fuzz-%p.profraw" "$fuzzer" -seed=1 -max_total_time="$seconds" \
  -print_final_stats=1 "$out/fuzz-corpus" "$build/fuzz/seeds/traces" "$root/corpus" \
  >"$out/fuzz.log" 2>&1 || true
grep -E '^stat::number_of_executed_units' "$out/fuzz.log" || true

# 3. Merge and report.
llvm-profdata-14 merge -sparse "$out"/profiles/*.profraw -o "$out/merged.profdata"
# Only handlers/ and harness/core/controller.*: the others are excluded by the directory that holds
# them (the mapping's paths are build-relative, so they are matched by their last directory).
ignore='(^|/)(proto|tools|triage|fuzz|bench|examples|corpus|importers|trace|replay|kvm|workloads)/[^/]+$|(^|/)core/([^c]|c[^o])[^/]*$|_test\.cc$|test_util\.h$'
llvm-cov-14 report "$msrtrace" -object "$fuzzer" -instr-profile="$out/merged.profdata" \
  -ignore-filename-regex="$ignore" | tee "$out/report.txt"
llvm-cov-14 show "$msrtrace" -object "$fuzzer" -instr-profile="$out/merged.profdata" \
  -ignore-filename-regex="$ignore" -format=html -output-dir="$out/html" >/dev/null
echo "coverage: $out/report.txt, $out/html/index.html (corpus replay + ${seconds}s of exit_sequence_fuzzer)"
