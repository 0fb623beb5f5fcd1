#include "handlers/msr_table.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "handlers/families.h"
#include "handlers/syscall.h"
#include "handlers/table_handler.h"
#include "harness/core/snapshot.h"

namespace msrtrace {
namespace {

void ExpectSortedAndDisjoint(const std::vector<MsrRow>& rows, const std::string& what) {
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_LE(rows[i].index, rows[i].last) << what << " " << rows[i].name;
    if (i > 0) {
      EXPECT_LT(rows[i - 1].last, rows[i].index)
          << what
          << absl::StrFormat(": %s (%#x-%#x) overlaps or precedes %s (%#x)", rows[i - 1].name,
                             rows[i - 1].index, rows[i - 1].last, rows[i].name, rows[i].index);
    }
  }
}

TEST(MsrTableTest, RowsAreSortedAndNonOverlapping) {
  ExpectSortedAndDisjoint(MsrTable(), "all rows");
  for (const CpuProfile& p : BuiltinProfiles()) ExpectSortedAndDisjoint(MsrTable(p), p.name);
}

TEST(MsrTableTest, ReferenceFamiliesAreInInstallOrder) {
  std::vector<std::string> names;
  for (const MsrFamilyDef& f : ReferenceFamilies()) names.push_back(f.name);
  const std::vector<std::string> want = {"tsc",      "lapic", "kvm-pv",  "misc",
                                         "mtrr_pat", "mce",   "syscall", "feature",
                                         "debug",    "pmu",   "nested",  "hyperv"};
  EXPECT_EQ(names, want);
}

// A row's `family` names the family that implements it: either the MsrFamilyDef's name or a
// sub-family label used by that one family only (the lapic family labels its x2APIC rows
// "x2apic"). A label may not name, or be shared with, another family.
TEST(MsrTableTest, EveryRowsFamilyExists) {
  std::map<std::string, std::string> owner;  // Label -> family def name.
  std::set<std::string> defs;
  for (const MsrFamilyDef& f : ReferenceFamilies()) defs.insert(f.name);
  for (const MsrFamilyDef& f : ReferenceFamilies()) {
    for (const MsrRow& r : f.rows()) {
      ASSERT_STRNE(r.family, "") << r.name;
      const std::string label = r.family;
      EXPECT_TRUE(label == f.name || defs.count(label) == 0) << absl::StrFormat(
          "%s (%#x) of family '%s' is labelled with family '%s'", r.name, r.index, f.name, label);
      auto [it, inserted] = owner.emplace(label, f.name);
      EXPECT_EQ(it->second, f.name) << "label '" << label << "' used by two families";
      (void)inserted;
    }
  }
  // Each of this engineer's families labels its rows with its own name.
  for (const char* name : {"misc", "mtrr_pat", "mce", "syscall"}) {
    ASSERT_EQ(owner.count(name), 1u) << name;
    EXPECT_EQ(owner[name], name);
  }
}

TEST(MsrTableTest, EveryRowHasANameAndANote) {
  for (const MsrRow& r : MsrTable()) {
    EXPECT_STRNE(r.name, "") << absl::StrFormat("%#x", r.index);
    EXPECT_STRNE(r.note, "") << r.name;
  }
}

TEST(MsrTableTest, EveryRowIndexDispatchesAfterInstallOnEveryProfile) {
  for (const CpuProfile& p : BuiltinProfiles()) {
    Controller ctl;
    absl::Status s = InstallReferenceHandlers(ctl, p);
    ASSERT_TRUE(s.ok()) << p.name << ": " << s;
    for (const MsrRow& r : MsrTable(p)) {
      for (uint64_t i = r.index; i <= r.last; ++i) {
        EXPECT_NE(ctl.Find(static_cast<uint32_t>(i)), nullptr)
            << absl::StrFormat("%s: %s index %#x has no handler", p.name, r.name, i);
      }
    }
  }
}

TEST(MsrTableTest, EveryRegisteredIndexHasARow) {
  for (const CpuProfile& p : BuiltinProfiles()) {
    Controller ctl;
    ASSERT_TRUE(InstallReferenceHandlers(ctl, p).ok());
    const std::vector<MsrRow> rows = MsrTable();
    for (uint32_t index : ctl.RegisteredIndices()) {
      bool found = false;
      for (const MsrRow& r : rows) found |= r.index <= index && index <= r.last;
      EXPECT_TRUE(found) << absl::StrFormat("%s: %#x registered without a row", p.name, index);
    }
  }
}

TEST(MsrTableTest, InstallingTwiceFailsWithAlreadyExists) {
  Controller ctl;
  ASSERT_TRUE(InstallReferenceHandlers(ctl, DefaultProfile()).ok());
  absl::Status s = InstallReferenceHandlers(ctl, DefaultProfile());
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find("installing MSR family"), absl::string_view::npos) << s;
}

