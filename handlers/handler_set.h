// The built-in handler sets. The registry (HandlerSetDef, RegisterHandlerSet, FindHandlerSet,
// ListHandlerSets) is the machine layer's: harness/core/handler_registry.h. This library registers
// there, at start-up, the built-in sets and the built-in CPU profiles (handlers/cpu_profile.h):
//   "reference"       the KVM reference set;
//   "reference+fifo"  the reference set plus the seed's FIFO device at 0xabc.
// Teams register their own sets next to them:
//
//   static const bool kRegistered = msrtrace::RegisterHandlerSet(
//       {"acme-vmm", "ACME's MSR handlers", &InstallAcmeHandlers});
#ifndef MSRTRACE_HANDLERS_HANDLER_SET_H_
#define MSRTRACE_HANDLERS_HANDLER_SET_H_

#include "handlers/cpu_profile.h"
#include "harness/core/handler_registry.h"

namespace msrtrace {

// Registers the built-in sets and profiles (idempotent). Runs from a static initializer of this
// library (linked whole, see handlers/reference.cmake); callable again at no cost.
bool RegisterBuiltinHandlerSets();

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_HANDLER_SET_H_
