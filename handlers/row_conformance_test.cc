// Row conformance over the whole reference table, the handler-side half of the row x profile
// sweep (handlers/row_sweep.h; fuzz/row_property_test.cc has the acceptance half): for every
// CPU profile and every row of MsrTable(profile), guest RDMSR/WRMSR exits through the installed
// reference set (black box: Controller::Handle) check that what the row documents holds:
//   - the value at reset is the row's `reset` (kRowResetValue rows, DeclaredRowOf);
//   - kCheckReadOnly / kCheckHostOnlyWrite: a guest write #GPs; kCheckWriteOnly /
//     kCheckHostOnlyRead: a guest read #GPs;
//   - every bit of reserved_mask, set in an otherwise valid value, #GPs; a bit of dropped_mask
//     is accepted and not kept (rows whose reserved bits are all dropped, kCheckReservedIgnored
//     and kCheckWritesIgnored, are skipped);
//   - every bit of read_only_mask (unless kCheckReadOnlyKept), changed from the value the guest
//     reads, #GPs;
//   - kCheckCanonical: non-canonical values #GP;
//   - kCheckLockBit: once a guest write set bit 0, guest writes #GP;
//   - kCheckX2ApicMode: every access #GPs outside x2APIC mode (the other checks run in x2APIC
//     mode, entered by a host write of APIC_BASE, where the profile has x2APIC);
//   - a row the profile lacks the feature of, where a handler stays installed: guest accesses
//     #GP.
// Every #GP must leave the whole state unchanged. The rows drive the tests, so a family added to
// the table, or a profile added to the catalogue, is covered without a test of its own.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "handlers/cpu_profile.h"
#include "handlers/handlers_test_util.h"
#include "handlers/lapic.h"
#include "handlers/msr_table.h"
#include "handlers/row_sweep.h"
#include "handlers/table_handler.h"

namespace msrtrace {
namespace {

using row_sweep::SweptRow;

class RowConformanceTest : public testing_util::ReferenceTest,
                           public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { Boot(GetParam().c_str()); }

  // A fresh machine; for an x2APIC row on a profile with x2APIC, in x2APIC mode.
  void Prepare(const MsrRow& row) {
    Boot(GetParam().c_str());
    if ((row.checks & kCheckX2ApicMode) != 0 && X2ApicAvailable()) {
      ASSERT_TRUE(HostWrite(kMsrIa32ApicBase, kApicBaseResetBsp | kApicBaseExtd).ok());
    }
  }
  bool X2ApicAvailable() const { return profile_.Has(Feature::kX2Apic); }

  // The access injects #GP(0) and changes nothing else (the unknown-MSR flag may be either:
  // KVM_MSR_RET_UNSUPPORTED and 1 both #GP).
  ::testing::AssertionResult Gp(Access access, uint32_t index, uint64_t value = 0) {
    VcpuRegs& r = vcpu().regs;
    // The argument registers as Exec sets them, so the digest compares only the effects.
    r.reg(Gpr::kRcx) = 0xdead000000000000ull | index;
    r.reg(Gpr::kRax) = 0xbeef000000000000ull | (value & 0xffffffffull);
    r.reg(Gpr::kRdx) = 0xbeef000000000000ull | (value >> 32);
    const PendingException before_pending = r.pending;
    const uint64_t before = StateDigest(*ctl_, vcpus_, mem_);
    absl::StatusOr<Outcome> o = Exec(access, index, value);
    const std::string what = absl::StrFormat("%s %s (%#x) <- %#x", AccessName(access),
                                             ctl_->MsrName(index), index, value);
    if (!o.ok()) return ::testing::AssertionFailure() << what << ": " << o.status();
    if (o->kind != Outcome::Kind::kGpInjected) {
      return ::testing::AssertionFailure() << what << ": retired, the row says #GP";
    }
    r.pending = before_pending;
    if (StateDigest(*ctl_, vcpus_, mem_) != before) {
      return ::testing::AssertionFailure() << what << ": state changed on #GP";
    }
    return ::testing::AssertionSuccess();
  }

  // The value the host reads (`fallback` when the host cannot read it).
  uint64_t Current(uint32_t index, uint64_t fallback) {
    absl::StatusOr<uint64_t> v = HostRead(index);
    return v.ok() ? *v : fallback;
  }

  // What a guest RDMSR returns (the host's read when the guest's #GPs).
  uint64_t GuestValue(uint32_t index, uint64_t fallback) {
    absl::StatusOr<Outcome> o = Exec(Access::kRead, index);
    if (o.ok() && o->kind == Outcome::Kind::kRetired) return o->value;
    return Current(index, fallback);
  }

