// The generic table-driven MSR handler every reference family is built from, and the helpers
// they share (canonical addresses, MAXPHYADDR masks, per-profile row resolution).
//
// A TableHandler serves every row it was built with. For each index it keeps one 64-bit slot
// (per-vCPU for MsrScope::kVcpu, VM-wide for kVm, none for kNone) named after the MSR, so
// snapshots and digests cover it; a row may instead name a state slot of its family
// (MsrRow::state, TableStateDef) or keep none (kNoState). The generic semantics, in check order:
//   install: a row with kCheckAbsentWithoutFeature and a missing feature is not installed
//          (every access is KVM_MSR_RET_UNSUPPORTED);
//   read:  kCheckWriteOnly -> Unsupported; a missing `requires_feature` -> #GP (guest only,
//          host too with kCheckFeatureGatesHost); kCheckHostOnlyRead: guest reads -> #GP;
//          kNone rows read `reset`; other rows read their slot.
//   write: kCheckReadOnly -> Unsupported (KVM has no set case: KVM_MSR_RET_UNSUPPORTED);
//          a missing `requires_feature` -> #GP (guest only);
//          kCheckWritesIgnored: guest writes are dropped (host writes are stored when the row
//          also has kCheckHostOnlyWrite); kCheckHostOnlyWrite alone: guest writes -> #GP;
//          kCheckReservedIgnored: reserved_mask bits are cleared (no #GP), and so are the
//          reserved bits in dropped_mask;
//          kCheckCanonicalize: the value is sign-extended from profile.canonical_bits();
//          kCheckCanonical: a non-canonical value -> #GP;
//          reserved_mask bits set -> #GP; read_only_mask bits changed -> #GP (guest only;
//          with kCheckReadOnlyKept they take the current value instead);
//          kCheckPatTypes / kCheckMtrrTypes: invalid memory type -> #GP;
//          kCheckLockBit: stored bit 0 set -> #GP (guest only); then the value is stored.
// Where KVM has a rule beyond these, the row carries a hook (MsrRow::read_hook/write_hook) that
// the handler calls instead of the generic path, and where an index's reset value depends on
// its position in a range or on the vCPU, a reset hook (MsrRow::reset_hook). The class is final:
// a family is its rows, and its hooks are the only code it adds (a hook reaches other rows with
// FindEntry and family or borrowed state with State). Every path is check-then-commit
// (fault-atomic).
//
// Thread-safety: none (the controller serializes exits).
#ifndef MSRTRACE_HANDLERS_TABLE_HANDLER_H_
#define MSRTRACE_HANDLERS_TABLE_HANDLER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "absl/types/span.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"
#include "harness/core/controller.h"
#include "harness/core/msr_handler.h"

