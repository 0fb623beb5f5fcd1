#include "harness/machine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "harness/status_macros.h"

namespace msrtrace {
namespace {

constexpr uint32_t kMaxMachineVcpus = 4096;

std::string KnownNames(const std::vector<std::string>& names) {
  return names.empty() ? "none" : absl::StrJoin(names, ", ");
}

bool SameIds(const std::vector<Vcpu>& a, const std::vector<Vcpu>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].id != b[i].id || a[i].slots.size() != b[i].slots.size()) return false;
  }
  return true;
}

// Report name of a handler: the name of the first MSR it is registered at.
std::string HandlerName(const Controller& c, size_t h) {
  const MsrHandler* handler = c.handlers()[h].get();
  for (uint32_t index : c.RegisteredIndices()) {
    if (c.Find(index) == handler) return absl::StrFormat("#%u (%s)", h, c.MsrName(index));
  }
  return absl::StrFormat("#%u", h);
}

}  // namespace

void Machine::TakeResetImage() {
  reset_vcpus_ = vcpus;
  reset_vm_slots_ = controller->vm_slots();
  const auto& handlers = controller->handlers();
  reset_handler_states_.resize(handlers.size());
  for (size_t i = 0; i < handlers.size(); ++i) handlers[i]->SaveState(&reset_handler_states_[i]);
  reset_memory_ = memory;
  memory.ClearDirty();
  reset_digest_ = Digest();
}

absl::Status Machine::Reset() {
  ++resets_;
  if (SameIds(vcpus, reset_vcpus_)) {
    for (size_t i = 0; i < vcpus.size(); ++i) {
      vcpus[i].regs = reset_vcpus_[i].regs;
      std::copy(reset_vcpus_[i].slots.begin(), reset_vcpus_[i].slots.end(),
                vcpus[i].slots.begin());
    }
  } else {
    vcpus = reset_vcpus_;
  }
  std::vector<uint64_t>& vm = controller->vm_slots();
  vm.assign(reset_vm_slots_.begin(), reset_vm_slots_.end());
  const auto& handlers = controller->handlers();
  for (size_t i = 0; i < handlers.size(); ++i) {
    absl::Status st = handlers[i]->RestoreState(reset_handler_states_[i]);
    if (!st.ok()) {
      return absl::InternalError(
          absl::StrFormat("machine reset: handler %s rejected the state its SaveState gave: %s",
                          HandlerName(*controller, i), st.message()));
    }
  }
  memory.RollBack(reset_memory_);
  if (check_interval_ != 0 && resets_ % check_interval_ == 0) return CheckReset();
  return absl::OkStatus();
}

absl::Status Machine::CheckReset() {
  if (Digest() == reset_digest_) return absl::OkStatus();
  const auto& handlers = controller->handlers();
  std::string state;
  for (size_t i = 0; i < handlers.size(); ++i) {
    handlers[i]->SaveState(&state);
    if (state != reset_handler_states_[i]) {
      return absl::InternalError(absl::StrFormat(
          "machine reset: handler %s keeps state that RestoreState does not put back (every "
          "piece of handler state outside slots must round-trip through SaveState/RestoreState, "
          "harness/machine.h)",
          HandlerName(*controller, i)));
    }
  }
  return absl::InternalError(
      "machine reset: the state after the reset differs from the reset image (registers, slots "
      "or guest memory)");
}

absl::Status Machine::Restore(const Snapshot& s) {
  RETURN_IF_ERROR(Reset());
  return ApplySnapshot(s, *controller, &vcpus, &memory);
}

uint64_t Machine::Digest(bool mask_upper) const {
  return StateDigestInto(*controller, vcpus, memory, &scratch_, mask_upper);
}

absl::StatusOr<std::unique_ptr<Machine>> BuildMachine(const TraceHeader& header) {
  auto m = std::make_unique<Machine>();
  m->profile = FindRegisteredProfile(header.cpu_profile);
  if (m->profile == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown CPU profile '%s' (known: %s)", header.cpu_profile,
                        KnownNames(RegisteredProfileNames())));
  }
  m->handler_set = FindHandlerSet(header.handler_set);
  if (m->handler_set == nullptr || m->handler_set->install == nullptr) {
    std::vector<std::string> names;
    for (const HandlerSetDef* d : ListHandlerSets()) names.push_back(d->name);
    return absl::InvalidArgumentError(absl::StrFormat("unknown handler set '%s' (known: %s)",
                                                      header.handler_set, KnownNames(names)));
  }
  ControllerOptions co;
  co.unknown_msr_policy = header.unknown_msr_policy == UnknownMsrPolicy::kUnspecified
                              ? UnknownMsrPolicy::kInjectGp
                              : header.unknown_msr_policy;
  m->controller = std::make_unique<Controller>(co);
  absl::Status st = m->handler_set->install(*m->controller, *m->profile);
  if (!st.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("handler set '%s' failed to install: %s",
                                                      header.handler_set, st.message()));
  }
  const uint32_t n = header.vcpu_count == 0 ? 1 : header.vcpu_count;
  if (n > kMaxMachineVcpus) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "trace header asks for %u vCPUs; replay supports at most %u", n, kMaxMachineVcpus));
  }
  m->vcpus.reserve(n);
  for (uint32_t id = 0; id < n; ++id) m->vcpus.push_back(m->controller->CreateVcpu(id));
  m->TakeResetImage();
  return m;
}

absl::StatusOr<Machine*> MachineCache::Get(const TraceHeader& header) {
  for (Entry& e : entries_) {
    if (e.vcpu_count == header.vcpu_count && e.policy == header.unknown_msr_policy &&
        e.handler_set == header.handler_set && e.cpu_profile == header.cpu_profile) {
      RETURN_IF_ERROR(e.machine->Reset());
      return e.machine.get();
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Machine> m, BuildMachine(header));
  entries_.push_back(Entry{header.handler_set, header.cpu_profile, header.unknown_msr_policy,
                           header.vcpu_count, std::move(m)});
  return entries_.back().machine.get();
}

}  // namespace msrtrace
