// Shared set-up of the exit-sequence fuzzers, the seed generator and the planted-bug self-test:
// the fallback trace, the mutator configuration and the oracle options, all derived from the
// handler table and the registered handler set so they never drift from the code.
#ifndef MSRTRACE_FUZZ_FUZZ_SETUP_H_
#define MSRTRACE_FUZZ_FUZZ_SETUP_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fuzz/oracles.h"
#include "fuzz/trace_mutator.h"

namespace msrtrace {
namespace fuzz {

// A trace without events: the header for `handler_set` on the default CPU profile with one vCPU
// and a compact (empty) snapshot, which means that machine at reset. Errors: BuildMachine's
// (unknown handler set).
[[nodiscard]] absl::StatusOr<TraceModel> ResetTrace(absl::string_view handler_set,
                                                    uint32_t vcpu_count = 1);

// An exit of `trace`'s first vCPU (vCPU 0 when the snapshot is compact) in 64-bit mode at RIP
// 0x401000 (length 2), outcome not recorded.
ExitEvent MakeEvent(const TraceModel& trace, Access access, uint32_t index, uint64_t value = 0);

// Mutator targets: every MSR table row (with its reserved mask) plus every index the handler
// set registers; registered indices outside the table (a team's own MSRs) are weighted 16x, so
// a team's fuzzer spends its time on its own handlers. fallback = ResetTrace(handler_set).
[[nodiscard]] absl::StatusOr<MutatorConfig> MakeMutatorConfig(absl::string_view handler_set);

// Every oracle on, read-after-write for the table's plain-storage rows.
OracleOptions MakeOracleOptions();

}  // namespace fuzz
}  // namespace msrtrace

#endif  // MSRTRACE_FUZZ_FUZZ_SETUP_H_
