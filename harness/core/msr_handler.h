// The handler interface (the seed's `Msr` trait) and what a handler sees of an exit.
//
// A handler decides; the controller acts. A handler returns the value read or whether a write
// was accepted, or a guest fault, or "unsupported" (the index is not implemented here, so the
// controller's unknown-MSR policy applies, as KVM_MSR_RET_UNSUPPORTED does in KVM). A VMM-level
// failure (the seed's VmError) is an absl::Status error. Handlers never write registers or RIP;
// that happens only in Controller::Handle.
//
// State: per-vCPU and VM-wide MSR state lives in 64-bit slots that a handler reserves in a
// StateLayout when it is installed. Keeping state in slots lets the controller snapshot, restore
// and digest all of it generically. A handler with other internal state overrides
// SaveState/RestoreState (the bytes are part of snapshots and of the state digest).
//
// Fault atomicity: a handler that returns Gp() or Unsupported() must not have changed any slot,
// any internal state or guest memory. Check first, then commit. Handlers reach slots only
// through ExitContext::slot()/vm_slot() (never through a pointer kept from OnVcpuReset): the
// exit checker journals those calls (StateJournal) to see what an exit touched.
#ifndef MSRTRACE_HARNESS_MSR_HANDLER_H_
#define MSRTRACE_HARNESS_MSR_HANDLER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "harness/core/exit.h"
#include "harness/core/guest_memory.h"
#include "harness/core/vcpu.h"

namespace msrtrace {

// What a handler decided for one access.
struct MsrResult {
  enum class Kind : uint8_t {
    kOk = 0,           // Read: `value` is the result. Write: accepted (and applied).
    kGp = 1,           // Inject #GP(0); nothing changed.
    kUnsupported = 2,  // Not implemented here: the unknown-MSR policy applies.
  };
  Kind kind = Kind::kOk;
  uint64_t value = 0;

  static MsrResult Ok(uint64_t value = 0) { return {Kind::kOk, value}; }
  static MsrResult Gp() { return {Kind::kGp, 0}; }
  static MsrResult Unsupported() { return {Kind::kUnsupported, 0}; }
  bool ok() const { return kind == Kind::kOk; }
};

// Index of a 64-bit state slot.
using SlotId = uint32_t;

struct SlotInfo {
  std::string name;  // Unique within its scope; snapshots key slots by name.
  uint64_t reset = 0;
};

// The slots a controller's handlers reserved. Per-vCPU slots live in Vcpu::slots, VM-wide slots
// in the controller.
class StateLayout {
 public:
  // Reserves a per-vCPU slot with the given reset value. Names must be unique. The name is
  // stored with the current prefix (see set_name_prefix).
  SlotId AddVcpuSlot(std::string name, uint64_t reset = 0);
  // Reserves a VM-wide slot.
  SlotId AddVmSlot(std::string name, uint64_t reset = 0);
  // Prepended to the names of slots reserved from now on: a second handler set installed for
  // userspace MSR exits (Controller::BeginUserspaceInstall) gets "user:" so its slot names
  // cannot collide with the in-kernel set's.
  void set_name_prefix(std::string prefix) { prefix_ = std::move(prefix); }
  const std::vector<SlotInfo>& vcpu_slots() const { return vcpu_slots_; }
  const std::vector<SlotInfo>& vm_slots() const { return vm_slots_; }
  // Index of a named slot, or -1. O(1): snapshot restore maps every slot by name.
  int FindVcpuSlot(absl::string_view name) const;
  int FindVmSlot(absl::string_view name) const;

 private:
  std::vector<SlotInfo> vcpu_slots_;
  std::vector<SlotInfo> vm_slots_;
  absl::flat_hash_map<std::string, int> vcpu_index_;
  absl::flat_hash_map<std::string, int> vm_index_;
  std::string prefix_;
};

// The slots one exit's handlers reached through ExitContext, each with its value at that moment
// (Controller::set_state_journal). The first entry of a slot holds its value before the exit, so
// a faulting exit changed no slot iff every slot's first entry still equals the slot. Read
// accesses are noted too (slot() returns a reference). Reused: Clear() keeps the capacity, so
// noting allocates only when an exit touches more slots than any before it.
class StateJournal {
 public:
  struct Entry {
    SlotId id = 0;
    bool vm = false;  // A VM-wide slot (else one of the exiting vCPU's).
    uint64_t before = 0;
  };
  void Clear() { entries_.clear(); }
  void Note(bool vm, SlotId id, uint64_t before) { entries_.push_back(Entry{id, vm, before}); }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
};

// Everything a handler may look at or change while handling one access. Built by the
// controller for each exit (on the stack, no allocation).
class ExitContext {
 public:
  ExitContext(const Exit& exit, Vcpu& vcpu, std::vector<uint64_t>& vm_slots, GuestMemory& memory,
              WriteLog& writes, bool host_initiated, StateJournal* journal = nullptr)
      : exit_(exit),
        vcpu_(vcpu),
        vm_slots_(vm_slots),
        memory_(memory),
        writes_(writes),
        journal_(journal),
        host_initiated_(host_initiated) {}

