// Fuzz hooks for production builds: Controller::Handle on a registered handler set.
#include "fuzz/fuzz_hooks.h"
#include "fuzz/fuzz_setup.h"

#ifndef MSRTRACE_FUZZ_HANDLER_SET
#define MSRTRACE_FUZZ_HANDLER_SET "reference"
#endif
#ifndef MSRTRACE_FUZZ_CLI
#define MSRTRACE_FUZZ_CLI "msrtrace"
#endif

namespace msrtrace {
namespace fuzz {

EngineFactory FuzzEngineFactory() { return ReferenceEngineFactory(); }
const char* FuzzHandlerSetName() { return MSRTRACE_FUZZ_HANDLER_SET; }
const char* FuzzCliName() { return MSRTRACE_FUZZ_CLI; }
absl::StatusOr<TraceModel> FuzzFallbackTrace() { return ResetTrace(MSRTRACE_FUZZ_HANDLER_SET); }

}  // namespace fuzz
}  // namespace msrtrace
