// Deliberately broken MSR exit engines and handlers, compiled only into test builds (the
// planted-bug self-test and the planted fuzzer binary). Each must be found by its oracle within
// a short bounded run; that is the proof that the oracles work. Production code is untouched:
// engine bugs wrap the real Controller in an ExitEngine, handler bugs are extra handlers in
// handler sets registered only here.
#ifndef MSRTRACE_FUZZ_PLANTED_BUGS_H_
#define MSRTRACE_FUZZ_PLANTED_BUGS_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "fuzz/oracles.h"

namespace msrtrace {
namespace fuzz {

enum class PlantedBug : uint8_t {
  kRipNotAdvanced = 0,     // Engine: retired exits leave RIP where it was.
  kUpperHalvesNotCleared,  // Engine: RDMSR keeps RAX[63:32] / RDX[63:32].
  kIndexFromFullRcx,       // Engine: the index is all of RCX (junk above bit 31 -> unknown).
  kStateChangedBeforeGp,   // Handler: stores the value, then refuses it with #GP.
  kReadsHostClock,         // Handler: RDMSR returns the host's clock.
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

}  // namespace fuzz
}  // namespace msrtrace

#endif  // MSRTRACE_FUZZ_PLANTED_BUGS_H_
