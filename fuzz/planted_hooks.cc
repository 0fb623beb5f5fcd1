// Fuzz hooks for the planted-bug fuzzer (test builds only): MSRTRACE_PLANTED_BUG names the bug
// (planted_bugs.h PlantedBugName). Unset or unknown: the process aborts with the list.
#include <cstdio>
#include <cstdlib>

#include "fuzz/fuzz_hooks.h"
#include "fuzz/planted_bugs.h"

namespace msrtrace {
namespace fuzz {
namespace {

PlantedBug Bug() {
  static const PlantedBug bug = [] {
    const char* name = std::getenv("MSRTRACE_PLANTED_BUG");
    absl::optional<PlantedBug> b = ParsePlantedBug(name != nullptr ? name : "");
    if (!b.has_value()) {
      std::fprintf(stderr, "set MSRTRACE_PLANTED_BUG to one of:");
      for (int i = 0; i < kNumPlantedBugs; ++i) {
        std::fprintf(stderr, " %s", PlantedBugName(static_cast<PlantedBug>(i)));
      }
      std::fprintf(stderr, "\n");
      std::abort();
    }
    std::fprintf(stderr, "planted bug: %s (expect oracle %s)\n", PlantedBugName(*b),
                 OracleName(OracleFor(*b)));
    return *b;
  }();
  return bug;
}

}  // namespace

EngineFactory FuzzEngineFactory() { return PlantedEngineFactory(Bug()); }
const char* FuzzHandlerSetName() { return PlantedHandlerSet(Bug()); }
const char* FuzzCliName() { return "msrtrace"; }
absl::StatusOr<TraceModel> FuzzFallbackTrace() { return PlantedStartTrace(Bug()); }

}  // namespace fuzz
}  // namespace msrtrace
