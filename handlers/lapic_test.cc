#include "handlers/lapic.h"

#include <initializer_list>
#include <vector>

#include "gtest/gtest.h"
#include "handlers/tsc.h"
#include "harness/core/snapshot.h"

namespace msrtrace {
namespace {

constexpr uint32_t kX2Id = 0x802;
constexpr uint32_t kX2Version = 0x803;
constexpr uint32_t kX2Tpr = 0x808;
constexpr uint32_t kX2Ppr = 0x80a;
constexpr uint32_t kX2Eoi = 0x80b;
constexpr uint32_t kX2Ldr = 0x80d;
constexpr uint32_t kX2Dfr = 0x80e;
constexpr uint32_t kX2Spiv = 0x80f;
constexpr uint32_t kX2Isr0 = 0x810;
constexpr uint32_t kX2Esr = 0x828;
constexpr uint32_t kX2Cmci = 0x82f;
constexpr uint32_t kX2Icr = 0x830;
constexpr uint32_t kX2Icr2 = 0x831;
constexpr uint32_t kX2Lvtt = 0x832;
constexpr uint32_t kX2Lvt0 = 0x835;
constexpr uint32_t kX2LvtErr = 0x837;
constexpr uint32_t kX2Tmict = 0x838;
constexpr uint32_t kX2Tmcct = 0x839;
constexpr uint32_t kX2Tdcr = 0x83e;
constexpr uint32_t kX2SelfIpi = 0x83f;
constexpr uint64_t kX2ApicOn = kApicBaseResetBsp | kApicBaseExtd;
constexpr uint64_t kDeadlineMode = 2u << 17;
constexpr uint64_t kPeriodicMode = 1u << 17;

CpuProfile Without(const char* base, Feature f) {
  CpuProfile p = *FindProfile(base);
  p.features &= ~(1ull << static_cast<uint32_t>(f));
  return p;
}

class LapicTest : public ::testing::Test {
 protected:
  void Init(const CpuProfile& profile, int vcpus = 1) {
    ASSERT_TRUE(LapicFamily().install(ctl_, profile).ok());
    ASSERT_TRUE(TscFamily().install(ctl_, profile).ok());  // Order does not matter.
    for (int i = 0; i < vcpus; ++i) vcpus_.push_back(ctl_.CreateVcpu(i));
  }
  Outcome Do(Access a, uint32_t index, uint64_t value = 0, int cpu = 0) {
    Exit e = a == Access::kRead ? Exit::Rdmsr() : Exit::Wrmsr();
    e.host_tsc = host_tsc_;
    Vcpu& v = vcpus_[cpu];
    v.regs.pending = PendingException{};
    v.regs.reg(Gpr::kRcx) = index;
    v.regs.reg(Gpr::kRax) = value & 0xffffffffu;
    v.regs.reg(Gpr::kRdx) = value >> 32;
    absl::StatusOr<Outcome> out = ctl_.Handle(e, v, mem_);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : Outcome{};
  }
  uint64_t Rd(uint32_t index, int cpu = 0) {
    Outcome o = Do(Access::kRead, index, 0, cpu);
    EXPECT_EQ(o.kind, Outcome::Kind::kRetired) << std::hex << index;
    return o.value;
  }
  void Wr(uint32_t index, uint64_t value, int cpu = 0) {
    EXPECT_EQ(Do(Access::kWrite, index, value, cpu).kind, Outcome::Kind::kRetired)
        << std::hex << index << " <- " << value;
  }
  bool RdFaults(uint32_t index) {
    return Do(Access::kRead, index).kind == Outcome::Kind::kGpInjected;
  }
  bool WrFaults(uint32_t index, uint64_t value) {
    return Do(Access::kWrite, index, value).kind == Outcome::Kind::kGpInjected;
  }
  void EnterX2ApicWithSoftwareEnable() {
    Wr(kMsrIa32ApicBase, kX2ApicOn);
    Wr(kX2Spiv, 0x1ff);
  }
  uint64_t Digest() { return StateDigest(ctl_, vcpus_, mem_); }
  // Sets up the access, then checks that the #GP it gets changes nothing but the pending
  // exception (pre-set, so the digests compare everything else).
  bool FaultIsAtomic(Access a, uint32_t index, uint64_t value) {
    Vcpu& v = vcpus_[0];
    v.regs.reg(Gpr::kRcx) = index;
    v.regs.reg(Gpr::kRax) = value & 0xffffffffu;
    v.regs.reg(Gpr::kRdx) = value >> 32;
    v.regs.pending = PendingException::Gp0();
    const uint64_t before = Digest();
    Exit e = a == Access::kRead ? Exit::Rdmsr() : Exit::Wrmsr();
    e.host_tsc = host_tsc_;
    absl::StatusOr<Outcome> out = ctl_.Handle(e, v, mem_);
    return out.ok() && out->kind == Outcome::Kind::kGpInjected && Digest() == before;
  }

