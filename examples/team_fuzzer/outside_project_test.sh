#!/usr/bin/env bash
# A team's own project that uses msrtrace through add_subdirectory, exactly as docs/teams.md
# says: generated into a fresh temporary directory, configured, built (the fuzzer, its CLI and
# seeds) and run briefly.
#   outside_project_test.sh <msrtrace source dir> <C++ compiler> <C compiler> <real fuzzers ON|OFF>
# The project sets no C++ standard of its own: msrtrace's targets must carry C++17 to it.
# With ccache installed, compiles are cached with paths under the temporary directory made
# relative (CCACHE_BASEDIR), so runs after the first are quick.
set -euo pipefail
src=$(cd "$1" && pwd) cxx=$2 cc=$3 real=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/myvmm"
cat >"$tmp/myvmm/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.24)
project(myvmm LANGUAGES C CXX)
add_subdirectory($src msrtrace EXCLUDE_FROM_ALL)

add_library(myvmm_handlers STATIC myvmm_handlers.cc)
target_link_libraries(myvmm_handlers PUBLIC msrtrace::handlers)
msrtrace_add_fuzzer(NAME myvmm_fuzzer HANDLERS myvmm_handlers HANDLER_SET myvmm)
CMAKE
cat >"$tmp/myvmm/myvmm_handlers.cc" <<'CC'
// The reference set plus a scratch register at 0x4d000000 that keeps what the guest writes.
#include <memory>

#include "handlers/handler_set.h"
#include "handlers/msr_table.h"
#include "harness/core/msr_handler.h"

namespace {

class ScratchMsr : public msrtrace::MsrHandler {
 public:
  explicit ScratchMsr(msrtrace::StateLayout& layout) : slot_(layout.AddVcpuSlot("MYVMM_SCRATCH")) {}
  absl::StatusOr<msrtrace::MsrResult> Read(uint32_t, msrtrace::ExitContext& ctx) override {
    return msrtrace::MsrResult::Ok(ctx.slot(slot_));
  }
  absl::StatusOr<msrtrace::MsrResult> Write(uint32_t, uint64_t value,
                                            msrtrace::ExitContext& ctx) override {
    ctx.slot(slot_) = value;
    return msrtrace::MsrResult::Ok();
  }
  absl::string_view MsrName(uint32_t) const override { return "MYVMM_SCRATCH"; }

 private:
  msrtrace::SlotId slot_;
};

absl::Status Install(msrtrace::Controller& c, const msrtrace::CpuProfile& profile) {
  absl::Status st = msrtrace::InstallReferenceHandlers(c, profile);
  if (!st.ok()) return st;
  if (!c.Insert(0x4d000000, std::make_unique<ScratchMsr>(c.layout()))) {
    return absl::AlreadyExistsError("0x4d000000 is taken");
  }
  return absl::OkStatus();
}

const bool kRegistered =
    msrtrace::RegisterHandlerSet({"myvmm", "reference + a scratch MSR", &Install});

}  // namespace
CC

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=$tmp CCACHE_NOHASHDIR=1
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$tmp/myvmm" -B "$tmp/build" "${generator[@]}" "${launcher[@]}" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DCMAKE_C_FLAGS_DEBUG=-O0 -DMSRTRACE_BUILD_FUZZERS="$real" \
  >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/build" --target myvmm_fuzzer myvmm_fuzzer_replay -j "${MSRTRACE_JOBS:-2}" \
  >"$tmp/build.log" 2>&1 || { tail -40 "$tmp/build.log"; exit 1; }
b=$tmp/build
"$b/myvmm_msrtrace" msrs | grep -E "^0x4d000000 +MYVMM_SCRATCH +myvmm"
[[ -f $b/myvmm_fuzzer_seeds/sweep-4d000000.trace ]] || { echo "no default seeds" >&2; exit 1; }
"$b/myvmm_fuzzer_replay" --repeat=2 "$b/myvmm_fuzzer_seeds" | tail -1
if [[ $real == ON ]]; then
  bash "$src/fuzz/run_fuzzer.sh" "$b/myvmm_fuzzer" -seed=1 -runs=300 -corpus="$tmp/corpus" \
    -artifact_prefix="$tmp/" 2>&1 | tail -3
else
  "$b/myvmm_fuzzer" "$b/myvmm_fuzzer_seeds" 2>&1 | tail -1
fi
echo "outside project: ok"
