// The reference set's table: ReferenceFamilies() in install order (time/APIC/PV families, then
// misc, mtrr_pat, mce, syscall, feature, debug, pmu,
// nested; docs/handlers.md), the merged, sorted
// MsrTable(), and ResolveRow(), which fills in each row's profile-dependent data (reset values
// and masks that KVM derives from CPUID, MCG_CAP or MAXPHYADDR). MsrTable(profile) returns the
// resolved rows that exist on the profile; the families build their handlers from the same
// resolved rows, so the printed table and the behaviour cannot drift.
//
// Feature-gated rows: a row with `requires_feature` is left out of MsrTable(profile) when the
// profile lacks the feature, but where KVM keeps handling the MSR (guest access #GP with return
// 1, host access allowed: SPEC_CTRL, FLUSH_CMD, TSC_AUX) its handler is still installed.
#include "handlers/msr_table.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "handlers/breadth.h"
#include "handlers/families.h"
#include "handlers/lapic.h"
#include "handlers/mce.h"
#include "handlers/misc.h"
#include "handlers/mtrr.h"
#include "handlers/syscall.h"
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

MsrRow ResolveRow(const MsrRow& row, const CpuProfile& profile) {
  const absl::string_view family = row.family;
  if (family == MiscFamily().name) return ResolveMiscRow(row, profile);
  if (family == MtrrPatFamily().name) return ResolveMtrrPatRow(row, profile);
  if (family == MceFamily().name) return ResolveMceRow(row, profile);
  if (family == SyscallFamily().name) return ResolveSyscallRow(row, profile);
  if (family == FeatureFamily().name) return ResolveFeatureRow(row, profile);
  if (family == DebugFamily().name) return ResolveDebugRow(row, profile);
  if (family == PmuFamily().name) return ResolvePmuRow(row, profile);
  if (family == NestedFamily().name) return ResolveNestedRow(row, profile);
  if (family == LapicFamily().name || family == "x2apic") return ResolveLapicRow(row, profile);
  return row;
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
      MsrRow resolved = ResolveRow(r, profile);
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

bool RowExists(const MsrRow& row, const CpuProfile& profile) {
  if (row.vendor_only != Vendor::kUnspecified && row.vendor_only != profile.vendor) return false;
  return row.requires_feature == Feature::kCount || profile.Has(row.requires_feature);
}

DeclaredRow DeclaredRowOf(const MsrRow& row, const CpuProfile& profile) {
  DeclaredRow d;
  d.first = row.index;
  d.last = row.last;
  d.reset = row.reset;
  // A mask that applies only in some modes is not a rule the oracle can check.
  // So is one whose bits are dropped instead of faulting (kCheckReservedIgnored: AMD PMU).
  d.reserved_mask = (row.checks & (kCheckReservedConditional | kCheckReservedIgnored)) != 0
                        ? 0
                        : row.reserved_mask;
  d.read_only_mask = row.read_only_mask;
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
  // The reset value is checkable for a single MSR whose reset depends neither on the profile
  // nor on the mode of another MSR (a range's rows may reset differently: MCi_CTL vs STATUS).
  if (!row.volatile_value && row.index == row.last &&
      (c & (kCheckX2ApicMode | kCheckResetVaries)) == 0 && row.scope != MsrScope::kNone) {
    d.flags |= kRowResetValue;
  }
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
