#include "handlers/tsc.h"

#include <vector>

#include "gtest/gtest.h"
#include "handlers/families.h"
#include "harness/core/snapshot.h"

namespace msrtrace {
namespace {

CpuProfile WithFeatures(const char* base, std::initializer_list<Feature> add,
                        std::initializer_list<Feature> remove = {}) {
  CpuProfile p = *FindProfile(base);
  for (Feature f : add) p.features |= 1ull << static_cast<uint32_t>(f);
  for (Feature f : remove) p.features &= ~(1ull << static_cast<uint32_t>(f));
  return p;
}

class TscTest : public ::testing::Test {
 protected:
  void Init(const CpuProfile& profile) {
    ASSERT_TRUE(TscFamily().install(ctl_, profile).ok());
    vcpu_ = ctl_.CreateVcpu(0);
  }
  Outcome Do(Access a, uint32_t index, uint64_t value, uint64_t host_tsc) {
    Exit e = a == Access::kRead ? Exit::Rdmsr() : Exit::Wrmsr();
    e.host_tsc = host_tsc;
    vcpu_.regs.reg(Gpr::kRcx) = index;
    vcpu_.regs.reg(Gpr::kRax) = value & 0xffffffffu;
    vcpu_.regs.reg(Gpr::kRdx) = value >> 32;
    absl::StatusOr<Outcome> out = ctl_.Handle(e, vcpu_, mem_);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : Outcome{};
  }
  uint64_t Rd(uint32_t index, uint64_t host_tsc) {
    Outcome o = Do(Access::kRead, index, 0, host_tsc);
    EXPECT_EQ(o.kind, Outcome::Kind::kRetired);
    return o.value;
  }
  void Wr(uint32_t index, uint64_t value, uint64_t host_tsc) {
    EXPECT_EQ(Do(Access::kWrite, index, value, host_tsc).kind, Outcome::Kind::kRetired);
  }

