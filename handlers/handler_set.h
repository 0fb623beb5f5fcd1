// Named handler sets. A trace names the handler set it was recorded with; replay looks the name
// up here to build the same controller. Teams register their own sets next to the built-in ones:
//
//   static const bool kRegistered = msrtrace::RegisterHandlerSet(
//       {"acme-vmm", "ACME's MSR handlers", &InstallAcmeHandlers});
#ifndef MSRTRACE_HANDLERS_HANDLER_SET_H_
#define MSRTRACE_HANDLERS_HANDLER_SET_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "handlers/cpu_profile.h"
#include "harness/controller.h"

namespace msrtrace {

struct HandlerSetDef {
  std::string name;
  std::string description;
  // Installs the set into an empty controller for `profile`.
  absl::Status (*install)(Controller& controller, const CpuProfile& profile) = nullptr;
};

// Registers `def`. Returns false (and keeps the existing set) when the name is taken.
// Thread-safe; usually called from a static initializer.
bool RegisterHandlerSet(HandlerSetDef def);
// The set named `name`, or nullptr. Built in: "reference" (the KVM reference set) and
// "reference+fifo" (the reference set plus the seed's FIFO device at 0xabc).
const HandlerSetDef* FindHandlerSet(absl::string_view name);
std::vector<const HandlerSetDef*> ListHandlerSets();

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_HANDLER_SET_H_
