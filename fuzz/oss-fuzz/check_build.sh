#!/usr/bin/env bash
# Checks the OSS-Fuzz / ClusterFuzzLite build the way the base-builder image runs it, without
# Docker: the checkout at $SRC/msrtrace (a temporary symlink to this checkout), the entry script
# copied to $SRC/build.sh and run with `bash -eu` from $SRC/msrtrace, and the image's variables
# (CC CXX CFLAGS CXXFLAGS LIB_FUZZING_ENGINE SRC OUT WORK SANITIZER FUZZING_ENGINE ARCHITECTURE
# FUZZING_LANGUAGE). CFLAGS are the image's defaults plus its per-sanitizer and coverage flags;
# CXXFLAGS add the image's -stdlib=libc++, which build.sh must drop.
#
#   fuzz/oss-fuzz/check_build.sh [address] [undefined] [afl]     (default: all three)
#
#   address    libFuzzer + ASan, entry .clusterfuzzlite/build.sh
#   undefined  libFuzzer + UBSan, entry fuzz/oss-fuzz/project/build.sh
#   afl        AFL++ (Debian's afl-clang-fast, its libAFLDriver.a as $LIB_FUZZING_ENGINE) + ASan,
#              entry fuzz/oss-fuzz/project/build.sh
#
# For each build it checks $OUT: exactly the shipped targets (one per fuzz/*_fuzzer.options) as
# executables, each with <t>_seed_corpus.zip (non-empty), <t>.dict, <t>.options ([libfuzzer]
# section), the sanitizer's or engine's runtime linked in, and every shared library it needs
# either a base one of the runner image or in $OUT/lib through RPATH $ORIGIN/lib. Then each
# target runs 100 inputs: libFuzzer with its .options and .dict from its seeds (-runs=100
# -seed=1); AFL++ builds run their seeds through the AFL driver, and a short afl-fuzz run per
# target when afl-fuzz works here. Uses ccache when installed (MSRTRACE_CCACHE=0: never).
# Exits non-zero on the first failure, naming the build, target and check.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
flavors=("$@")
((${#flavors[@]})) || flavors=(address undefined afl)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$tmp/src
mkdir -p "$src"
ln -s "$repo" "$src/msrtrace"

if [[ ${MSRTRACE_CCACHE:-1} != 0 ]] && command -v ccache >/dev/null; then
  # Paths under the temporary directory are hashed relative to it, so runs share the cache.
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CCACHE_BASEDIR=$tmp CCACHE_NOHASHDIR=1
fi
cc=clang-14 cxx=clang++-14
command -v "$cc" >/dev/null || cc=clang cxx=clang++

# The base-builder image's flags (infra/base-images: base-clang CFLAGS, base-builder
# SANITIZER_FLAGS_* and COVERAGE_FLAGS).
base_cflags="-O1 -fno-omit-frame-pointer -gline-tables-only -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"
asan_flags="-fsanitize=address -fsanitize-address-use-after-scope"
ubsan_checks=array-bounds,bool,builtin,enum,float-divide-by-zero,function,integer-divide-by-zero,null,object-size,return,returns-nonnull-attribute,shift,signed-integer-overflow,unsigned-integer-overflow,unreachable,vla-bound,vptr
ubsan_flags="-fsanitize=$ubsan_checks -fno-sanitize-recover=${ubsan_checks/,unsigned-integer-overflow/}"
libfuzzer_coverage="-fsanitize=fuzzer-no-link"

expected=()
for f in "$repo"/fuzz/*_fuzzer.options; do expected+=("$(basename "$f" .options)"); done
not_shipped=(exit_sequence_fuzzer_planted empty_fuzzer)

fail() {
  echo "check_build [$flavor]: $*" >&2
  exit 1
}

afl_driver() {  # The AFL++ driver library Debian's afl++ package installs.
  local d
  for d in /usr/lib/afl/libAFLDriver.a $(dpkg -L afl++ 2>/dev/null | grep '/libAFLDriver\.a$'); do
    [[ -f $d ]] && echo "$d" && return 0
  done
  return 1
}

build() {  # build <flavor>: runs the entry script as the image would; sets out.
  local entry cflags engine c=$cc cxx_=$cxx fuzzing_engine=libfuzzer sanitizer
  case $flavor in
    address)
      entry=.clusterfuzzlite/build.sh sanitizer=address
      cflags="$base_cflags $asan_flags $libfuzzer_coverage" engine=-fsanitize=fuzzer
      ;;
    undefined)
      entry=fuzz/oss-fuzz/project/build.sh sanitizer=undefined
      cflags="$base_cflags $ubsan_flags $libfuzzer_coverage" engine=-fsanitize=fuzzer
      ;;
    afl)
      command -v afl-clang-fast++ >/dev/null || fail "afl-clang-fast++ not installed (Debian: afl++)"
      engine=$(afl_driver) || fail "no libAFLDriver.a in Debian's afl++ package"
      entry=fuzz/oss-fuzz/project/build.sh sanitizer=address fuzzing_engine=afl
      c=afl-clang-fast cxx_=afl-clang-fast++
      cflags="$base_cflags $asan_flags"  # The image adds no coverage flags for AFL++.
      ;;
    *) fail "unknown build '$flavor' (want address, undefined or afl)" ;;
  esac
  out=$tmp/out-$flavor
  rm -f "$src/build.sh"
  cp "$repo/$entry" "$src/build.sh"
  echo "check_build [$flavor]: $entry with CC=$c SANITIZER=$sanitizer FUZZING_ENGINE=$fuzzing_engine"
  (
    cd "$src/msrtrace"
    env CC="$c" CXX="$cxx_" CFLAGS="$cflags" CXXFLAGS="$cflags -stdlib=libc++" \
      LIB_FUZZING_ENGINE="$engine" SRC="$src" OUT="$out" WORK="$tmp/work-$flavor" \
      SANITIZER="$sanitizer" FUZZING_ENGINE="$fuzzing_engine" ARCHITECTURE=x86_64 \
      FUZZING_LANGUAGE=c++ AFL_QUIET=1 bash -eu "$src/build.sh"
  ) >"$tmp/build-$flavor.log" 2>&1 || {
    tail -n 40 "$tmp/build-$flavor.log" >&2
    fail "build failed ($entry)"
  }
  tail -n 1 "$tmp/build-$flavor.log"
}

check_outputs() {
  local t f lib path runtime
  case $flavor in
    address) runtime=__asan_init ;;
    undefined) runtime=__ubsan_handle_ ;;
    afl) runtime=__afl_area_ptr ;;
  esac
  for f in "$out"/*; do  # Every executable in $OUT is taken for a fuzz target by the runner.
    [[ -f $f && -x $f ]] || continue
    [[ " ${expected[*]} " == *" $(basename "$f") "* ]] || fail "unexpected executable in \$OUT: $f"
  done
  for t in "${not_shipped[@]}"; do [[ ! -e $out/$t ]] || fail "$t (test instrument) shipped"; done
  for t in "${expected[@]}"; do
    [[ -x $out/$t ]] || fail "$t: no binary in \$OUT"
    grep -qa LLVMFuzzerTestOneInput "$out/$t" || fail "$t: no LLVMFuzzerTestOneInput"
    grep -qa "$runtime" "$out/$t" || fail "$t: built without $runtime"
    [[ -s $out/$t.dict ]] || fail "$t: no $t.dict"
    grep -q '^\[libfuzzer\]' "$out/$t.options" 2>/dev/null || fail "$t: no [libfuzzer] $t.options"
    (($(unzip -Z1 "$out/${t}_seed_corpus.zip" 2>/dev/null | wc -l) > 0)) ||
      fail "$t: ${t}_seed_corpus.zip missing or empty"
    [[ $(readelf -d "$out/$t" | awk '/\(RPATH\)/ {print $NF}') == "[\$ORIGIN/lib]" ]] ||
      fail "$t: no RPATH \$ORIGIN/lib"
    while read -r lib path; do
      [[ $path == "not" ]] && fail "$t: $lib not found"
      [[ $lib =~ ^(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so ]] && continue
      [[ $path == "$out/lib/"* ]] || fail "$t: $lib resolves to $path, not \$OUT/lib"
    done < <(ldd "$out/$t" | awk '$2 == "=>" {print $1, $3}')
  done
  echo "check_build [$flavor]: \$OUT holds ${#expected[@]} targets with seeds, dict, options, libs"
}

libfuzzer_args() {  # The [libfuzzer] section of an .options file as -key=value flags.
  awk '/^\[/ {s = ($0 == "[libfuzzer]")} s && /=/ && !/^#/ {gsub(/[ \t]/, ""); print "-" $0}' "$1"
}

run_targets() {
  local t dir n log
  for t in "${expected[@]}"; do
    dir=$tmp/run-$flavor/$t
    mkdir -p "$dir/seeds" "$dir/new"
    unzip -q "$out/${t}_seed_corpus.zip" -d "$dir/seeds"
    log=$dir/log
    if [[ $flavor == afl ]]; then
      # The AFL++ driver runs each file argument once when not under afl-fuzz.
      mapfile -t inputs < <(find "$dir/seeds" -type f | sort | head -n 100)
      "$out/$t" "${inputs[@]}" >"$log" 2>&1 || { tail -n 20 "$log" >&2; fail "$t: a seed failed"; }
      n=${#inputs[@]}
    else
      # shellcheck disable=SC2046
      UBSAN_OPTIONS=silence_unsigned_overflow=1:print_stacktrace=1:halt_on_error=1 \
        "$out/$t" $(libfuzzer_args "$out/$t.options") -dict="$out/$t.dict" -seed=1 -runs=100 \
        "$dir/new" "$dir/seeds" >"$log" 2>&1 || { tail -n 20 "$log" >&2; fail "$t: run failed"; }
      # libFuzzer runs every seed before it stops at -runs, so a seed corpus of more than 100
      # files runs more than 100 inputs.
      runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log")
      ((${runs:-0} >= 100)) || { tail -n 5 "$log" >&2; fail "$t: did not run 100 inputs"; }
      n=$runs
    fi
    echo "check_build [$flavor]: $t ran $n inputs"
  done
}

afl_fuzz_targets() {  # A few seconds of real afl-fuzz per target, when afl-fuzz runs here.
  local t dir timeout_s timeout_ms
  command -v afl-fuzz >/dev/null || { echo "check_build [afl]: no afl-fuzz; skipped"; return 0; }
  for t in "${expected[@]}"; do
    dir=$tmp/afl-fuzz/$t
    mkdir -p "$dir/in"
    # The four smallest seeds: afl-fuzz calibrates every seed before fuzzing. `sed -n 1,4p`, not
    # `head -n 4`: head exits after four lines, and when sort's output spans more than one write
    # sort dies of SIGPIPE, which pipefail turns into a silent exit of this script.
    find "$tmp/run-afl/$t/seeds" -type f -printf '%s %p\n' | sort -n | sed -n 1,4p |
      while read -r _ f; do cp "$f" "$dir/in/"; done
    # Per-input timeout from the .options file (seconds), as ClusterFuzz's AFL++ launcher would.
    timeout_s=$(libfuzzer_args "$out/$t.options" | sed -n 's/^-timeout=//p' | head -n 1)
    timeout_ms=$((${timeout_s:-1} * 1000))
    AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 \
      AFL_SKIP_CRASHES=1 AFL_QUIET=1 timeout 120 afl-fuzz -i "$dir/in" -o "$dir/out" -V 3 \
      -t "$timeout_ms+" -x "$out/$t.dict" -- "$out/$t" >"$dir/log" 2>&1 || {
      tail -n 15 "$dir/log" >&2
      fail "$t: afl-fuzz failed"
    }
    local execs
    execs=$(awk -F: '/^execs_done/ {gsub(/ /, "", $2); print $2}' "$dir"/out/default/fuzzer_stats)
    ((execs > 0)) || fail "$t: afl-fuzz ran no input"
    [[ -z $(find "$dir/out/default/crashes" -type f ! -name README.txt 2>/dev/null) ]] ||
      fail "$t: afl-fuzz found a crash: $dir/out/default/crashes"
    echo "check_build [afl]: afl-fuzz $t: $execs executions in 3 s"
  done
}

for flavor in "${flavors[@]}"; do
  start=$SECONDS
  build
  check_outputs
  run_targets
  [[ $flavor != afl ]] || afl_fuzz_targets
  echo "check_build [$flavor]: ok in $((SECONDS - start)) s"
done
