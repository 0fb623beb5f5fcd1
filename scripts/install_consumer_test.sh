#!/usr/bin/env bash
# ctest msrtrace_install_consumer: installs a built tree into a fresh prefix and uses it the way
# another project would.
#   1. cmake --install BUILD --prefix <tmp>/prefix; no source-tree path may appear in the
#      installed CMake or pkg-config files;
#   2. examples/consumer (find_package(msrtrace) only) configured, built and tested against the
#      prefix: the C++ team fuzzer and the C API fuzzer with their replayers, each replaying
#      its corpus (and, in a clang fuzz build, running libFuzzer briefly), plus the C demo;
#   3. the C example built with the compiler and pkg-config alone and run.
# Environment (set by CMake): CC, CXX, MSRTRACE_SANITIZERS (comma-separated), MSRTRACE_BUILD_FUZZERS,
# MSRTRACE_LAUNCHER; MSRTRACE_PREFIX=<dir> tests an existing prefix instead (skips step 1).
#
#   install_consumer_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/msrtrace_consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
export CCACHE_BASEDIR=$work CCACHE_NOHASHDIR=1

# The prefix is always $work/prefix (a link to MSRTRACE_PREFIX if given), so that compiler
# caches see the same relative paths in every run.
prefix=$work/prefix
if [[ -n ${MSRTRACE_PREFIX:-} ]]; then
  ln -s "$MSRTRACE_PREFIX" "$prefix"
else
  cmake --install "$build" --prefix "$prefix" >"$work/install.log"
  if grep -rl -- "$src" "$prefix/lib/cmake" "$prefix/lib/pkgconfig"; then
    echo "install_consumer_test: the installed package names the source tree" >&2
    exit 1
  fi
fi
echo "install_consumer_test: prefix $prefix"

# Two golden traces as the consumers' seeds and replay inputs keep this test short (the in-tree
# tests replay and fuzz all of them through the same handler sets).
mkdir "$work/golden"
ln -s "$prefix/share/msrtrace/corpus/golden/faults.trace" \
  "$prefix/share/msrtrace/corpus/golden/linux-boot-intel-minimal.trace" "$work/golden/"

cflags="" ldflags=""
if [[ -n ${MSRTRACE_SANITIZERS:-} ]]; then
  cflags="-fsanitize=${MSRTRACE_SANITIZERS} -fno-sanitize-recover=all -fno-omit-frame-pointer"
  ldflags="-fsanitize=${MSRTRACE_SANITIZERS}"
fi
args=(-G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX"
      -DCMAKE_C_FLAGS="$cflags" -DCMAKE_CXX_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags"
      -DMSRTRACE_BUILD_TESTS=ON -DMSRTRACE_BUILD_FUZZERS="${MSRTRACE_BUILD_FUZZERS:-OFF}"
      -DMSRTRACE_FUZZ_RUNS=300 -DMSRTRACE_FUZZ_RUN_SECONDS=10
      -DMSRTRACE_GOLDEN_CORPUS_DIR="$work/golden")
if [[ -n ${MSRTRACE_LAUNCHER:-} ]]; then
  args+=(-DCMAKE_C_COMPILER_LAUNCHER="$MSRTRACE_LAUNCHER"
         -DCMAKE_CXX_COMPILER_LAUNCHER="$MSRTRACE_LAUNCHER")
fi
cmake -S "$src/examples/consumer" -B "$work/build" "${args[@]}" >"$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j2 >"$work/build.log" || { tail -50 "$work/build.log"; exit 1; }
ctest --test-dir "$work/build" --output-on-failure -j2 --timeout 120

# pkg-config: compile the C example with CC, link with CC (CXX under sanitizers, whose C++
# runtime parts only the C++ driver adds).
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
read -r -a pc_cflags <<<"$(pkg-config --cflags msrtrace)"
read -r -a pc_libs <<<"$(pkg-config --libs msrtrace)"
linker=$CC
[[ -n ${MSRTRACE_SANITIZERS:-} ]] && linker=$CXX
# shellcheck disable=SC2086
"$CC" -std=c99 -Wall -Wextra -Werror -pedantic $cflags "${pc_cflags[@]}" \
  -c "$src/examples/c_handlers/c_device.c" -o "$work/c_device.o"
# shellcheck disable=SC2086
"$CC" -std=c99 -Wall -Wextra -Werror -pedantic $cflags "${pc_cflags[@]}" \
  -c "$src/examples/c_handlers/c_device_demo.c" -o "$work/c_device_demo.o"
# shellcheck disable=SC2086
"$linker" $ldflags "$work/c_device.o" "$work/c_device_demo.o" -o "$work/c_device_demo_pc" \
  "${pc_libs[@]}"
"$work/c_device_demo_pc" "$work/pc_out" "$work/golden" 50
echo "install_consumer_test: find_package and pkg-config consumers passed"
