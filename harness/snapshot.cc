#include "harness/snapshot.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "harness/digest.h"

namespace msrtrace {
namespace {

void DigestRegs(Digest& d, const VcpuRegs& r) {
  for (uint64_t g : r.gpr) d.U64(g);
  d.U64(r.rip).U64(r.rflags).U64(r.cr0).U64(r.cr4).U64(r.efer).U64(r.cs_l ? 1 : 0);
  d.U64(r.interruptibility);
  const PendingException& p = r.pending;
  d.U64(p.valid).U64(p.vector).U64(p.has_error_code).U64(p.error_code).U64(p.payload);
}

bool PageIsZero(const uint8_t* page) {
  return std::all_of(page, page + kPageSize, [](uint8_t b) { return b == 0; });
}

// The digest core, shared by the live-state and the snapshot forms.
uint64_t DigestParts(absl::Span<const std::string> vcpu_names,
                     absl::Span<const std::string> vm_names, absl::Span<const Vcpu> vcpus,
                     absl::Span<const uint64_t> vm_slots,
                     absl::Span<const std::string> handler_states, const SparseMemory& memory) {
  Digest d;
  d.U64(vcpus.size());
  for (const Vcpu& v : vcpus) {
    d.U64(v.id);
    DigestRegs(d, v.regs);
    d.U64(v.slots.size());
    for (size_t i = 0; i < v.slots.size(); ++i) d.Str(vcpu_names[i]).U64(v.slots[i]);
  }
  d.U64(vm_slots.size());
  for (size_t i = 0; i < vm_slots.size(); ++i) d.Str(vm_names[i]).U64(vm_slots[i]);
  d.U64(handler_states.size());
  for (const std::string& s : handler_states) d.Str(s);
  for (uint64_t gpa : memory.PageAddresses()) {
    const uint8_t* page = memory.Page(gpa);
    if (PageIsZero(page)) continue;  // A zero page equals an untouched one.
    d.U64(gpa).Bytes(page, kPageSize);
  }
  return d.value();
}

std::vector<std::string> Names(const std::vector<SlotInfo>& slots) {
  std::vector<std::string> out;
  out.reserve(slots.size());
  for (const SlotInfo& s : slots) out.push_back(s.name);
  return out;
}

}  // namespace

Snapshot CaptureSnapshot(const Controller& controller, absl::Span<const Vcpu> vcpus,
                         const SparseMemory& memory) {
  Snapshot s;
  s.vcpu_slot_names = Names(controller.layout().vcpu_slots());
  s.vm_slot_names = Names(controller.layout().vm_slots());
  s.vcpus.assign(vcpus.begin(), vcpus.end());
  s.vm_slots = controller.vm_slots();
  s.handler_states.resize(controller.handlers().size());
  for (size_t i = 0; i < controller.handlers().size(); ++i) {
    controller.handlers()[i]->SaveState(&s.handler_states[i]);
  }
  s.memory = memory;
  return s;
}

absl::Status RestoreSnapshot(const Snapshot& snapshot, Controller& controller,
                             std::vector<Vcpu>* vcpus, SparseMemory* memory) {
  const StateLayout& layout = controller.layout();
  if (snapshot.handler_states.size() != controller.handlers().size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("snapshot has state for %u handlers, the controller has %u",
                        snapshot.handler_states.size(), controller.handlers().size()));
  }
  // Map snapshot slot positions to layout positions by name.
  std::vector<int> vcpu_map(snapshot.vcpu_slot_names.size());
  for (size_t i = 0; i < vcpu_map.size(); ++i) {
    vcpu_map[i] = layout.FindVcpuSlot(snapshot.vcpu_slot_names[i]);
    if (vcpu_map[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("snapshot has per-vCPU slot '%s' that no installed handler reserves",
                          snapshot.vcpu_slot_names[i]));
    }
  }
  if (snapshot.vm_slots.size() != snapshot.vm_slot_names.size()) {
    return absl::InvalidArgumentError("snapshot VM-wide slot values and names differ in count");
  }
  std::vector<uint64_t> vm_slots;
  for (const SlotInfo& s : layout.vm_slots()) vm_slots.push_back(s.reset);
  for (size_t i = 0; i < snapshot.vm_slot_names.size(); ++i) {
    const int to = layout.FindVmSlot(snapshot.vm_slot_names[i]);
    if (to < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("snapshot has VM-wide slot '%s' that no installed handler reserves",
                          snapshot.vm_slot_names[i]));
    }
    vm_slots[to] = snapshot.vm_slots[i];
  }
  std::vector<Vcpu> restored;
  restored.reserve(snapshot.vcpus.size());
  for (const Vcpu& sv : snapshot.vcpus) {
    if (sv.slots.size() != vcpu_map.size()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("snapshot vCPU %u has %u slots, its layout names %u", sv.id,
                          sv.slots.size(), vcpu_map.size()));
    }
    Vcpu v = controller.CreateVcpu(sv.id);
    v.regs = sv.regs;
    for (size_t i = 0; i < vcpu_map.size(); ++i) v.slots[vcpu_map[i]] = sv.slots[i];
    restored.push_back(std::move(v));
  }
  for (size_t i = 0; i < controller.handlers().size(); ++i) {
    absl::Status st = controller.handlers()[i]->RestoreState(snapshot.handler_states[i]);
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("handler %u rejected its snapshot state: %s", i, st.message()));
    }
  }
  controller.vm_slots() = std::move(vm_slots);
  *vcpus = std::move(restored);
  *memory = snapshot.memory;
  return absl::OkStatus();
}

uint64_t StateDigest(const Controller& controller, absl::Span<const Vcpu> vcpus,
                     const SparseMemory& memory) {
  std::vector<std::string> states(controller.handlers().size());
  for (size_t i = 0; i < states.size(); ++i) controller.handlers()[i]->SaveState(&states[i]);
  const std::vector<std::string> vcpu_names = Names(controller.layout().vcpu_slots());
  const std::vector<std::string> vm_names = Names(controller.layout().vm_slots());
  return DigestParts(vcpu_names, vm_names, vcpus, controller.vm_slots(), states, memory);
}

uint64_t StateDigest(const Snapshot& s) {
  return DigestParts(s.vcpu_slot_names, s.vm_slot_names, s.vcpus, s.vm_slots, s.handler_states,
                     s.memory);
}

uint64_t RegsDigest(const VcpuRegs& regs) {
  Digest d;
  DigestRegs(d, regs);
  return d.value();
}

}  // namespace msrtrace
