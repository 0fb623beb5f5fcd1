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

// The digest core, shared by the live-state and the snapshot forms. `vcpu_name(i)` and
// `vm_name(i)` give slot names.
template <typename VcpuName, typename VmName>
uint64_t DigestParts(VcpuName vcpu_name, VmName vm_name, absl::Span<const Vcpu> vcpus,
                     absl::Span<const uint64_t> vm_slots,
                     absl::Span<const std::string> handler_states, const SparseMemory& memory,
                     bool mask_upper) {
  constexpr uint64_t kLow32 = 0xffffffffull;
  Digest d;
  d.U64(vcpus.size());
  for (const Vcpu& v : vcpus) {
    d.U64(v.id);
    if (mask_upper) {
      VcpuRegs r = v.regs;
      r.reg(Gpr::kRcx) &= kLow32;
      r.reg(Gpr::kRax) &= kLow32;
      r.reg(Gpr::kRdx) &= kLow32;
      DigestRegs(d, r);
    } else {
      DigestRegs(d, v.regs);
    }
    d.U64(v.slots.size());
    for (size_t i = 0; i < v.slots.size(); ++i) d.Str(vcpu_name(i)).U64(v.slots[i]);
  }
  d.U64(vm_slots.size());
  for (size_t i = 0; i < vm_slots.size(); ++i) d.Str(vm_name(i)).U64(vm_slots[i]);
  d.U64(handler_states.size());
  for (const std::string& s : handler_states) d.Str(s);
  if (memory.PageCount() > 0) {
    for (uint64_t gpa : memory.PageAddresses()) {
      const uint8_t* page = memory.Page(gpa);
      if (PageIsZero(page)) continue;  // A zero page equals an untouched one.
      d.U64(gpa).Bytes(page, kPageSize);
    }
  }
  return d.value();
}

}  // namespace

Snapshot CaptureSnapshot(const Controller& controller, absl::Span<const Vcpu> vcpus,
                         const SparseMemory& memory) {
  Snapshot s;
  CaptureSnapshotInto(controller, vcpus, memory, &s);
  return s;
}

void CaptureSnapshotInto(const Controller& controller, absl::Span<const Vcpu> vcpus,
                         const SparseMemory& memory, Snapshot* out) {
  auto names = [](const std::vector<SlotInfo>& slots, std::vector<std::string>* to) {
    to->resize(slots.size());
    for (size_t i = 0; i < slots.size(); ++i) (*to)[i] = slots[i].name;
  };
  names(controller.layout().vcpu_slots(), &out->vcpu_slot_names);
  names(controller.layout().vm_slots(), &out->vm_slot_names);
  out->vcpus.resize(vcpus.size());
  for (size_t i = 0; i < vcpus.size(); ++i) {
    out->vcpus[i].id = vcpus[i].id;
    out->vcpus[i].regs = vcpus[i].regs;
    out->vcpus[i].slots.assign(vcpus[i].slots.begin(), vcpus[i].slots.end());
  }
  out->vm_slots = controller.vm_slots();
  out->handler_states.resize(controller.handlers().size());
  for (size_t i = 0; i < controller.handlers().size(); ++i) {
    controller.handlers()[i]->SaveState(&out->handler_states[i]);
  }
  if (memory.PageCount() == 0 && out->memory.PageCount() == 0) return;
  out->memory = memory;
}

absl::Status RestoreSnapshot(const Snapshot& snapshot, Controller& controller,
                             std::vector<Vcpu>* vcpus, SparseMemory* memory) {
  const StateLayout& layout = controller.layout();
  if (snapshot.handler_states.size() > controller.handlers().size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("snapshot has state for %u handlers, the controller has only %u",
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
    absl::Status st = controller.handlers()[i]->RestoreState(
        i < snapshot.handler_states.size() ? absl::string_view(snapshot.handler_states[i])
                                           : absl::string_view());
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
  std::vector<std::string> states;
  return StateDigestInto(controller, vcpus, memory, &states);
}

uint64_t StateDigestInto(const Controller& controller, absl::Span<const Vcpu> vcpus,
                         const SparseMemory& memory, std::vector<std::string>* scratch,
                         bool mask_upper) {
  const auto& handlers = controller.handlers();
  scratch->resize(handlers.size());
  for (size_t i = 0; i < handlers.size(); ++i) handlers[i]->SaveState(&(*scratch)[i]);
  const std::vector<SlotInfo>& vcpu_slots = controller.layout().vcpu_slots();
  const std::vector<SlotInfo>& vm_slots = controller.layout().vm_slots();
  return DigestParts([&](size_t i) -> const std::string& { return vcpu_slots[i].name; },
                     [&](size_t i) -> const std::string& { return vm_slots[i].name; }, vcpus,
                     controller.vm_slots(), *scratch, memory, mask_upper);
}

uint64_t StateDigest(const Snapshot& s) {
  return DigestParts([&](size_t i) -> const std::string& { return s.vcpu_slot_names[i]; },
                     [&](size_t i) -> const std::string& { return s.vm_slot_names[i]; }, s.vcpus,
                     s.vm_slots, s.handler_states, s.memory, /*mask_upper=*/false);
}

uint64_t RegsDigest(const VcpuRegs& regs) {
  Digest d;
  DigestRegs(d, regs);
  return d.value();
}

}  // namespace msrtrace
