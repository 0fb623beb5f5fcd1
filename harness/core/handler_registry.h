// The registries the machine layer builds machines from: named handler sets and the CPU profile
// catalogue. A trace names its handler set and profile; BuildMachine (harness/replay/machine.h)
// looks both up here. The reference handlers (handlers/) register their sets and their built-in
// profiles at start-up; teams register their own sets the same way:
//
//   static const bool kRegistered = msrtrace::RegisterHandlerSet(
//       {"acme-vmm", "ACME's MSR handlers", &InstallAcmeHandlers});
//
// Dependencies run one way: handlers/ depends on this layer, never the reverse.
#ifndef MSRTRACE_HARNESS_HANDLER_REGISTRY_H_
#define MSRTRACE_HARNESS_HANDLER_REGISTRY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "harness/core/controller.h"
#include "harness/core/cpu_profile.h"

namespace msrtrace {

struct HandlerSetDef {
  std::string name;
  std::string description;
  // Installs the set into an empty controller for `profile`.
  absl::Status (*install)(Controller& controller, const CpuProfile& profile) = nullptr;
};

// Registers `def`. Returns false (and keeps the existing set) when the name is taken or
// `def.install` is null. Thread-safe; usually called from a static initializer.
bool RegisterHandlerSet(HandlerSetDef def);
// The set named `name`, or nullptr. The pointer stays valid for the life of the process.
const HandlerSetDef* FindHandlerSet(absl::string_view name);
// Every registered set in registration order.
std::vector<const HandlerSetDef*> ListHandlerSets();

// A function returning a stable list of profiles (the first is the default).
using ProfileCatalog = const std::vector<CpuProfile>& (*)();
// Adds the profiles of `catalog` to those machines can be built for. Thread-safe; idempotent
// for the same catalogue.
void RegisterProfileCatalog(ProfileCatalog catalog);
// The registered profile named `name`, or nullptr.
const CpuProfile* FindRegisteredProfile(absl::string_view name);
// Names of every registered profile, in registration order.
std::vector<std::string> RegisteredProfileNames();

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_HANDLER_REGISTRY_H_
