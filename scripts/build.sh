#!/usr/bin/env bash
# Configures and builds one preset: scripts/build.sh [default|asan-ubsan|gcc|fuzz]
# Builds go to build/<preset>. Installs missing dependencies first.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-default}
bash scripts/deps.sh
jobs=${MSRTRACE_JOBS:-$(nproc)}
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs"
