// The reference set's table: ReferenceFamilies() in install order (tsc, lapic, kvm-pv, misc,
// mtrr_pat, mce, syscall, feature, debug, pmu, nested, hyperv; docs/handlers.md) and the merged,
// sorted MsrTable(). MsrTable(profile) returns the rows that exist on the profile, resolved by
// ResolveRow (table_handler.h: the family's resolver, then MAXPHYADDR); the families build
// their handlers from the same resolved rows, so the printed table and the behaviour cannot
// drift.
//
// Feature-gated rows: a row with `requires_feature` is left out of MsrTable(profile) when the
// profile lacks the feature, but where KVM keeps handling the MSR (guest access #GP with return
// 1, host access allowed: SPEC_CTRL, FLUSH_CMD, TSC_AUX) its handler is still installed.
#include "handlers/msr_table.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "handlers/families.h"
#include "handlers/hyperv.h"
#include "handlers/table_handler.h"

namespace msrtrace {
namespace {

std::vector<MsrFamilyDef> MakeFamilies() {
  std::vector<MsrFamilyDef> out;
  out.push_back(TscFamily());
  out.push_back(LapicFamily());
  out.push_back(KvmPvFamily());
  out.push_back(MiscFamily());
  out.push_back(MtrrPatFamily());
  out.push_back(MceFamily());
  out.push_back(SyscallFamily());
  out.push_back(FeatureFamily());
  out.push_back(DebugFamily());
  out.push_back(PmuFamily());
  out.push_back(NestedFamily());
  out.push_back(HypervFamily());
  return out;
}

void SortRows(std::vector<MsrRow>& rows) {
  std::sort(rows.begin(), rows.end(),
            [](const MsrRow& a, const MsrRow& b) { return a.index < b.index; });
}

}  // namespace

absl::Span<const MsrFamilyDef> ReferenceFamilies() {
  static const auto* families = new std::vector<MsrFamilyDef>(MakeFamilies());
  return absl::MakeConstSpan(*families);
}

std::vector<MsrRow> MsrTable() {
  std::vector<MsrRow> rows;
  for (const MsrFamilyDef& f : ReferenceFamilies()) {
    for (const MsrRow& r : f.rows()) rows.push_back(r);
  }
  SortRows(rows);
  return rows;
}

std::vector<MsrRow> MsrTable(const CpuProfile& profile) {
  std::vector<MsrRow> rows;
  for (const MsrFamilyDef& f : ReferenceFamilies()) {
    for (const MsrRow& r : f.rows()) {
      MsrRow resolved = ResolveRow(f, r, profile);
      if (!RowExists(resolved, profile)) continue;
      if (resolved.last >= resolved.index) rows.push_back(resolved);  // Ranges may be empty.
    }
  }
  SortRows(rows);
  return rows;
}

std::vector<std::pair<uint32_t, uint32_t>> VolatileRanges(absl::Span<const MsrRow> rows) {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (const MsrRow& r : rows) {
    if (r.volatile_value) out.emplace_back(r.index, r.last);
  }
  return out;
}

DeclaredRow DeclaredRowOf(const MsrRow& row, const CpuProfile& profile) {
  DeclaredRow d;
  d.first = row.index;
  d.last = row.last;
  d.reset = row.reset;
  // A mask that applies only in some modes is not a rule the oracle can check. Bits dropped
  // instead of faulting (kCheckReservedIgnored: AMD PMU; dropped_mask) are not #GP bits.
  d.reserved_mask = (row.checks & (kCheckReservedConditional | kCheckReservedIgnored)) != 0
                        ? 0
                        : row.reserved_mask & ~row.dropped_mask;
  // A bit the profile reserves faults: the reserved rule wins (EFER.LMA without long mode).
  if (row.checks & kCheckReadOnlyKept) {
    d.ignored_mask = row.read_only_mask & ~d.reserved_mask;
  } else {
    d.read_only_mask = row.read_only_mask & ~d.reserved_mask;
  }
  d.canonical_bits = static_cast<uint8_t>(profile.canonical_bits());
  const uint32_t c = row.checks;
  if (c & kCheckCanonical) d.flags |= kRowCanonical;
  if (c & kCheckLockBit) d.flags |= kRowLockBit0;
  if (c & kCheckReadOnly) d.flags |= kRowReadOnly;
  // Guest reads #GP for write-only rows and for host-only-read rows (SMBASE) alike.
  if (c & (kCheckWriteOnly | kCheckHostOnlyRead)) d.flags |= kRowWriteOnly;
  if (c & kCheckHostOnlyWrite) d.flags |= kRowHostOnlyWrite;
  if (c & kCheckWritesIgnored) d.flags |= kRowWritesIgnored;
  if (row.scope == MsrScope::kVcpu) d.flags |= kRowPerVcpu;
  if (row.volatile_value) d.flags |= kRowVolatile;
  // Rules on written values the masks do not express: the row promises no acceptance.
  if (c & (kCheckPatTypes | kCheckMtrrTypes | kCheckX2ApicMode | kCheckReservedConditional |
           kCheckGuestMemory | kCheckValueRules)) {
    d.flags |= kRowValueRules;
  }
  // The reset value is checkable for a single MSR whose reset depends neither on the profile
  // nor on the mode of another MSR (a range's rows may reset differently: MCi_CTL vs STATUS).
  // A row no guest access reaches (an absent PV MSR) has no reset value to check.
  const bool no_access =
      (c & (kCheckReadOnly | kCheckWriteOnly)) == (kCheckReadOnly | kCheckWriteOnly);
  if (!row.volatile_value && row.index == row.last && !no_access &&
      (c & (kCheckX2ApicMode | kCheckResetVaries)) == 0 && row.scope != MsrScope::kNone) {
    d.flags |= kRowResetValue;
  }
  AddRelatedMsrs(row, &d);
  return d;
}

absl::Status InstallReferenceHandlers(Controller& controller, const CpuProfile& profile) {
  for (const MsrRow& row : MsrTable(profile)) controller.DeclareRow(DeclaredRowOf(row, profile));
  for (const MsrFamilyDef& f : ReferenceFamilies()) {
    absl::Status s = f.install(controller, profile);
    if (!s.ok()) {
      return absl::Status(
          s.code(), absl::StrCat("installing MSR family '", f.name, "' for profile '", profile.name,
                                 "': ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace msrtrace
