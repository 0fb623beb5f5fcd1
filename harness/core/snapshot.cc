#include "harness/core/snapshot.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "harness/core/digest.h"

namespace msrtrace {
namespace {

constexpr size_t kMaxSnapshotVcpus = 4096;

bool SameNames(const std::vector<std::string>& names, const std::vector<SlotInfo>& slots) {
  if (names.size() != slots.size()) return false;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != slots[i].name) return false;
  }
  return true;
}

void DigestRegs(Digest& d, const VcpuRegs& r) {
  for (uint64_t g : r.gpr) d.U64(g);
  d.U64(r.rip).U64(r.rflags).U64(r.cr0).U64(r.cr4).U64(r.efer).U64(r.cs_l ? 1 : 0);
  d.U64(r.interruptibility);
  const PendingException& p = r.pending;
  d.U64(p.valid).U64(p.vector).U64(p.has_error_code).U64(p.error_code).U64(p.payload);
}

bool PageIsZero(const uint8_t* page) {
  // One memcmp, not a byte loop (under -fsanitize=fuzzer each byte compare is a callback).
  static const uint8_t kZeroPage[kPageSize] = {};
  return std::memcmp(page, kZeroPage, kPageSize) == 0;
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
                         const SparseMemory& memory, Snapshot* out, bool names) {
  auto copy_names = [](const std::vector<SlotInfo>& slots, std::vector<std::string>* to) {
    to->resize(slots.size());
    for (size_t i = 0; i < slots.size(); ++i) (*to)[i] = slots[i].name;
  };
  if (names) {
    copy_names(controller.layout().vcpu_slots(), &out->vcpu_slot_names);
    copy_names(controller.layout().vm_slots(), &out->vm_slot_names);
  }
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
  // What the snapshot omits is at reset: handlers it has no state for get RestoreState("").
  const auto& handlers = controller.handlers();
  for (size_t i = snapshot.handler_states.size(); i < handlers.size(); ++i) {
    absl::Status st = handlers[i]->RestoreState(absl::string_view());
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("handler %u rejected its reset state: %s", i, st.message()));
    }
  }
  std::vector<uint64_t>& vm = controller.vm_slots();
  vm.clear();
  for (const SlotInfo& info : controller.layout().vm_slots()) vm.push_back(info.reset);
  vcpus->clear();
  memory->Clear();
  return ApplySnapshot(snapshot, controller, vcpus, memory);
}

absl::Status ApplySnapshot(const Snapshot& s, Controller& c, std::vector<Vcpu>* vcpus_out,
                           SparseMemory* memory, bool names_are_layout) {
  std::vector<Vcpu>& vcpus = *vcpus_out;
  const StateLayout& layout = c.layout();
  const auto& handlers = c.handlers();
  if (s.handler_states.size() > handlers.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("snapshot has state for %u handlers, the controller has only %u",
                        s.handler_states.size(), handlers.size()));
  }
  if (s.vm_slots.size() != s.vm_slot_names.size()) {
    return absl::InvalidArgumentError("snapshot VM-wide slot values and names differ in count");
  }
  // VM-wide slots: by position when the names are the layout's (the usual case), else by name.
  std::vector<uint64_t>& vm = c.vm_slots();
#ifndef NDEBUG
  names_are_layout = false;  // Checked, not trusted.
#endif
  if (names_are_layout || SameNames(s.vm_slot_names, layout.vm_slots())) {
    std::copy(s.vm_slots.begin(), s.vm_slots.end(), vm.begin());
  } else {
    for (size_t i = 0; i < s.vm_slot_names.size(); ++i) {
      const int to = layout.FindVmSlot(s.vm_slot_names[i]);
      if (to < 0) {
        return absl::InvalidArgumentError(
            absl::StrFormat("snapshot has VM-wide slot '%s' that no installed handler reserves",
                            s.vm_slot_names[i]));
      }
      vm[to] = s.vm_slots[i];
    }
  }
  if (!s.vcpus.empty()) {
    const bool identity = names_are_layout || SameNames(s.vcpu_slot_names, layout.vcpu_slots());
    std::vector<int> map;
    if (!identity) {
      map.resize(s.vcpu_slot_names.size());
      for (size_t i = 0; i < map.size(); ++i) {
        map[i] = layout.FindVcpuSlot(s.vcpu_slot_names[i]);
        if (map[i] < 0) {
          return absl::InvalidArgumentError(
              absl::StrFormat("snapshot has per-vCPU slot '%s' that no installed handler reserves",
                              s.vcpu_slot_names[i]));
        }
      }
    }
    bool same_ids = s.vcpus.size() == vcpus.size();
    for (size_t i = 0; same_ids && i < s.vcpus.size(); ++i) same_ids = s.vcpus[i].id == vcpus[i].id;
    if (!same_ids) {
      if (s.vcpus.size() > kMaxSnapshotVcpus) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "snapshot has %u vCPUs; at most %u are supported", s.vcpus.size(), kMaxSnapshotVcpus));
      }
      vcpus.clear();
      for (const Vcpu& sv : s.vcpus) vcpus.push_back(c.CreateVcpu(sv.id));
    }
    for (size_t k = 0; k < s.vcpus.size(); ++k) {
      const Vcpu& sv = s.vcpus[k];
      if (sv.slots.size() != s.vcpu_slot_names.size()) {
        return absl::InvalidArgumentError(
            absl::StrFormat("snapshot vCPU %u has %u slots, its layout names %u", sv.id,
                            sv.slots.size(), s.vcpu_slot_names.size()));
      }
      Vcpu& v = vcpus[k];
      v.regs = sv.regs;
      if (identity) {
        std::copy(sv.slots.begin(), sv.slots.end(), v.slots.begin());
      } else {
        for (size_t i = 0; i < map.size(); ++i) v.slots[map[i]] = sv.slots[i];
      }
    }
  }
  for (size_t i = 0; i < s.handler_states.size(); ++i) {
    absl::Status st = handlers[i]->RestoreState(s.handler_states[i]);
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("handler %u rejected its snapshot state: %s", i, st.message()));
    }
  }
  if (s.memory.PageCount() > 0) {
    for (uint64_t gpa : s.memory.PageAddresses()) {
      if (!memory->SetPage(gpa, absl::MakeConstSpan(s.memory.Page(gpa), kPageSize))) {
        return absl::InvalidArgumentError(
            absl::StrFormat("snapshot has a guest page at %#x outside guest memory", gpa));
      }
    }
  }
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
