#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script (also used by .clusterfuzzlite/build.sh).
#
# Uses the OSS-Fuzz environment: $CC $CXX $CFLAGS $CXXFLAGS $LIB_FUZZING_ENGINE $OUT $SRC $WORK
# (defaults below let it run outside the OSS-Fuzz image, e.g. to test it locally (done: all
# five targets built, and each ran 200 executions from its unzipped seed corpus):
#   CC=clang-14 CXX=clang++-14 CFLAGS="-fsanitize=address,fuzzer-no-link"
#   CXXFLAGS="$CFLAGS" LIB_FUZZING_ENGINE=-fsanitize=fuzzer OUT=/tmp/out fuzz/oss-fuzz/build.sh)
# Produces in $OUT, for every fuzz target: the binary, <target>_seed_corpus.zip, <target>.dict
# and <target>.options.
#
# The sanitizer and coverage flags come from $CFLAGS/$CXXFLAGS (OSS-Fuzz adds
# -fsanitize=fuzzer-no-link and the sanitizer of the build); the fuzz targets link
# $LIB_FUZZING_ENGINE. MSRTRACE_SANITIZERS stays empty so CMake adds nothing on top.
src=$(cd "$(dirname "$0")/../.." && pwd)  # The checkout this script lives in.
: "${CC:=clang}" "${CXX:=clang++}" "${CFLAGS:=}" "${CXXFLAGS:=}"
: "${LIB_FUZZING_ENGINE:=-fsanitize=fuzzer}"
: "${OUT:=$src/out}"
work=${WORK:-$(mktemp -d)}/msrtrace-build
jobs=${MSRTRACE_JOBS:-$(nproc)}

mkdir -p "$OUT"
cmake -S "$src" -B "$work" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
  -DMSRTRACE_BUILD_FUZZERS=ON -DMSRTRACE_FUZZ_ENGINE="$LIB_FUZZING_ENGINE" \
  -DMSRTRACE_BUILD_TESTS=OFF -DMSRTRACE_BUILD_BENCH=OFF -DMSRTRACE_WERROR=OFF \
  -DMSRTRACE_SANITIZERS=
targets=(exit_sequence_fuzzer trace_reader_fuzzer trace_text_fuzzer kvm_trace_parser_fuzzer
  kvm_trace_importer_fuzzer)
built=()
for t in "${targets[@]}"; do
  if ninja -C "$work" -t targets all 2>/dev/null | grep -q "^$t:"; then built+=("$t"); fi
done
ninja -C "$work" -j "$jobs" fuzz_generated "${built[@]}"

zip_seeds() {  # zip_seeds <target> <dir>...: every regular file, flat, in <target>_seed_corpus.zip
  local t=$1 tmp
  shift
  tmp=$(mktemp -d)
  for d in "$@"; do
    [[ -d $d ]] || continue
    find "$d" -type f ! -name '*.txt.md' -print0 | while IFS= read -r -d '' f; do
      cp "$f" "$tmp/$(sha1sum "$f" | cut -c1-16)-$(basename "$f")"
    done
  done
  rm -f "$OUT/${t}_seed_corpus.zip"
  (cd "$tmp" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
  rm -rf "$tmp"
}

for t in "${built[@]}"; do
  cp "$work/fuzz/$t" "$OUT/"
  [[ -f $work/fuzz/$t.dict ]] && cp "$work/fuzz/$t.dict" "$OUT/"
  [[ -f $work/fuzz/$t.options ]] && cp "$work/fuzz/$t.options" "$OUT/"
  case $t in
    trace_text_fuzzer) zip_seeds "$t" "$work/fuzz/seeds/text" "$src/corpus" ;;
    kvm_trace_parser_fuzzer | kvm_trace_importer_fuzzer) zip_seeds "$t" "$src/fuzz/seeds/kvm_trace" "$src/corpus" ;;
    *) zip_seeds "$t" "$work/fuzz/seeds/traces" "$src/corpus" ;;
  esac
done
echo "oss-fuzz build: ${built[*]} -> $OUT"