  Controller ctl_;
  Vcpu vcpu_;
  SparseMemory mem_;
};

TEST_F(TscTest, TscReadsHostTscAtReset) {
  Init(DefaultProfile());
  EXPECT_EQ(Rd(kMsrIa32Tsc, 123456), 123456u);
}

TEST_F(TscTest, TscWriteSetsGuestTscAndItKeepsCounting) {
  Init(DefaultProfile());
  Wr(kMsrIa32Tsc, 5000, 1000);
  EXPECT_EQ(Rd(kMsrIa32Tsc, 1000), 5000u);
  EXPECT_EQ(Rd(kMsrIa32Tsc, 1700), 5700u);
}

TEST_F(TscTest, TscWriteAddsDeltaToTscAdjust) {
  Init(DefaultProfile());
  Wr(kMsrIa32Tsc, 5000, 1000);  // Offset 0 -> 4000.
  EXPECT_EQ(Rd(kMsrIa32TscAdjust, 1000), 4000u);
  Wr(kMsrIa32Tsc, 100, 2000);  // Offset 4000 -> -1900: delta -5900.
  EXPECT_EQ(Rd(kMsrIa32TscAdjust, 2000), static_cast<uint64_t>(4000 - 5900));
}

TEST_F(TscTest, TscWriteUpdatesTscAdjustEvenWithoutTheFeature) {
  // msrs.c: `ia32_tsc_adjust_msr += adj` is outside any CPUID check.
  Init(*FindProfile("intel-minimal"));
  Wr(kMsrIa32Tsc, 300, 100);
  EXPECT_EQ(Rd(kMsrIa32TscAdjust, 100), 200u);
}

TEST_F(TscTest, HostTscWriteLeavesTscAdjust) {
  Init(DefaultProfile());
  ASSERT_TRUE(ctl_.HostWrite(kMsrIa32Tsc, 777, vcpu_, mem_).ok());  // Host TSC 0 there.
  EXPECT_EQ(Rd(kMsrIa32Tsc, 10), 787u);
  EXPECT_EQ(Rd(kMsrIa32TscAdjust, 10), 0u);
}

TEST_F(TscTest, TscAdjustWriteMovesTscByTheDifference) {
  Init(DefaultProfile());
  Wr(kMsrIa32TscAdjust, 1000, 50);
  EXPECT_EQ(Rd(kMsrIa32Tsc, 50), 1050u);
  Wr(kMsrIa32TscAdjust, 400, 50);
  EXPECT_EQ(Rd(kMsrIa32Tsc, 50), 450u);
  EXPECT_EQ(Rd(kMsrIa32TscAdjust, 50), 400u);
}

TEST_F(TscTest, HostTscAdjustWriteStoresWithoutMovingTsc) {
  Init(DefaultProfile());
  ASSERT_TRUE(ctl_.HostWrite(kMsrIa32TscAdjust, 1000, vcpu_, mem_).ok());
  EXPECT_EQ(Rd(kMsrIa32TscAdjust, 50), 1000u);
  EXPECT_EQ(Rd(kMsrIa32Tsc, 50), 50u);
}

TEST_F(TscTest, TscAdjustWriteIgnoredWithoutFeature) {
  Init(WithFeatures("intel-icx", {}, {Feature::kTscAdjust}));
  Wr(kMsrIa32TscAdjust, 1000, 50);  // Retired: no #GP.
  EXPECT_EQ(Rd(kMsrIa32TscAdjust, 50), 0u);
  EXPECT_EQ(Rd(kMsrIa32Tsc, 50), 50u);
  ASSERT_TRUE(ctl_.HostWrite(kMsrIa32TscAdjust, 9, vcpu_, mem_).ok());
  EXPECT_EQ(Rd(kMsrIa32TscAdjust, 50), 0u);  // Host writes are ignored as well.
}

TEST_F(TscTest, TscOffsetIsPerVcpu) {
  Init(DefaultProfile());
  Vcpu other = ctl_.CreateVcpu(1);
  Wr(kMsrIa32Tsc, 5000, 1000);
  Exit e = Exit::Rdmsr();
  e.host_tsc = 1000;
  other.regs.reg(Gpr::kRcx) = kMsrIa32Tsc;
  ASSERT_TRUE(ctl_.Handle(e, other, mem_).ok());
  EXPECT_EQ(other.regs.reg(Gpr::kRax), 1000u);
}

TEST_F(TscTest, GuestTscHelperMatchesRdmsr) {
  Init(DefaultProfile());
  Wr(kMsrIa32Tsc, 1ull << 40, 99);
  Exit e = Exit::Rdmsr();
  e.host_tsc = 1234;
  std::vector<uint64_t> vm = ctl_.vm_slots();
  WriteLog log;
  ExitContext ctx(e, vcpu_, vm, mem_, log, false);
  EXPECT_EQ(GuestTsc(ctx, EnsureTscOffsetSlot(ctl_.layout())), Rd(kMsrIa32Tsc, 1234));
}

TEST_F(TscTest, TscOffsetSlotIsSharedByName) {
  Init(DefaultProfile());
  const int slot = ctl_.layout().FindVcpuSlot(kTscOffsetSlot);
  ASSERT_GE(slot, 0);
  EXPECT_EQ(EnsureTscOffsetSlot(ctl_.layout()), static_cast<SlotId>(slot));
}

TEST_F(TscTest, InstallingTwiceFailsWithAlreadyExists) {
  Init(DefaultProfile());
  EXPECT_EQ(TscFamily().install(ctl_, DefaultProfile()).code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(TscTest, OnlyTheTscRowIsVolatile) {
  absl::Span<const MsrRow> rows = TscFamily().rows();
  ASSERT_EQ(rows.size(), 2u);
  for (const MsrRow& row : rows) {
    EXPECT_EQ(row.volatile_value, row.index == kMsrIa32Tsc) << row.name;
    EXPECT_STREQ(row.family, "tsc");
    for (const CpuProfile& p : BuiltinProfiles()) EXPECT_TRUE(FamilyRowExists(row, p));
  }
}

TEST_F(TscTest, SnapshotRoundTripRestoresTscState) {
  Init(DefaultProfile());
  Wr(kMsrIa32Tsc, 5000, 1000);
  Wr(kMsrIa32TscAdjust, 77, 1000);
  std::vector<Vcpu> vcpus = {vcpu_};
  const Snapshot snap = CaptureSnapshot(ctl_, vcpus, mem_);
  const uint64_t digest = StateDigest(ctl_, vcpus, mem_);
  Wr(kMsrIa32Tsc, 1, 2000);
  vcpus[0] = vcpu_;
  EXPECT_NE(StateDigest(ctl_, vcpus, mem_), digest);
  ASSERT_TRUE(RestoreSnapshot(snap, ctl_, &vcpus, &mem_).ok());
  EXPECT_EQ(StateDigest(ctl_, vcpus, mem_), digest);
  vcpu_ = vcpus[0];
  EXPECT_EQ(Rd(kMsrIa32TscAdjust, 1000), 77u);
  EXPECT_EQ(Rd(kMsrIa32Tsc, 1000), 1077u);  // Offset 4000 + (77 - 4000).
}

TEST(PvclockScaleTest, TwoGigahertzIsHalfWithoutShift) {
  const PvclockScale s = ComputePvclockScale(2'000'000'000ull);
  EXPECT_EQ(s.mul, 0x80000000u);
  EXPECT_EQ(s.shift, 0);
  EXPECT_EQ(ModelPvclockScale().mul, s.mul);
}

TEST(PvclockScaleTest, OneGigahertzIsIdentity) {
  const PvclockScale s = ComputePvclockScale(1'000'000'000ull);
  EXPECT_EQ(PvclockScaleDelta(123456789, s), 123456789u);
}

TEST(PvclockScaleTest, ScalesOneSecondOfTicksToOneSecond) {
  for (uint64_t hz : {1'000'000ull, 32'768ull, 2'494'140'000ull, 3'000'000'000ull, 5'000'000'000ull,
                      10'000'000'000ull}) {
    const PvclockScale s = ComputePvclockScale(hz);
    const uint64_t ns = PvclockScaleDelta(hz, s);
    EXPECT_NEAR(static_cast<double>(ns), 1e9, 2.0) << hz;
    EXPECT_GE(s.mul, 0x80000000u) << hz;  // Normalised: at least half precision.
  }
}

}  // namespace
}  // namespace msrtrace