  std::vector<SweptRow> Rows() const { return row_sweep::RowsOf(profile_); }
};

TEST_P(RowConformanceTest, ResetValues) {
  int checked = 0;
  for (const SweptRow& s : Rows()) {
    const MsrRow& row = s.row;
    if ((s.declared.flags & kRowResetValue) == 0) continue;
    Prepare(row);
    absl::StatusOr<uint64_t> host = HostRead(row.index);
    ASSERT_TRUE(host.ok()) << row.name << ": " << host.status();
    EXPECT_EQ(*host, row.reset) << row.name << ": value at reset";
    absl::StatusOr<Outcome> o = Exec(Access::kRead, row.index);
    ASSERT_TRUE(o.ok()) << o.status();
    if (o->kind == Outcome::Kind::kRetired) {
      EXPECT_EQ(o->value, row.reset) << row.name << ": guest read at reset";
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST_P(RowConformanceTest, AccessRestrictions) {
  for (const SweptRow& s : Rows()) {
    const MsrRow& row = s.row;
    Prepare(row);
    const bool x2_off = (row.checks & kCheckX2ApicMode) != 0 && !X2ApicAvailable();
    const bool no_write =
        x2_off || (row.checks & kCheckReadOnly) != 0 ||
        ((row.checks & kCheckHostOnlyWrite) != 0 && (row.checks & kCheckWritesIgnored) == 0);
    const bool no_read = x2_off || (row.checks & (kCheckWriteOnly | kCheckHostOnlyRead)) != 0;
    for (uint32_t index : s.Indices()) {
      if (no_write) {
        EXPECT_TRUE(Gp(Access::kWrite, index, Current(index, row.reset)));
      }
      if (no_read) {
        EXPECT_TRUE(Gp(Access::kRead, index));
      }
    }
  }
}

TEST_P(RowConformanceTest, X2ApicRegistersFaultOutsideX2ApicMode) {
  int checked = 0;
  for (const SweptRow& s : Rows()) {
    const MsrRow& row = s.row;
    if ((row.checks & kCheckX2ApicMode) == 0) continue;
    Boot(GetParam().c_str());  // xAPIC mode at reset.
    for (uint32_t index : s.Indices()) {
      EXPECT_TRUE(Gp(Access::kRead, index));
      EXPECT_TRUE(Gp(Access::kWrite, index, 0));
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

TEST_P(RowConformanceTest, EveryReservedBitFaults) {
  int checked = 0;
  for (const SweptRow& s : Rows()) {
    const MsrRow& row = s.row;
    const uint32_t dropped = kCheckReservedIgnored | kCheckWritesIgnored;
    if (row.reserved_mask == 0 || (row.checks & dropped) != 0) continue;
    // A mask that holds only in some CPU modes is not a per-row rule (see msr_table.h).
    if ((row.checks & kCheckReservedConditional) != 0) continue;
    Prepare(row);
    for (uint32_t index : s.Indices()) {
      const uint64_t base = Current(index, row.reset) & ~row.reserved_mask;
      for (int b = 0; b < 64; ++b) {
        if (((row.reserved_mask >> b) & 1) == 0) continue;
        const uint64_t value = base | (1ull << b);
        if (((row.dropped_mask >> b) & 1) != 0) {
          // Dropped: the write retires and the bit is not kept.
          Write(index, value);
          EXPECT_EQ(Current(index, 0) & (1ull << b), 0u) << row.name << ": dropped bit " << b;
          Prepare(row);
        } else {
          EXPECT_TRUE(Gp(Access::kWrite, index, value)) << "reserved bit " << b;
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0);
}

TEST_P(RowConformanceTest, EveryReadOnlyBitFaults) {
  int checked = 0;
  for (const SweptRow& s : Rows()) {
    // DeclaredRowOf: read_only_mask without the bits the profile reserves, and without the
    // kCheckReadOnlyKept ones (they are kept, not refused: the acceptance half checks them).
    const uint64_t read_only = s.declared.read_only_mask;
    if (read_only == 0) continue;
    Prepare(s.row);
    for (uint32_t index : s.Indices()) {
      const uint64_t base = GuestValue(index, s.row.reset) & ~s.row.reserved_mask;
      for (int b = 0; b < 64; ++b) {
        if (((read_only >> b) & 1) == 0) continue;
        EXPECT_TRUE(Gp(Access::kWrite, index, base ^ (1ull << b))) << "read-only bit " << b;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0);
}

TEST_P(RowConformanceTest, NonCanonicalValuesFault) {
  for (const SweptRow& s : Rows()) {
    const MsrRow& row = s.row;
    if ((row.checks & kCheckCanonical) == 0) continue;
    Prepare(row);
    const int bits = profile_.canonical_bits();
    for (uint32_t index : s.Indices()) {
      for (uint64_t v : {1ull << (bits - 1), 1ull << 62, 0x8000000000000000ull}) {
        EXPECT_TRUE(Gp(Access::kWrite, index, v & ~row.reserved_mask));
      }
    }
  }
}

TEST_P(RowConformanceTest, LockedRowsRefuseGuestWrites) {
  for (const SweptRow& s : Rows()) {
    const MsrRow& row = s.row;
    if ((row.checks & kCheckLockBit) == 0) continue;
    Prepare(row);
    const uint64_t locked = (Current(row.index, row.reset) & ~row.reserved_mask) | 1;
    Write(row.index, locked);
    EXPECT_EQ(Read(row.index), locked) << row.name;
    EXPECT_TRUE(Gp(Access::kWrite, row.index, locked));
    EXPECT_TRUE(Gp(Access::kWrite, row.index, 0));
  }
}

// A row whose feature the profile lacks is not in MsrTable(profile); where KVM keeps the handler
// (host access allowed), guest accesses #GP.
TEST_P(RowConformanceTest, RowsWithoutTheirFeatureFaultForTheGuest) {
  for (const MsrFamilyDef& f : ReferenceFamilies()) {
    for (const MsrRow& raw : f.rows()) {
      const MsrRow row = ResolveRow(f, raw, profile_);
      if (row.last < row.index || !RowInstalled(row, profile_) || RowExists(row, profile_)) {
        continue;
      }
      Boot(GetParam().c_str());
      for (uint32_t index : row_sweep::IndicesOf(row)) {
        EXPECT_TRUE(Gp(Access::kRead, index));
        EXPECT_TRUE(Gp(Access::kWrite, index, 0));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryProfile, RowConformanceTest,
                         ::testing::ValuesIn(row_sweep::ProfileNames()), &row_sweep::ParamName);

}  // namespace
}  // namespace msrtrace
