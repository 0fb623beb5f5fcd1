// Deliberately broken MSR exit engines and handlers, compiled only into test builds (the
// planted-bug self-test and the planted fuzzer binary). Each must be found by its oracle within
// a short bounded run; that is the proof that the oracles work. Production code is untouched:
// engine bugs wrap the real Controller in an ExitEngine, handler bugs are extra handlers in
// handler sets registered only here.
#ifndef MSRTRACE_FUZZ_PLANTED_BUGS_H_
#define MSRTRACE_FUZZ_PLANTED_BUGS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "fuzz/oracles.h"
#include "fuzz/trace_mutator.h"

namespace msrtrace {
namespace fuzz {

enum class PlantedBug : uint8_t {
  kRipNotAdvanced = 0,           // Engine: retired exits leave RIP where it was.
  kUpperHalvesNotCleared,        // Engine: RDMSR keeps RAX[63:32] / RDX[63:32].
  kIndexFromFullRcx,             // Engine: the index is all of RCX (junk above bit 31 -> unknown).
  kStateChangedBeforeGp,         // Handler: stores the value, then refuses it with #GP.
  kReadsHostClock,               // Handler: RDMSR returns the host's clock.
  kTscAuxReadDropsBit0,          // Engine: RDMSR of MSR_TSC_AUX clears bit 0 (consistently wrong).
  kMtrrDefTypeReservedAccepted,  // Engine: WRMSR of IA32_MTRR_DEF_TYPE drops reserved bits.
  kKernelGsBaseRoutedToGsBase,   // Engine: WRMSR of MSR_KERNEL_GS_BASE reaches MSR_GS_BASE.
  kPatWriteBroadcast,            // Engine: a retired WRMSR of IA32_PAT is copied to every vCPU.
  kMiscEnableReadOnlyWritable,   // Engine: WRMSR of IA32_MISC_ENABLE stores its read-only bits.
  kTscWriteAdjustsEveryVcpu,     // Engine: a guest TSC write sets every vCPU's TSC_ADJUST.
  kDispatchEcxXor1,              // Engine: hands ECX^1 to a handler serving both (outcome: ECX).
  kCount,
};
inline constexpr int kNumPlantedBugs = static_cast<int>(PlantedBug::kCount);
const char* PlantedBugName(PlantedBug bug);
absl::optional<PlantedBug> ParsePlantedBug(absl::string_view name);
// The oracle that must find `bug`.
Oracle OracleFor(PlantedBug bug);

// Index of the planted handlers of the handler-level bugs (outside every reference range).
inline constexpr uint32_t kPlantedMsr = 0x4d534100;

// The handler set the bug's fuzzing runs on ("reference" for engine bugs; "planted-<bug>", the
// reference set plus the broken handler at kPlantedMsr, for handler bugs).
const char* PlantedHandlerSet(PlantedBug bug);
// The engine under test for `bug`.
EngineFactory PlantedEngineFactory(PlantedBug bug);
// The trace the bug's fuzzing starts from: the handler set's reset trace (two vCPUs for the
// vcpu-isolation bugs), or for recorded-outcome a short trace with outcomes recorded from the
// reference engine (MSR_TSC_AUX written and read back), as a corpus seed carries them.
absl::StatusOr<TraceModel> PlantedStartTrace(PlantedBug bug);

}  // namespace fuzz
}  // namespace msrtrace

#endif  // MSRTRACE_FUZZ_PLANTED_BUGS_H_