  Controller ctl_;
  std::vector<Vcpu> vcpus_;
  SparseMemory mem_;
  uint64_t host_tsc_ = 1'000'000;
};

TEST_F(LapicTest, ApicBaseBspResetValue) {
  Init(DefaultProfile(), 2);
  EXPECT_EQ(Rd(kMsrIa32ApicBase, 0), 0xfee00900u);
}

TEST_F(LapicTest, ApicBaseApResetValue) {
  Init(DefaultProfile(), 2);
  EXPECT_EQ(Rd(kMsrIa32ApicBase, 1), 0xfee00800u);
}

TEST_F(LapicTest, ApicBaseReservedBitsFault) {
  Init(DefaultProfile());                                                   // MAXPHYADDR 46.
  EXPECT_TRUE(WrFaults(kMsrIa32ApicBase, kApicBaseResetBsp | 1));           // Bit 0.
  EXPECT_TRUE(WrFaults(kMsrIa32ApicBase, kApicBaseResetBsp | 0x200));       // Bit 9.
  EXPECT_TRUE(WrFaults(kMsrIa32ApicBase, kApicBaseResetBsp | 1ull << 46));  // MAXPHYADDR.
  Wr(kMsrIa32ApicBase, 0xfed40900);  // Relocation below MAXPHYADDR is fine (KUT apic).
  EXPECT_EQ(Rd(kMsrIa32ApicBase), 0xfed40900u);
}

TEST_F(LapicTest, ApicBaseExtdWithoutX2ApicFeatureFaultsForHostToo) {
  Init(*FindProfile("intel-minimal"));
  EXPECT_TRUE(WrFaults(kMsrIa32ApicBase, kX2ApicOn));
  EXPECT_FALSE(ctl_.HostWrite(kMsrIa32ApicBase, kX2ApicOn, vcpus_[0], mem_).ok());
}

TEST_F(LapicTest, ApicBaseExtdWithoutEnableIsInvalid) {
  Init(DefaultProfile());
  EXPECT_TRUE(WrFaults(kMsrIa32ApicBase, kApicDefaultPhysBase | kApicBaseExtd));
  EXPECT_FALSE(
      ctl_.HostWrite(kMsrIa32ApicBase, kApicDefaultPhysBase | kApicBaseExtd, vcpus_[0], mem_).ok());
}

TEST_F(LapicTest, ApicBaseX2ApicToXApicFaults) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  EXPECT_TRUE(WrFaults(kMsrIa32ApicBase, kApicBaseResetBsp));
  EXPECT_EQ(Rd(kMsrIa32ApicBase), kX2ApicOn);
  Wr(kMsrIa32ApicBase, kApicDefaultPhysBase | kApicBaseBsp);  // x2APIC -> disabled is fine.
}

TEST_F(LapicTest, ApicBaseDisabledToX2ApicFaults) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kApicDefaultPhysBase);
  EXPECT_TRUE(WrFaults(kMsrIa32ApicBase, kApicDefaultPhysBase | kApicBaseEnable | kApicBaseExtd));
}

TEST_F(LapicTest, HostMayMakeForbiddenApicBaseTransitions) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  ASSERT_TRUE(ctl_.HostWrite(kMsrIa32ApicBase, kApicBaseResetBsp, vcpus_[0], mem_).ok());
  ASSERT_TRUE(ctl_.HostWrite(kMsrIa32ApicBase, kApicDefaultPhysBase, vcpus_[0], mem_).ok());
  ASSERT_TRUE(ctl_.HostWrite(kMsrIa32ApicBase, kX2ApicOn, vcpus_[0], mem_).ok());
  EXPECT_EQ(Rd(kMsrIa32ApicBase), kX2ApicOn);
}

TEST_F(LapicTest, X2ApicMsrFaultsInXApicMode) {
  Init(DefaultProfile());
  EXPECT_TRUE(RdFaults(kX2Id));
  EXPECT_TRUE(WrFaults(kX2Tpr, 0));
  EXPECT_TRUE(WrFaults(kX2Eoi, 0));
}

TEST_F(LapicTest, X2ApicMsrFaultsWhenApicDisabled) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  Wr(kMsrIa32ApicBase, kApicDefaultPhysBase | kApicBaseBsp);
  EXPECT_TRUE(RdFaults(kX2Id));
}

