#include "harness/replay/machine.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "harness/core/status_macros.h"

namespace msrtrace {
namespace {

constexpr uint32_t kMaxMachineVcpus = 16384;  // vCPU ids 0..16383, as the importer accepts.

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
  reset_hash_ = StateHash();
}

absl::Status Machine::Reset() {
  ++resets_;
  if (SameIds(vcpus, reset_vcpus_)) {
    for (size_t i = 0; i < vcpus.size(); ++i) {
      vcpus[i].regs = reset_vcpus_[i].regs;
      std::copy(reset_vcpus_[i].slots.begin(), reset_vcpus_[i].slots.end(), vcpus[i].slots.begin());
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
  if (StateHash() == reset_hash_) return absl::OkStatus();
  const auto& handlers = controller->handlers();
  std::string state;
  for (size_t i = 0; i < handlers.size(); ++i) {
    handlers[i]->SaveState(&state);
    if (state != reset_handler_states_[i]) {
      return absl::InternalError(absl::StrFormat(
          "machine reset: handler %s keeps state that RestoreState does not put back (every "
          "piece of handler state outside slots must round-trip through SaveState/RestoreState, "
          "harness/replay/machine.h)",
          HandlerName(*controller, i)));
    }
  }
  return absl::InternalError(
      "machine reset: the state after the reset differs from the reset image (registers, slots "
      "or guest memory)");
}

absl::Status Machine::Restore(const Snapshot& s, bool names_are_layout) {
  RETURN_IF_ERROR(Reset());
  return ApplySnapshot(s, *controller, &vcpus, &memory, names_are_layout);
}

namespace {

// Word-at-a-time multiply-xorshift mixing (the digest of harness/core/digest.h goes byte by byte
// and hashes slot names; this one is for equality checks only). Bytes() runs four independent
// lanes, so long runs of slots and pages hash at several words per multiply latency.
class WordHash {
 public:
  void U64(uint64_t v) { h_ = Mix(h_ ^ v); }
  void Bytes(const uint8_t* p, size_t n) {
    U64(n);
    uint64_t lane[4] = {h_, h_ ^ 0x9e3779b97f4a7c15ull, h_ ^ 0xbf58476d1ce4e5b9ull,
                        h_ ^ 0x94d049bb133111ebull};
    uint64_t w[4];
    for (; n >= 32; p += 32, n -= 32) {
      std::memcpy(w, p, 32);
      for (int i = 0; i < 4; ++i) lane[i] = Mix(lane[i] ^ w[i]);
    }
    for (int i = 0; i < 4; ++i) U64(lane[i]);
    for (; n >= 8; p += 8, n -= 8) {
      std::memcpy(w, p, 8);
      U64(w[0]);
    }
    w[0] = 0;
    if (n != 0) std::memcpy(w, p, n);  // p may be null when n == 0 (an empty state).
    U64(w[0]);
  }
  uint64_t value() const { return h_; }

 private:
  static uint64_t Mix(uint64_t x) {
    x *= 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 32);
  }
  uint64_t h_ = 0x243f6a8885a308d3ull;
};

void HashRegs(WordHash& h, const VcpuRegs& r, bool mask_upper) {
  constexpr uint64_t kLow32 = 0xffffffffull;
  for (int g = 0; g < kNumGprs; ++g) {
    const bool masked =
        mask_upper && (g == static_cast<int>(Gpr::kRcx) || g == static_cast<int>(Gpr::kRax) ||
                       g == static_cast<int>(Gpr::kRdx));
    h.U64(masked ? r.gpr[g] & kLow32 : r.gpr[g]);
  }
  h.U64(r.rip);
  h.U64(r.rflags);
  h.U64(r.cr0);
  h.U64(r.cr4);
  h.U64(r.efer);
  h.U64((r.cs_l ? 1u : 0u) | (static_cast<uint64_t>(r.interruptibility) << 1));
  const PendingException& p = r.pending;
  h.U64((p.valid ? 1u : 0u) | (static_cast<uint64_t>(p.vector) << 8) |
        (p.has_error_code ? 1ull << 16 : 0) | (static_cast<uint64_t>(p.error_code) << 32));
  h.U64(p.payload);
}

}  // namespace

uint64_t Machine::StateHash(bool mask_upper) const {
  WordHash h;
  h.U64(vcpus.size());
  for (const Vcpu& v : vcpus) {
    h.U64(v.id);
    HashRegs(h, v.regs, mask_upper);
    h.Bytes(reinterpret_cast<const uint8_t*>(v.slots.data()), v.slots.size() * sizeof(uint64_t));
  }
  const std::vector<uint64_t>& vm = controller->vm_slots();
  h.Bytes(reinterpret_cast<const uint8_t*>(vm.data()), vm.size() * sizeof(uint64_t));
  const auto& handlers = controller->handlers();
  scratch_.resize(handlers.size());
  for (size_t i = 0; i < handlers.size(); ++i) {
    handlers[i]->SaveState(&scratch_[i]);
    h.Bytes(reinterpret_cast<const uint8_t*>(scratch_[i].data()), scratch_[i].size());
  }
  // Pages in the memory's own order, which may differ between equal memories: each page is
  // hashed alone and the page hashes are summed (no sorted address list to allocate).
  uint64_t pages = 0;
  memory.ForEachPage([&pages](uint64_t gpa, const uint8_t* page) {
    // One memcmp, not a byte loop: under -fsanitize=fuzzer every byte comparison of a loop
    // is a coverage callback (4096 per page).
    static const uint8_t kZeroPage[kPageSize] = {};
    if (std::memcmp(page, kZeroPage, kPageSize) == 0) return;  // Same as never written.
    WordHash p;
    p.U64(gpa);
    p.Bytes(page, kPageSize);
    pages += p.value();
  });
  h.U64(pages);
  return h.value();
}

uint64_t Machine::Digest(bool mask_upper) const {
  return StateDigestInto(*controller, vcpus, memory, &scratch_, mask_upper);
}

absl::StatusOr<std::unique_ptr<Machine>> BuildMachine(const TraceHeader& header) {
  auto m = std::make_unique<Machine>();
  m->profile = FindRegisteredProfile(header.cpu_profile);
  if (m->profile == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat("unknown CPU profile '%s' (known: %s)",
                                                      header.cpu_profile,
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
  // Userspace MSR routing (header.routing): a second handler set for userspace exits, and
  // KVM's filter/exit-reason rules in the controller.
  if (!header.routing.userspace_handler_set.empty()) {
    const HandlerSetDef* user = FindHandlerSet(header.routing.userspace_handler_set);
    if (user == nullptr || user->install == nullptr) {
      return absl::InvalidArgumentError(absl::StrFormat("unknown userspace handler set '%s'",
                                                        header.routing.userspace_handler_set));
    }
    m->controller->BeginUserspaceInstall();
    st = user->install(*m->controller, *m->profile);
    m->controller->EndUserspaceInstall();
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("userspace handler set '%s' failed to install: %s",
                          header.routing.userspace_handler_set, st.message()));
    }
  }
  st = header.routing.Validate();
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat("trace header: ", st.message()));
  m->controller->set_routing(header.routing);
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
  const size_t before = entries_.size();
  ASSIGN_OR_RETURN(Machine * m, GetUnreset(header));
  if (entries_.size() == before) RETURN_IF_ERROR(m->Reset());  // A new machine is at reset.
  return m;
}

absl::StatusOr<Machine*> MachineCache::GetUnreset(const TraceHeader& header) {
  for (Entry& e : entries_) {
    if (e.vcpu_count == header.vcpu_count && e.policy == header.unknown_msr_policy &&
        e.handler_set == header.handler_set && e.cpu_profile == header.cpu_profile &&
        e.routing == header.routing) {
      return e.machine.get();
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Machine> m, BuildMachine(header));
  entries_.push_back(Entry{header.handler_set, header.cpu_profile, header.unknown_msr_policy,
                           header.vcpu_count, header.routing, std::move(m)});
  return entries_.back().machine.get();
}

}  // namespace msrtrace
