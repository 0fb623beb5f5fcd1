#!/usr/bin/env bash
# Builds msrtrace and runs every test, then the lint and OSS-Fuzz gates. Installs missing Debian
# packages first. Exits non-zero on any failure. The stages:
#   asan-ubsan  clang-14 with -Wall -Wextra -Werror, ASan+UBSan at -O1: builds everything
#               (libraries, CLI, tests, libFuzzer targets, examples) and runs the whole suite,
#               including each libFuzzer target briefly with a fixed seed and the install tests;
#   gcc         GCC 12 at -O2 with -Werror: builds everything but the libFuzzer targets
#               (benchmarks included) and runs the whole suite again (optimized, NDEBUG);
#   lint        clang-format and clang-tidy (scripts/lint.sh);
#   oss-fuzz    the OSS-Fuzz/ClusterFuzzLite build as the base image runs it (libFuzzer+ASan and
#               AFL++ builds, each target on 100 inputs; workflow and project files validated).
# The clang gate is the asan-ubsan build (same compiler, same warnings); `default` (clang-14,
# RelWithDebInfo, one ctest per GoogleTest test) is the developer's preset and runs on request.
# In these stages each GoogleTest binary is one ctest (MSRTRACE_CTEST_PER_BINARY): the suite
# runs in ~40 processes instead of ~800, which keeps .ci/run under 25 minutes on 2 cores.
#
#   scripts/test.sh            # lint asan-ubsan gcc oss-fuzz
#   scripts/test.sh default    # one stage only (default | gcc | asan-ubsan | lint | oss-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

stages=("$@")
((${#stages[@]})) || stages=(lint asan-ubsan gcc oss-fuzz)
jobs=${MSRTRACE_JOBS:-$(nproc)}
failed=()

run_stage() {
  local name=$1
  local start=$SECONDS
  echo "=== [$name] start"
  case "$name" in
    default | gcc | asan-ubsan)
      # `|| return`: run_stage is called as an `if` condition, where `set -e` does not apply.
      local per_binary=ON
      [[ $name == default ]] && per_binary=OFF
      cmake --preset "$name" -DMSRTRACE_CTEST_PER_BINARY=$per_binary >/dev/null || return
      cmake --build --preset "$name" -j "$jobs" || return
      ctest --preset "$name" -j "$jobs" --timeout 600 || return
      ;;
    lint)
      bash scripts/lint.sh || return
      ;;
    oss-fuzz)
      python3 fuzz/oss-fuzz/check_config.py || return
      # The UBSan flavour is left to check_build.sh's default run: asan-ubsan already runs
      # every target under UBSan, and the AFL++ build exercises the same entry script.
      bash fuzz/oss-fuzz/check_build.sh address afl || return
      ;;
    *)
      echo "unknown stage '$name' (want default, gcc, asan-ubsan, lint or oss-fuzz)" >&2
      return 2
      ;;
  esac
  echo "=== [$name] ok in $((SECONDS - start))s"
}

for s in "${stages[@]}"; do
  if ! run_stage "$s"; then
    echo "=== [$s] FAILED" >&2
    failed+=("$s")
  fi
done

if ((${#failed[@]})); then
  echo "test.sh: failed stages: ${failed[*]}" >&2
  exit 1
fi
echo "test.sh: all stages passed (${stages[*]})"