TEST_F(LapicTest, X2ApicIdAndLdrDerivedFromVcpuId) {
  Init(DefaultProfile(), 0x14);
  Wr(kMsrIa32ApicBase, kApicBaseResetAp | kApicBaseExtd, 0x13);
  EXPECT_EQ(Rd(kX2Id, 0x13), 0x13u);
  EXPECT_EQ(Rd(kX2Ldr, 0x13), (1u << 16) | (1u << 3));
  EXPECT_EQ(X2ApicLdr(0x13), (1u << 16) | (1u << 3));
}

TEST_F(LapicTest, X2ApicVersionReportsSixLvtEntriesWithoutCmci) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  EXPECT_EQ(Rd(kX2Version), 0x50014u);
  EXPECT_TRUE(RdFaults(kX2Cmci));
  EXPECT_TRUE(WrFaults(kX2Cmci, 0x10000));
}

TEST_F(LapicTest, X2ApicCmciExistsWithCmciP) {
  CpuProfile p = DefaultProfile();
  p.mcg_cap_extra |= 1ull << 10;  // MCG_CMCI_P.
  Init(p);
  EnterX2ApicWithSoftwareEnable();
  EXPECT_EQ(Rd(kX2Version), 0x60014u);
  Wr(kX2Cmci, 0xffffffff);
  EXPECT_EQ(Rd(kX2Cmci), 0x117ffu);
}

TEST_F(LapicTest, X2ApicIcrReservedBitsFault) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  for (int bit : {13, 16, 17, 20, 25, 31}) {
    EXPECT_TRUE(WrFaults(kX2Icr, 0x30 | (1ull << bit))) << bit;
  }
  EXPECT_EQ(Rd(kX2Icr), 0u);
}

TEST_F(LapicTest, X2ApicIcrClearsBusyAndReads64Bits) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  Wr(kX2Icr, (0x12345678ull << 32) | 0x1000 | 0x4030);  // BUSY, level assert, vector 0x30.
  EXPECT_EQ(Rd(kX2Icr), (0x12345678ull << 32) | 0x4030);
}

TEST_F(LapicTest, X2ApicUpperHalfOfNonIcrWriteFaults) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  EXPECT_TRUE(WrFaults(kX2Tpr, 1ull << 32));
  EXPECT_TRUE(WrFaults(kX2Eoi, 1ull << 40));
  Wr(kX2Tpr, 0x1ff);  // Bits 31:8 are dropped, not faulted.
  EXPECT_EQ(Rd(kX2Tpr), 0xffu);
  EXPECT_EQ(Rd(kX2Ppr), 0xffu);
}

TEST_F(LapicTest, X2ApicIdLdrDfrIcr2WritesFault) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  for (uint32_t msr : {kX2Id, kX2Ldr, kX2Dfr, kX2Icr2}) EXPECT_TRUE(WrFaults(msr, 0)) << msr;
  EXPECT_TRUE(RdFaults(kX2Dfr));
  EXPECT_TRUE(RdFaults(kX2Icr2));
  EXPECT_TRUE(RdFaults(0x809));  // ARBPRI.
}

TEST_F(LapicTest, X2ApicEsrNonZeroWriteFaults) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  Wr(kX2Esr, 0);
  EXPECT_TRUE(WrFaults(kX2Esr, 1));
  EXPECT_EQ(Rd(kX2Esr), 0u);
}

TEST_F(LapicTest, X2ApicSelfIpiAcceptsOnlyVectorBits) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  Wr(kX2SelfIpi, 0xef);
  EXPECT_TRUE(WrFaults(kX2SelfIpi, 0x1ef));
  EXPECT_TRUE(RdFaults(kX2SelfIpi));
}

TEST_F(LapicTest, X2ApicEoiAccepted) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  Wr(kX2Eoi, 0);
  Wr(kX2Eoi, 0x1234);  // KVM does not check the value.
  EXPECT_TRUE(RdFaults(kX2Eoi));
}

TEST_F(LapicTest, X2ApicReadOnlyRegistersFaultOnWrite) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  for (uint32_t msr : {kX2Version, kX2Ppr, kX2Isr0, 0x818u, 0x827u, kX2Tmcct}) {
    EXPECT_TRUE(WrFaults(msr, 0)) << std::hex << msr;
    EXPECT_EQ(Rd(msr) & ~0xffffffffull, 0u);
  }
}