namespace msrtrace {

// Sign-extends `value` from bit `bits - 1` (KVM's __canonical_address()).
inline uint64_t CanonicalizeAddress(uint64_t value, int bits) {
  const int shift = 64 - bits;
  return static_cast<uint64_t>(static_cast<int64_t>(value << shift) >> shift);
}
// True when `value` equals its own sign extension from bit `bits - 1` (ref: x86.h
// is_noncanonical_address(.., X86EMUL_F_MSR): MSR writes use the host's max VA width).
inline bool IsCanonicalAddress(uint64_t value, int bits) {
  return CanonicalizeAddress(value, bits) == value;
}
// Bits at and above MAXPHYADDR (KVM's kvm_vcpu_reserved_gpa_bits_raw()).
inline uint64_t MaxPhyAddrReservedBits(const CpuProfile& profile) {
  return profile.maxphyaddr >= 64 ? 0 : ~0ull << profile.maxphyaddr;
}
// Valid PAT memory type: 0 UC, 1 WC, 4 WT, 5 WP, 6 WB, 7 UC- (ref: x86.h kvm_pat_valid).
inline bool ValidPatType(uint64_t t) { return t < 8 && t != 2 && t != 3; }
// Valid MTRR memory type: 0, 1, 4, 5, 6 (ref: mtrr.c valid_mtrr_type, mask 0x73).
inline bool ValidMtrrType(uint64_t t) { return t < 8 && ((1u << t) & 0x73u) != 0; }

// The row as it applies to `profile`: the family's resolver (EFER's supported bits, MCG_CAP,
// the vPMU's masks...), then, for a kCheckMaxPhyAddr row, the bits at and above the profile's
// MAXPHYADDR added to reserved_mask. This is the one place MAXPHYADDR masks come from: handlers
// and hooks read the resolved row's reserved_mask.
MsrRow ResolveRow(const MsrFamilyDef& family, const MsrRow& row, const CpuProfile& profile);

// True when the row's vendor matches the profile (the family installs a handler for it, even
// when a feature gate makes guest accesses fault: KVM keeps host access to such MSRs).
inline bool RowInstalled(const MsrRow& row, const CpuProfile& profile) {
  if ((row.checks & kCheckAbsentWithoutFeature) && row.requires_feature != Feature::kCount &&
      !profile.Has(row.requires_feature)) {
    return false;
  }
  return row.vendor_only == Vendor::kUnspecified || row.vendor_only == profile.vendor;
}

// The one way rows are built: field by field (rows are data; this keeps the tables readable
// and -Wmissing-field-initializers quiet):
//   MsrRowBuilder(0x277, "IA32_PAT", "mtrr_pat").Reset(0x0007040600070406).Checks(kCheckPatTypes)
class MsrRowBuilder {
 public:
  MsrRowBuilder(uint32_t index, const char* name, const char* family) {
    r_.index = index;
    r_.last = index;
    r_.name = name;
    r_.family = family;
  }
  MsrRowBuilder& Last(uint32_t last) {
    r_.last = last;
    return *this;
  }
  MsrRowBuilder& Reset(uint64_t v) {
    r_.reset = v;
    return *this;
  }
  MsrRowBuilder& Reserved(uint64_t m) {
    r_.reserved_mask = m;
    return *this;
  }
  MsrRowBuilder& Dropped(uint64_t m) {
    r_.dropped_mask = m;
    return *this;
  }
  MsrRowBuilder& ReadOnly(uint64_t m) {
    r_.read_only_mask = m;
    return *this;
  }
  MsrRowBuilder& Checks(uint32_t c) {
    r_.checks = c;
    return *this;
  }
  MsrRowBuilder& Scope(MsrScope s) {
    r_.scope = s;
    return *this;
  }
  MsrRowBuilder& Requires(Feature f) {
    r_.requires_feature = f;
    return *this;
  }
  MsrRowBuilder& Only(Vendor v) {
    r_.vendor_only = v;
    return *this;
  }
  MsrRowBuilder& Volatile() {
    r_.volatile_value = true;
    return *this;
  }
  MsrRowBuilder& Note(const char* n) {
    r_.note = n;
    return *this;
  }
  MsrRowBuilder& State(const char* slot) {
    r_.state = slot;
    return *this;
  }
  MsrRowBuilder& OnRead(MsrReadHook h) {
    r_.read_hook = h;
    return *this;
  }
  MsrRowBuilder& OnWrite(MsrWriteHook h) {
    r_.write_hook = h;
    return *this;
  }
  MsrRowBuilder& OnReset(MsrResetHook h) {
    r_.reset_hook = h;
    return *this;
  }
  operator MsrRow() const { return r_; }  // NOLINT: implicit by design.

 private:
  MsrRow r_;
};

// Per-index report and slot name of a range row; nullptr = "<row name>_<offset hex>".
using IndexNameFn = std::string (*)(const MsrRow& row, uint32_t index);

// A state slot of a family that is not one MSR's own: shared by several rows (the kvm-clock
// GPA), or read by hooks only (the TSC offset, the APIC timer's start time). Reserved in the
// order given, before the rows' own slots.
struct TableStateDef {
  const char* name;
  uint64_t reset = 0;
  MsrScope scope = MsrScope::kVcpu;
  // Another family may have reserved it already (the TSC offset): reuse that slot.
  bool shared = false;
  // Another family's slot this one only reads, if that family reserved it (FEATURE_CONTROL for
  // the SGX hash MSRs): never reserved here; HasState() tells whether it exists.
  bool borrowed = false;
  // Reset value on the BSP (vCPU 0), when it differs (kvm_lapic_reset's APIC_BASE.BSP).
  bool has_bsp_reset = false;
  uint64_t bsp_reset = 0;
  // Reserved after the rows' own slots instead of before them (the Hyper-V TSC page state keeps
  // the layout position that snapshots and golden traces record).
  bool after_rows = false;
};

struct TableEntry {
  MsrRow row;             // Resolved for the profile.
  SlotId first_slot = 0;  // Slot of row.index; index i uses first_slot + (i - row.index).
  bool has_slots = false;
  MsrScope slot_scope = MsrScope::kVcpu;  // kVm: first_slot is a VM-wide slot.
  size_t first_name = 0;                  // Index into names_.
};

class TableHandler final : public MsrHandler {
 public:
  using Entry = TableEntry;

