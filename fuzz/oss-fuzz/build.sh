#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script: .clusterfuzzlite/build.sh and
# fuzz/oss-fuzz/project/build.sh both run it from the image, with the checkout at $SRC/msrtrace.
#
# Input, the OSS-Fuzz environment: $CC $CXX $CFLAGS $CXXFLAGS (sanitizer and engine coverage
# flags included), $LIB_FUZZING_ENGINE, $OUT, $WORK, $SANITIZER, $FUZZING_ENGINE. Outside an
# image the defaults below apply; fuzz/oss-fuzz/check_build.sh runs this script with the image's
# variables for ASan, UBSan and AFL++ and checks what lands in $OUT.
#
# Output in $OUT, for every shipped fuzz target: the binary, <target>_seed_corpus.zip,
# <target>.dict and <target>.options; and lib/ with the shared libraries the binaries need that
# the runner image lacks (Ubuntu's protobuf and abseil). The binaries find them through
# DT_RPATH $ORIGIN/lib (--disable-new-dtags: unlike DT_RUNPATH it also serves the libraries'
# own dependencies, e.g. one abseil library loading another).
#
# Which targets: CMake's fuzz-target manifest (cmake/MsrtraceFuzz.cmake writes
# msrtrace_fuzz_targets.tsv) lists every target with its seed directories; this script ships the
# ones declared under fuzz/ that have tests, i.e. all but the planted-bug and baseline
# instruments. A new msrtrace_add_fuzz_target() in fuzz/ ships without touching this script.
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)  # The checkout this script lives in.
: "${CC:=clang}" "${CXX:=clang++}" "${CFLAGS:=}" "${CXXFLAGS:=}"
: "${LIB_FUZZING_ENGINE:=-fsanitize=fuzzer}" "${FUZZING_ENGINE:=libfuzzer}"
: "${OUT:=$src/out}"
: "${WORK:=$(mktemp -d)}"
work=$WORK/msrtrace-build
jobs=${MSRTRACE_JOBS:-$(nproc)}

# OSS-Fuzz's C++ flags select libc++ (-stdlib=libc++). msrtrace links Ubuntu's protobuf and
# abseil, which are built against libstdc++; mixing the two does not link (std::string differs),
# so the fuzz targets use libstdc++ as their dependencies do.
CXXFLAGS=${CXXFLAGS//-stdlib=libc++/}

mkdir -p "$OUT" "$work"
# CMAKE_BUILD_TYPE=None: $CFLAGS alone set optimisation and debug info (-O1 -gline-tables-only in
# the image); assertions stay on. MSRTRACE_SANITIZERS and MSRTRACE_FUZZ_COVERAGE_FLAGS stay
# empty: the sanitizer and the engine's coverage instrumentation come from $CFLAGS/$CXXFLAGS.
# shellcheck disable=SC2016  # $ORIGIN is for the dynamic loader, not the shell.
cmake -S "$src" -B "$work" -G Ninja \
  -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
  -DCMAKE_BUILD_RPATH='$ORIGIN/lib' -DCMAKE_EXE_LINKER_FLAGS="${LDFLAGS:-} -Wl,--disable-new-dtags" \
  -DMSRTRACE_BUILD_FUZZERS=ON -DMSRTRACE_FUZZ_ENGINE="$LIB_FUZZING_ENGINE" \
  -DMSRTRACE_FUZZ_COVERAGE_FLAGS= -DMSRTRACE_SANITIZERS= \
  -DMSRTRACE_BUILD_TESTS=OFF -DMSRTRACE_BUILD_BENCH=OFF -DMSRTRACE_WERROR=OFF >/dev/null

# name, binary, seed directories of every shipped target, from the manifest.
names=() bins=() corpora=()
while IFS=$'\t' read -r name bin dir kind corpus; do
  [[ $dir == "$src/fuzz" && $kind == tests ]] || continue
  names+=("$name") bins+=("$bin") corpora+=("$corpus")
done <"$work/msrtrace_fuzz_targets.tsv"
if ((${#names[@]} == 0)); then
  echo "oss-fuzz build: $work/msrtrace_fuzz_targets.tsv lists no fuzz target under $src/fuzz" >&2
  exit 1
fi
ninja -C "$work" -j "$jobs" fuzz_generated "${names[@]}"

# Seeds: every input file under the target's seed directories, flat, named by content hash.
zip_seeds() {  # zip_seeds <target> <dir>...
  local t=$1 tmp d f
  shift
  tmp=$(mktemp -d)
  for d in "$@"; do
    [[ -d $d ]] || continue
    while IFS= read -r -d '' f; do
      cp "$f" "$tmp/$(sha1sum "$f" | cut -c1-16)-$(basename "$f")"
    done < <(find "$d" -type f ! -name '*.md' ! -name '*.h' ! -name '*.sh' ! -name '*.cmake' \
      ! -name CMakeLists.txt -print0)
  done
  rm -f "$OUT/${t}_seed_corpus.zip"
  (cd "$tmp" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
  rm -rf "$tmp"
}

# Shared libraries every Ubuntu runner image has; anything else a binary needs goes to $OUT/lib.
base_libs='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so'
mkdir -p "$OUT/lib"
for i in "${!names[@]}"; do
  t=${names[$i]} bin=${bins[$i]}
  cp "$bin" "$OUT/$t"
  for ext in dict options; do
    if [[ ! -f $(dirname "$bin")/$t.$ext ]]; then
      echo "oss-fuzz build: $t has no $t.$ext next to $bin" >&2
      exit 1
    fi
    cp "$(dirname "$bin")/$t.$ext" "$OUT/"
  done
  IFS=';' read -r -a dirs <<<"${corpora[$i]}"
  zip_seeds "$t" "${dirs[@]}"
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r lib path; do
    [[ $lib =~ $base_libs ]] || cp -L "$path" "$OUT/lib/$lib"
  done
done
echo "oss-fuzz build ($FUZZING_ENGINE): ${names[*]} -> $OUT"