TEST_F(LapicTest, X2ApicReservedIndicesFault) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  for (uint32_t msr : {0x800u, 0x801u, 0x804u, 0x80cu, 0x829u, 0x83au, 0x840u, 0x8ffu}) {
    EXPECT_TRUE(RdFaults(msr)) << std::hex << msr;
    EXPECT_TRUE(WrFaults(msr, 0)) << std::hex << msr;
  }
}

TEST_F(LapicTest, X2ApicTdcrKeepsBits0xb) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);
  Wr(kX2Tdcr, 0xff);
  EXPECT_EQ(Rd(kX2Tdcr), 0xbu);
}

TEST_F(LapicTest, X2ApicLvtWritesForcedMaskedWhileSoftwareDisabled) {
  Init(DefaultProfile());
  Wr(kMsrIa32ApicBase, kX2ApicOn);  // SPIV resets to 0xff: software-disabled.
  Wr(kX2LvtErr, 0x33);
  EXPECT_EQ(Rd(kX2LvtErr), 0x10033u);
  Wr(kX2Spiv, 0x1ff);
  Wr(kX2LvtErr, 0x33);
  EXPECT_EQ(Rd(kX2LvtErr), 0x33u);
}

TEST_F(LapicTest, X2ApicLvtMasksDependOnEntry) {
  Init(DefaultProfile());
  EnterX2ApicWithSoftwareEnable();
  Wr(kX2Lvt0, 0xffffffff);
  EXPECT_EQ(Rd(kX2Lvt0), 0x1f7ffu);
  Wr(kX2LvtErr, 0xffffffff);
  EXPECT_EQ(Rd(kX2LvtErr), 0x110ffu);
  Wr(kX2Lvtt, 0xffffffff);
  EXPECT_EQ(Rd(kX2Lvtt), 0x110ffu | (3u << 17));  // TSC-deadline capable: bits 18:17.
}

TEST_F(LapicTest, X2ApicSpivClearingEnableMasksEveryLvt) {
  Init(DefaultProfile());
  EnterX2ApicWithSoftwareEnable();
  EXPECT_EQ(Rd(kX2Lvt0), 0x700u);  // BSP LINT0: ExtINT, unmasked at reset.
  Wr(kX2Spiv, 0x3ff & ~0x100u);
  EXPECT_EQ(Rd(kX2Spiv), 0x2ffu);
  EXPECT_EQ(Rd(kX2Lvt0), 0x10700u);
}

TEST_F(LapicTest, TscDeadlineReadsZeroOutsideDeadlineMode) {
  Init(DefaultProfile());
  Wr(kMsrIa32TscDeadline, host_tsc_ + 5000);  // LVTT one-shot: ignored, no #GP.
  EXPECT_EQ(Rd(kMsrIa32TscDeadline), 0u);
}

TEST_F(LapicTest, TscDeadlineKeptInDeadlineMode) {
  Init(DefaultProfile());
  EnterX2ApicWithSoftwareEnable();
  Wr(kX2Lvtt, kDeadlineMode | 0xec);
  Wr(kMsrIa32TscDeadline, host_tsc_ + 5000);
  EXPECT_EQ(Rd(kMsrIa32TscDeadline), host_tsc_ + 5000);
}

TEST_F(LapicTest, TscDeadlineReadsZeroAfterFiring) {
  Init(DefaultProfile());
  EnterX2ApicWithSoftwareEnable();
  Wr(kX2Lvtt, kDeadlineMode | 0xec);
  Wr(kMsrIa32TscDeadline, host_tsc_ + 5000);
  host_tsc_ += 5000;  // Guest TSC reaches the deadline: it fired.
  EXPECT_EQ(Rd(kMsrIa32TscDeadline), 0u);
  host_tsc_ -= 4000;  // Fired stays fired.
  EXPECT_EQ(Rd(kMsrIa32TscDeadline), 0u);
}

TEST_F(LapicTest, TscDeadlineModeSwitchClearsDeadlineAndTmict) {
  Init(DefaultProfile());
  EnterX2ApicWithSoftwareEnable();
  Wr(kX2Lvtt, kDeadlineMode);
  Wr(kMsrIa32TscDeadline, host_tsc_ + 5000);
  Wr(kX2Tmict, 1234);  // Ignored in TSC-deadline mode.
  EXPECT_EQ(Rd(kX2Tmict), 0u);
  Wr(kX2Lvtt, kPeriodicMode);
  Wr(kX2Lvtt, kDeadlineMode);
  EXPECT_EQ(Rd(kMsrIa32TscDeadline), 0u);
}

