#include "handlers/handler_set.h"

#include "handlers/fifo.h"
#include "handlers/msr_table.h"
#include "harness/core/status_macros.h"

namespace msrtrace {
namespace {

absl::Status InstallReferenceWithFifo(Controller& controller, const CpuProfile& profile) {
  RETURN_IF_ERROR(InstallReferenceHandlers(controller, profile));
  return InstallFifo(controller, kFifoMsrIndex);
}

const bool kBuiltinsRegistered = RegisterBuiltinHandlerSets();

}  // namespace

bool RegisterBuiltinHandlerSets() {
  static const bool done = [] {
    RegisterProfileCatalog(&BuiltinProfiles);
    RegisterHandlerSet(
        {"reference", "Linux KVM's MSR emulation for the CPU profile", &InstallReferenceHandlers});
    RegisterHandlerSet({"reference+fifo", "the reference set plus the seed's FIFO device at 0xabc",
                        &InstallReferenceWithFifo});
    return true;
  }();
  (void)kBuiltinsRegistered;
  return done;
}

}  // namespace msrtrace

// The anchor handlers/reference.cmake makes every user of the library link (so the static
// initializer above runs).
extern "C" {
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
extern const bool msrtrace_builtin_handler_sets;
const bool msrtrace_builtin_handler_sets = msrtrace::RegisterBuiltinHandlerSets();
}
