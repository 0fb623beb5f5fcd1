// What an exit-sequence fuzzer binary is built around. exit_sequence_fuzzer.cc calls these;
// exactly one implementation is linked into each binary:
//   reference_hooks.cc  the production Controller and a registered handler set (the reference
//                       set, or a team's set: MSRTRACE_FUZZ_HANDLER_SET, see
//                       cmake/MsrtraceFuzz.cmake msrtrace_add_fuzzer);
//   planted_hooks.cc    test builds only: a deliberately broken engine or handler chosen by the
//                       MSRTRACE_PLANTED_BUG environment variable (fuzz/planted_bugs.h).
#ifndef MSRTRACE_FUZZ_FUZZ_HOOKS_H_
#define MSRTRACE_FUZZ_FUZZ_HOOKS_H_

#include "absl/status/statusor.h"
#include "fuzz/oracles.h"
#include "fuzz/trace_mutator.h"

namespace msrtrace {
namespace fuzz {

// The engine under test.
EngineFactory FuzzEngineFactory();
// The handler set the fallback trace (the mutator's starting point for inputs that do not
// decode) names; also where the mutator's index list comes from.
const char* FuzzHandlerSetName();
// The msrtrace CLI that knows that handler set, for a finding's reproduce line: "msrtrace", or
// the absolute path of a team's `<name>_msrtrace` (MSRTRACE_FUZZ_CLI, msrtrace_add_fuzzer).
const char* FuzzCliName();
// The mutator's fallback trace: the set's reset trace (reference_hooks.cc), or the planted bug's
// start trace (two vCPUs, or recorded outcomes: planted_bugs.h PlantedStartTrace).
absl::StatusOr<TraceModel> FuzzFallbackTrace();

}  // namespace fuzz
}  // namespace msrtrace

#endif  // MSRTRACE_FUZZ_FUZZ_HOOKS_H_