TEST_F(LapicTest, TscDeadlineModeUnavailableWithoutFeature) {
  Init(Without("intel-icx", Feature::kTscDeadline));
  EnterX2ApicWithSoftwareEnable();
  Wr(kX2Lvtt, kDeadlineMode | 0xec);
  EXPECT_EQ(Rd(kX2Lvtt), 0xecu);  // Timer-mode mask is bit 17 only.
  Wr(kMsrIa32TscDeadline, host_tsc_ + 5000);
  EXPECT_EQ(Rd(kMsrIa32TscDeadline), 0u);
}

TEST_F(LapicTest, TmcctReadsZeroInTscDeadlineMode) {
  Init(DefaultProfile());
  EnterX2ApicWithSoftwareEnable();
  Wr(kX2Tmict, 100000);
  Wr(kX2Lvtt, kDeadlineMode);
  EXPECT_EQ(Rd(kX2Tmcct), 0u);
}

TEST_F(LapicTest, TmcctCountsDownInOneShotMode) {
  Init(DefaultProfile());
  EnterX2ApicWithSoftwareEnable();
  Wr(kX2Tdcr, 0xb);  // Divide by 1.
  Wr(kX2Tmict, 100000);
  host_tsc_ += 2 * 30000;  // 30 us at the model's 2 GHz.
  EXPECT_EQ(Rd(kX2Tmcct), 70000u);
  host_tsc_ += 2 * 100000;
  EXPECT_EQ(Rd(kX2Tmcct), 0u);  // Expired one-shot.
}

TEST_F(LapicTest, FaultLeavesStateDigestUnchanged) {
  Init(DefaultProfile(), 2);
  EnterX2ApicWithSoftwareEnable();
  Wr(kX2Lvtt, kDeadlineMode);
  Wr(kMsrIa32TscDeadline, host_tsc_ + 777);
  EXPECT_TRUE(FaultIsAtomic(Access::kWrite, kX2Icr, 1ull << 13));
  EXPECT_TRUE(FaultIsAtomic(Access::kWrite, kMsrIa32ApicBase, kApicBaseResetBsp));
  EXPECT_TRUE(FaultIsAtomic(Access::kWrite, kX2Tpr, 1ull << 32));
  EXPECT_TRUE(FaultIsAtomic(Access::kWrite, kX2SelfIpi, 0x100));
  EXPECT_TRUE(FaultIsAtomic(Access::kRead, kX2Eoi, 0));
}

TEST_F(LapicTest, SnapshotRoundTripRestoresApicState) {
  Init(DefaultProfile());
  EnterX2ApicWithSoftwareEnable();
  Wr(kX2Lvtt, kDeadlineMode);
  Wr(kMsrIa32TscDeadline, host_tsc_ + 777);
  Wr(kX2Icr, 0x4031);
  const Snapshot snap = CaptureSnapshot(ctl_, vcpus_, mem_);
  const uint64_t digest = Digest();
  Wr(kMsrIa32ApicBase, kApicDefaultPhysBase | kApicBaseBsp);
  ASSERT_NE(Digest(), digest);
  ASSERT_TRUE(RestoreSnapshot(snap, ctl_, &vcpus_, &mem_).ok());
  EXPECT_EQ(Digest(), digest);
  EXPECT_EQ(Rd(kMsrIa32TscDeadline), host_tsc_ + 777);
  EXPECT_EQ(Rd(kX2Icr), 0x4031u);
}

TEST_F(LapicTest, RowsCoverTheX2ApicRangeOnce) {
  std::vector<int> covered(256, 0);
  for (const MsrRow& row : LapicFamily().rows()) {
    if (row.index < kMsrX2ApicFirst) continue;
    EXPECT_STREQ(row.family, "x2apic");
    for (uint32_t i = row.index; i <= row.last; ++i) ++covered[i - kMsrX2ApicFirst];
  }
  for (int i = 0; i < 256; ++i) EXPECT_EQ(covered[i], 1) << std::hex << 0x800 + i;
  Init(DefaultProfile());
  EXPECT_EQ(ctl_.MsrName(0x830), "X2APIC_ICR");
  EXPECT_EQ(ctl_.MsrName(0x1b), "IA32_APIC_BASE");
}

TEST_F(LapicTest, ResolvedApicBaseRowHasProfileReservedBits) {
  const MsrRow& base = LapicFamily().rows()[0];
  ASSERT_EQ(base.index, kMsrIa32ApicBase);
  EXPECT_EQ(ResolveLapicRow(base, DefaultProfile()).reserved_mask, (~0ull << 46) | 0x2ff);
  EXPECT_EQ(ResolveLapicRow(base, *FindProfile("intel-minimal")).reserved_mask,
            (~0ull << 36) | 0x2ff | kApicBaseExtd);
}

}  // namespace
}  // namespace msrtrace