TEST(MsrTableTest, RowExistsHonoursVendorAndFeature) {
  MsrRow r;
  r.vendor_only = Vendor::kIntelVmx;
  EXPECT_TRUE(RowExists(r, *FindProfile("intel-icx")));
  EXPECT_FALSE(RowExists(r, *FindProfile("amd-zen3")));
  r.vendor_only = Vendor::kUnspecified;
  r.requires_feature = Feature::kSpecCtrl;
  EXPECT_TRUE(RowExists(r, *FindProfile("intel-icx")));
  EXPECT_FALSE(RowExists(r, *FindProfile("intel-minimal")));
}

MsrRow RowAt(const std::vector<MsrRow>& rows, uint32_t index) {
  for (const MsrRow& r : rows) {
    if (r.index == index) return r;
  }
  ADD_FAILURE() << absl::StrFormat("no row at %#x", index);
  return MsrRow();
}

TEST(MsrTableTest, ProfileTableResolvesProfileDependentMasks) {
  const std::vector<MsrRow> icx = MsrTable(*FindProfile("intel-icx"));
  EXPECT_EQ(RowAt(icx, kMsrEfer).reserved_mask, ~0xd01ull);
  EXPECT_EQ(RowAt(icx, 0x200).reserved_mask, 0xf00 | (~0ull << 46));
  EXPECT_EQ(RowAt(icx, 0x8b).reset, 0x100000000ull);
  const std::vector<MsrRow> zen3 = MsrTable(*FindProfile("amd-zen3"));
  EXPECT_EQ(RowAt(zen3, kMsrEfer).reserved_mask, ~(0xd01ull | kEferSvme | kEferFfxsr));
  EXPECT_EQ(RowAt(zen3, 0x8b).reset, 0x01000065ull);
}

TEST(MsrTableTest, HostReadsOfPlainRowsReturnTheRowReset) {
  // Every single-index row of this engineer's families that the host can read returns the
  // reset value the table prints.
  const std::set<std::string> mine = {"misc", "mtrr_pat", "mce", "syscall"};
  for (const CpuProfile& p : BuiltinProfiles()) {
    Controller ctl;
    ASSERT_TRUE(InstallReferenceHandlers(ctl, p).ok());
    Vcpu vcpu = ctl.CreateVcpu(0);
    SparseMemory mem;
    for (const MsrRow& r : MsrTable(p)) {
      if (mine.count(r.family) == 0 || r.index != r.last) continue;
      absl::StatusOr<uint64_t> v = ctl.HostRead(r.index, vcpu, mem);
      if (!v.ok()) continue;  // Write-only or faulting rows.
      EXPECT_EQ(*v, r.reset) << p.name << " " << r.name;
    }
  }
}

TEST(MsrTableTest, ReferenceStateRoundTripsThroughSnapshotOnEveryProfile) {
  for (const CpuProfile& p : BuiltinProfiles()) {
    Controller a;
    ASSERT_TRUE(InstallReferenceHandlers(a, p).ok());
    std::vector<Vcpu> vcpus = {a.CreateVcpu(0), a.CreateVcpu(1)};
    SparseMemory mem;
    ASSERT_TRUE(a.HostWrite(0x277, 0x0606060606060606ull, vcpus[1], mem).ok());
    ASSERT_TRUE(a.HostWrite(0x401, 0x8000000000000000ull, vcpus[0], mem).ok());
    ASSERT_TRUE(a.HostWrite(kMsrLstar, 0xffffffff81000000ull, vcpus[0], mem).ok());
    const Snapshot snap = CaptureSnapshot(a, vcpus, mem);

    Controller b;
    ASSERT_TRUE(InstallReferenceHandlers(b, p).ok());
    std::vector<Vcpu> restored = {b.CreateVcpu(0)};
    SparseMemory mem_b;
    absl::Status s = RestoreSnapshot(snap, b, &restored, &mem_b);
    ASSERT_TRUE(s.ok()) << p.name << ": " << s;
    EXPECT_EQ(StateDigest(b, restored, mem_b), StateDigest(a, vcpus, mem)) << p.name;
    EXPECT_EQ(*b.HostRead(0x277, restored[1], mem_b), 0x0606060606060606ull);
  }
}

}  // namespace
}  // namespace msrtrace

namespace msrtrace {
namespace {

TEST(MsrTableTest, ApicBaseRowReservesBitsAtAndAboveMaxPhyAddrOfTheProfile) {
  for (const CpuProfile& p : BuiltinProfiles()) {
    for (const MsrRow& row : MsrTable(p)) {
      if (row.index != 0x1b) continue;
      EXPECT_EQ(row.reserved_mask & (1ull << p.maxphyaddr), 1ull << p.maxphyaddr) << p.name;
      EXPECT_EQ(row.reserved_mask & (1ull << (p.maxphyaddr - 1)), 0u) << p.name;
    }
  }
}

}  // namespace
}  // namespace msrtrace