  // Builds the handler for `rows` (already resolved; RowInstalled ones only). Reserves in
  // `layout` the family's `state` slots (in order), then a slot for every stateful index of a
  // row without MsrRow::state.
  TableHandler(StateLayout& layout, const CpuProfile& profile, std::vector<MsrRow> rows,
               IndexNameFn index_name = nullptr, absl::Span<const TableStateDef> state = {});

  absl::StatusOr<MsrResult> Read(uint32_t index, ExitContext& ctx) override;
  absl::StatusOr<MsrResult> Write(uint32_t index, uint64_t value, ExitContext& ctx) override;
  absl::string_view MsrName(uint32_t index) const override;
  // Applies the BSP reset values of the state slots (TableStateDef::bsp_reset) and the rows'
  // reset hooks (MsrRow::reset_hook).
  void OnVcpuReset(Vcpu& vcpu) override;

  const std::vector<Entry>& entries() const { return entries_; }
  const CpuProfile& profile() const { return profile_; }

  // Registers every entry's index range at this handler (which `controller` must own).
  // Errors: kAlreadyExists naming the first index that is taken.
  absl::Status Register(Controller& controller);

  // --- For hooks -----------------------------------------------------------------------------
  // The entry whose range holds `index`, or nullptr (another row of the family: a hook reaching
  // the state of a row it aliases or clears). Binary search, no allocation.
  const Entry* FindEntry(uint32_t index) const;
  MsrResult GenericRead(const Entry& e, uint32_t index, ExitContext& ctx);
  MsrResult GenericWrite(const Entry& e, uint32_t index, uint64_t value, ExitContext& ctx);
  // The generic checks only (no commit). Returns the value to store (canonicalized) or nullopt
  // on #GP; sets *ignore when the write is to be dropped.
  absl::optional<uint64_t> CheckWrite(const Entry& e, uint32_t index, uint64_t value,
                                      ExitContext& ctx, bool* ignore);
  // True when a guest access must #GP because the row's feature is missing.
  bool FeatureGated(const Entry& e, const ExitContext& ctx) const;
  // The state slot of `index` (REQUIRES: e.has_slots).
  uint64_t& Slot(const Entry& e, uint32_t index, ExitContext& ctx) const;
  // False for a borrowed state slot no family reserved.
  bool HasState(size_t i) const { return state_[i].present; }
  // The family's state slot `i` (the position of its TableStateDef). REQUIRES: HasState(i).
  uint64_t& State(size_t i, ExitContext& ctx) const {
    const StateRef& s = state_[i];
    return s.vm ? ctx.vm_slot(s.id) : ctx.slot(s.id);
  }

 private:
  struct StateRef {
    SlotId id = 0;
    bool vm = false;
    bool present = true;
    bool has_bsp_reset = false;
    uint64_t bsp_reset = 0;
  };
  CpuProfile profile_;
  std::vector<Entry> entries_;        // Sorted by row.index, non-overlapping.
  std::vector<uint32_t> firsts_;      // entries_[i].row.index, packed for FindEntry's search.
  std::vector<size_t> reset_hooked_;  // Entries with a reset hook and per-vCPU slots.
  std::vector<std::string> names_;
  std::vector<StateRef> state_;
};

// Installs `handler` (adopted by `controller`) at every index of its rows.
absl::Status InstallTableHandler(Controller& controller, std::unique_ptr<TableHandler> handler);

// The rows `family` installs on `profile`, resolved.
std::vector<MsrRow> RowsToInstall(const MsrFamilyDef& family, const CpuProfile& profile);

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_TABLE_HANDLER_H_
