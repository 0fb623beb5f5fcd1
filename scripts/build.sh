#!/usr/bin/env bash
# Configures and builds one preset: scripts/build.sh [default|asan-ubsan|gcc|fuzz|fuzz-nosan]
# [TARGET...]. Builds go to build/<preset>; with TARGETs only those (and what they need) are
# built. Installs missing dependencies first.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-default}
shift || true
bash scripts/deps.sh
jobs=${MSRTRACE_JOBS:-$(nproc)}
cmake --preset "$preset" >/dev/null
if [[ $# -gt 0 ]]; then
  cmake --build --preset "$preset" -j "$jobs" --target "$@"
else
  cmake --build --preset "$preset" -j "$jobs"
fi
