#!/usr/bin/env bash
# Builds msrtrace and runs every test: the suite with clang (default preset), with GCC, and under
# ASan+UBSan (which also runs each libFuzzer target briefly with a fixed seed), then the lint gates
# (clang-format, clang-tidy), then the OSS-Fuzz/ClusterFuzzLite build as the image runs it (ASan,
# UBSan and AFL++ builds, each target run on 100 inputs; workflow and project files validated).
# Installs missing Debian packages first. Exits non-zero on any failure.
#
#   scripts/test.sh            # everything
#   scripts/test.sh default    # one stage only (default | gcc | asan-ubsan | lint | oss-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

stages=("$@")
((${#stages[@]})) || stages=(default gcc asan-ubsan lint oss-fuzz)
jobs=${MSRTRACE_JOBS:-$(nproc)}
failed=()

run_stage() {
  local name=$1
  local start=$SECONDS
  echo "=== [$name] start"
  case "$name" in
    default | gcc | asan-ubsan)
      # `|| return`: run_stage is called as an `if` condition, where `set -e` does not apply.
      cmake --preset "$name" >/dev/null || return
      cmake --build --preset "$name" -j "$jobs" || return
      ctest --preset "$name" -j "$jobs" --timeout 600 || return
      ;;
    lint)
      bash scripts/lint.sh || return
      ;;
    oss-fuzz)
      python3 fuzz/oss-fuzz/check_config.py || return
      bash fuzz/oss-fuzz/check_build.sh || return
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
