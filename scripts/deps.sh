#!/usr/bin/env bash
# Installs msrtrace's build and test dependencies from Debian 12 packages (only what is missing).
# Run as root; as another user it prints the apt-get command to run instead.
set -euo pipefail

# chromium: headless render of the coverage map (triage/coverage_test.cc, docs/coverage-map.png).
PACKAGES=(
  cmake ninja-build clang-14 libclang-rt-14-dev llvm-14 lld clang-format-14 clang-tidy-14 g++
  libprotobuf-dev protobuf-compiler libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  zlib1g-dev linux-libc-dev zip unzip python3 time pkg-config libtracecmd-dev libtraceevent-dev
  afl++ python3-yaml  # fuzz/oss-fuzz/check_build.sh (AFL++ build), check_config.py (YAML)
  cargo               # examples/rust_handlers
  chromium            # docs/coverage-map.png and the coverage HTML screenshot test
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 2
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