  const Exit& exit() const { return exit_; }
  uint32_t vcpu_id() const { return vcpu_.id; }
  // Registers are read-only to handlers, except EFER (an MSR; see VcpuRegs::efer).
  const VcpuRegs& regs() const { return vcpu_.regs; }
  void set_efer(uint64_t efer) { vcpu_.regs.efer = efer; }

  // The only way to a slot (see the file comment); noted in the journal when one is set.
  uint64_t& slot(SlotId id) {
    uint64_t& s = vcpu_.slots[id];
    if (journal_ != nullptr) journal_->Note(false, id, s);
    return s;
  }
  uint64_t& vm_slot(SlotId id) {
    uint64_t& s = vm_slots_[id];
    if (journal_ != nullptr) journal_->Note(true, id, s);
    return s;
  }

  // True for accesses made by the VMM itself (KVM's host_initiated: KVM_GET/SET_MSRS, snapshot
  // restore, importer inference), which skip some guest-only checks.
  bool host_initiated() const { return host_initiated_; }

  bool ReadGuest(uint64_t gpa, void* dst, size_t len) const { return memory_.Read(gpa, dst, len); }
  // Writes guest memory and logs the write. Returns false (nothing written) if unbacked.
  bool WriteGuest(uint64_t gpa, const void* src, size_t len) {
    if (!memory_.Write(gpa, src, len)) return false;
    writes_.Append(gpa, src, len);
    return true;
  }

 private:
  const Exit& exit_;
  Vcpu& vcpu_;
  std::vector<uint64_t>& vm_slots_;
  GuestMemory& memory_;
  WriteLog& writes_;
  StateJournal* journal_;
  bool host_initiated_;
};

namespace internal_msr_handler {
// Calls of MsrHandler's own SaveState on this thread (MsrHandler::KeepsNoInternalState).
inline thread_local uint64_t default_save_state_calls = 0;
}  // namespace internal_msr_handler

class MsrHandler {
 public:
  virtual ~MsrHandler() = default;

  // RDMSR of `index`. REQUIRES: the controller dispatched `index` to this handler.
  virtual absl::StatusOr<MsrResult> Read(uint32_t index, ExitContext& ctx) = 0;
  // WRMSR of `value` to `index`.
  virtual absl::StatusOr<MsrResult> Write(uint32_t index, uint64_t value, ExitContext& ctx) = 0;

  // Name of the MSR at `index` for reports ("IA32_PAT"); empty if the handler has none.
  virtual absl::string_view MsrName(uint32_t /*index*/) const { return {}; }

  // Called once per vCPU after its slots hold their reset values, for reset values that depend
  // on the vCPU (APIC_BASE's BSP bit).
  virtual void OnVcpuReset(Vcpu& /*vcpu*/) {}

  // Internal state outside slots. Stateless handlers keep the defaults. An override must not
  // call MsrHandler::SaveState (see KeepsNoInternalState).
  virtual void SaveState(std::string* out) const {
    out->clear();
    ++internal_msr_handler::default_save_state_calls;
  }
  virtual absl::Status RestoreState(absl::string_view in) {
    return in.empty() ? absl::OkStatus()
                      : absl::InvalidArgumentError("handler has no internal state to restore");
  }

  // True when `handler` keeps no state outside slots: its SaveState is this class's own, so
  // its bytes are empty whatever happens. The exit checker skips such handlers when it
  // captures handler state around an exit.
  static bool KeepsNoInternalState(const MsrHandler& handler) {
    std::string bytes;
    const uint64_t calls = internal_msr_handler::default_save_state_calls;
    handler.SaveState(&bytes);
    return bytes.empty() && internal_msr_handler::default_save_state_calls != calls;
  }
};

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_MSR_HANDLER_H_
