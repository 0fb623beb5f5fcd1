#include "handlers/kvm_pv.h"

#include <array>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "handlers/tsc.h"
#include "harness/core/snapshot.h"

namespace msrtrace {
namespace {

constexpr std::array<uint32_t, 11> kAllPvMsrs = {
    kMsrKvmWallClock,  kMsrKvmSystemTime, kMsrKvmWallClockNew,    kMsrKvmSystemTimeNew,
    kMsrKvmAsyncPfEn,  kMsrKvmStealTime,  kMsrKvmPvEoiEn,         kMsrKvmPollControl,
    kMsrKvmAsyncPfInt, kMsrKvmAsyncPfAck, kMsrKvmMigrationControl};

constexpr uint64_t kNsPerSec = 1'000'000'000ull;

uint32_t Le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
uint64_t Le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

CpuProfile Without(const char* base, Feature f) {
  CpuProfile p = *FindProfile(base);
  p.features &= ~(1ull << static_cast<uint32_t>(f));
  return p;
}

class KvmPvTest : public ::testing::Test {
 protected:
  void Init(const CpuProfile& profile, int vcpus = 1) {
    ASSERT_TRUE(KvmPvFamily().install(ctl_, profile).ok());
    ASSERT_TRUE(TscFamily().install(ctl_, profile).ok());
    for (int i = 0; i < vcpus; ++i) vcpus_.push_back(ctl_.CreateVcpu(i));
  }
  Exit MakeExit(Access a) const {
    Exit e = a == Access::kRead ? Exit::Rdmsr() : Exit::Wrmsr();
    e.host_tsc = host_tsc_;
    e.host_wall_ns = host_wall_ns_;
    return e;
  }
  void SetUpAccess(uint32_t index, uint64_t value, int cpu) {
    Vcpu& v = vcpus_[cpu];
    v.regs.pending = PendingException{};
    v.regs.reg(Gpr::kRcx) = index;
    v.regs.reg(Gpr::kRax) = value & 0xffffffffu;
    v.regs.reg(Gpr::kRdx) = value >> 32;
  }
  Outcome Do(Access a, uint32_t index, uint64_t value = 0, int cpu = 0) {
    SetUpAccess(index, value, cpu);
    absl::StatusOr<Outcome> out = ctl_.Handle(MakeExit(a), vcpus_[cpu], mem_);
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
  bool WrFaults(uint32_t index, uint64_t value) {
    return Do(Access::kWrite, index, value).kind == Outcome::Kind::kGpInjected;
  }
  bool FaultIsAtomic(Access a, uint32_t index, uint64_t value) {
    SetUpAccess(index, value, 0);
    vcpus_[0].regs.pending = PendingException::Gp0();
    const uint64_t before = StateDigest(ctl_, vcpus_, mem_);
    absl::StatusOr<Outcome> out = ctl_.Handle(MakeExit(a), vcpus_[0], mem_);
    return out.ok() && out->kind == Outcome::Kind::kGpInjected &&
           StateDigest(ctl_, vcpus_, mem_) == before && ctl_.last_writes().empty();
  }
  std::vector<uint8_t> Mem(uint64_t gpa, size_t len) {
    std::vector<uint8_t> out(len);
    EXPECT_TRUE(mem_.Read(gpa, out.data(), len));
    return out;
  }
  void Poke32(uint64_t gpa, uint32_t v) { ASSERT_TRUE(mem_.Write(gpa, &v, sizeof(v))); }

  Controller ctl_;
  std::vector<Vcpu> vcpus_;
  SparseMemory mem_;
  uint64_t host_tsc_ = 6'000'000'000ull;                  // 3 s of kvm-clock at 2 GHz.
  uint64_t host_wall_ns_ = 1'700'000'003'250'000'000ull;  // Boot = 1700000000.25 s.
};

TEST_F(KvmPvTest, WallClockWritesPvclockStructWithEvenVersion) {
  Init(DefaultProfile());
  Wr(kMsrKvmWallClockNew, 0x5000);
  std::vector<uint8_t> wc = Mem(0x5000, kPvclockWallClockSize);
  EXPECT_EQ(Le32(&wc[0]), 2u);  // 0 -> 1 (odd, in progress) -> 2.
  EXPECT_EQ(Le32(&wc[4]), 1'700'000'000u);
  EXPECT_EQ(Le32(&wc[8]), 250'000'000u);
  EXPECT_EQ(Rd(kMsrKvmWallClockNew), 0x5000u);
}

TEST_F(KvmPvTest, WallClockOddVersionIsTreatedAsJunk) {
  Init(DefaultProfile());
  Poke32(0x5000, 7);
  Wr(kMsrKvmWallClock, 0x5000);
  EXPECT_EQ(Le32(Mem(0x5000, 4).data()), 10u);  // 7 -> 8 -> 9 (written odd) -> 10.
  const WriteLog& log = ctl_.last_writes();
  ASSERT_EQ(log.writes().size(), 3u);
  EXPECT_EQ(Le32(log.BytesOf(log.writes()[0]).data()), 9u);
  EXPECT_EQ(log.writes()[1].len, kPvclockWallClockSize);
}

TEST_F(KvmPvTest, WallClockInvalidGpaWritesNothing) {
  Init(DefaultProfile());
  Wr(kMsrKvmWallClockNew, 1ull << 40);  // Beyond guest RAM: no #GP.
  EXPECT_TRUE(ctl_.last_writes().empty());
  EXPECT_EQ(Rd(kMsrKvmWallClockNew), 1ull << 40);
  Wr(kMsrKvmWallClockNew, 0);  // GPA 0 means "no structure" (kvm_write_wall_clock).
  EXPECT_TRUE(ctl_.last_writes().empty());
}

TEST_F(KvmPvTest, WallClockIsVmWideAndSharedByBothIndices) {
  Init(DefaultProfile(), 2);
  Wr(kMsrKvmWallClock, 0x6000, 0);
  EXPECT_EQ(Rd(kMsrKvmWallClockNew, 1), 0x6000u);
}

TEST_F(KvmPvTest, SystemTimeEnableWritesTimeInfo) {
  Init(DefaultProfile());
  Wr(kMsrIa32Tsc, 1000);  // Guest TSC = 1000 at this exit.
  host_tsc_ += 500;
  Wr(kMsrKvmSystemTimeNew, 0x7001);
  std::vector<uint8_t> ti = Mem(0x7000, kPvclockTimeInfoSize);
  EXPECT_EQ(Le32(&ti[0]), 2u);
  EXPECT_EQ(Le32(&ti[4]), 0u);
  EXPECT_EQ(Le64(&ti[8]), 1500u);             // tsc_timestamp = guest TSC.
  EXPECT_EQ(Le64(&ti[16]), host_tsc_ / 2);    // system_time: ns at 2 GHz.
  EXPECT_EQ(Le32(&ti[24]), 0x80000000u);      // tsc_to_system_mul.
  EXPECT_EQ(static_cast<int8_t>(ti[28]), 0);  // tsc_shift.
  EXPECT_EQ(ti[29], kPvclockTscStableBit);    // flags.
  EXPECT_EQ(Rd(kMsrKvmSystemTimeNew), 0x7001u);
  EXPECT_EQ(Rd(kMsrKvmSystemTime), 0x7001u);  // One value behind both indices.
}

TEST_F(KvmPvTest, SystemTimeWithoutEnableBitWritesNothing) {
  Init(DefaultProfile());
  Wr(kMsrKvmSystemTimeNew, 0x7000);
  EXPECT_TRUE(ctl_.last_writes().empty());
  EXPECT_EQ(Rd(kMsrKvmSystemTimeNew), 0x7000u);
}

TEST_F(KvmPvTest, SystemTimeWritesAreLoggedForReplay) {
  Init(DefaultProfile());
  Poke32(0x7000, 4);
  Wr(kMsrKvmSystemTimeNew, 0x7001);
  const WriteLog& log = ctl_.last_writes();
  ASSERT_EQ(log.writes().size(), 3u);  // Odd version, the structure, even version.
  EXPECT_EQ(log.writes()[0].gpa, 0x7000u);
  EXPECT_EQ(Le32(log.BytesOf(log.writes()[0]).data()), 5u);
  EXPECT_EQ(log.writes()[1].len, kPvclockTimeInfoSize);
  EXPECT_EQ(Le32(log.BytesOf(log.writes()[2]).data()), 6u);
  EXPECT_NE(log.Digest(), 0u);
  // The same exit from the same state logs the same bytes (deterministic), another time not.
  const uint64_t digest = log.Digest();
  Poke32(0x7000, 4);
  Wr(kMsrKvmSystemTimeNew, 0x7001);
  EXPECT_EQ(ctl_.last_writes().Digest(), digest);
  Poke32(0x7000, 4);
  host_tsc_ += 2;
  Wr(kMsrKvmSystemTimeNew, 0x7001);
  EXPECT_NE(ctl_.last_writes().Digest(), digest);
}

TEST_F(KvmPvTest, SystemTimeKeepsGuestStoppedFlag) {
  Init(DefaultProfile());
  const uint8_t flags = kPvclockGuestStopped | 0x4;
  ASSERT_TRUE(mem_.Write(0x7000 + 29, &flags, 1));
  Wr(kMsrKvmSystemTimeNew, 0x7001);
  EXPECT_EQ(Mem(0x7000 + 29, 1)[0], kPvclockGuestStopped | kPvclockTscStableBit);
}

TEST_F(KvmPvTest, SystemTimeStableFlagNeedsStableFeature) {
  Init(Without("intel-icx", Feature::kPvClocksourceStable));
  Wr(kMsrKvmSystemTimeNew, 0x7001);
  EXPECT_EQ(Mem(0x7000 + 29, 1)[0], 0u);
}

TEST_F(KvmPvTest, LegacySystemTimeOnBootVcpuClearsStableFlag) {
  Init(DefaultProfile(), 2);
  Wr(kMsrKvmSystemTime, 0x7001, 0);  // boot_vcpu_runs_old_kvmclock: no master clock.
  EXPECT_EQ(Mem(0x7000 + 29, 1)[0], 0u);
  Wr(kMsrKvmSystemTimeNew, 0x8001, 1);
  EXPECT_EQ(Mem(0x8000 + 29, 1)[0], 0u);
  Wr(kMsrKvmSystemTimeNew, 0x7001, 0);
  EXPECT_EQ(Mem(0x7000 + 29, 1)[0], kPvclockTscStableBit);
}

TEST_F(KvmPvTest, SystemTimeStructureCrossingAPageWritesNothing) {
  Init(DefaultProfile());
  Wr(kMsrKvmSystemTimeNew, 0x7ff1);  // 0x7ff0 + 32 crosses into the next page.
  EXPECT_TRUE(ctl_.last_writes().empty());
}

TEST_F(KvmPvTest, GuestComputesHostWallClockFromBothStructures) {
  Init(DefaultProfile());
  Wr(kMsrIa32Tsc, 12345);
  Wr(kMsrKvmWallClockNew, 0x5000);
  Wr(kMsrKvmSystemTimeNew, 0x7001);
  // Later, the guest reads its TSC and combines (ref: msr.rst, pvclock_clocksource_read).
  host_tsc_ += 2'000'000'000ull;  // One second.
  host_wall_ns_ += kNsPerSec;
  const uint64_t tsc = Rd(kMsrIa32Tsc);
  std::vector<uint8_t> wc = Mem(0x5000, kPvclockWallClockSize);
  std::vector<uint8_t> ti = Mem(0x7000, kPvclockTimeInfoSize);
  PvclockScale scale;
  scale.mul = Le32(&ti[24]);
  scale.shift = static_cast<int8_t>(ti[28]);
  const uint64_t now_ns = Le64(&ti[16]) + PvclockScaleDelta(tsc - Le64(&ti[8]), scale);
  const uint64_t wall = Le32(&wc[4]) * kNsPerSec + Le32(&wc[8]) + now_ns;
  EXPECT_EQ(wall, host_wall_ns_);
}

TEST_F(KvmPvTest, StealTimeReservedBitsFault) {
  Init(DefaultProfile());
  for (int bit = 1; bit <= 5; ++bit) EXPECT_TRUE(WrFaults(kMsrKvmStealTime, 0x9001 | 1ull << bit));
  Wr(kMsrKvmStealTime, 0x9041);
  EXPECT_EQ(Rd(kMsrKvmStealTime), 0x9041u);
}

TEST_F(KvmPvTest, AsyncPfReservedBitsFault) {
  Init(DefaultProfile());
  EXPECT_TRUE(WrFaults(kMsrKvmAsyncPfEn, 0x9000 | 0x10));
  EXPECT_TRUE(WrFaults(kMsrKvmAsyncPfEn, 0x9000 | 0x20));
  Wr(kMsrKvmAsyncPfEn, 0x9000 | 0x9);
  EXPECT_EQ(Rd(kMsrKvmAsyncPfEn), 0x9009u);
}

TEST_F(KvmPvTest, AsyncPfDeliveryModesNeedTheirFeatures) {
  CpuProfile p = Without("intel-icx", Feature::kPvAsyncPfInt);
  p.features &= ~(1ull << static_cast<uint32_t>(Feature::kPvAsyncPfVmexit));
  p.features |= 1ull << static_cast<uint32_t>(Feature::kPvEnforceCpuid);
  Init(p);
  EXPECT_TRUE(WrFaults(kMsrKvmAsyncPfEn, 0x9000 | 0x4 | 0x1));
  EXPECT_TRUE(WrFaults(kMsrKvmAsyncPfEn, 0x9000 | 0x8 | 0x1));
  Wr(kMsrKvmAsyncPfEn, 0x9000 | 0x3);
}

TEST_F(KvmPvTest, AsyncPfEnabledNeedsBackedGpa) {
  Init(DefaultProfile());
  EXPECT_TRUE(WrFaults(kMsrKvmAsyncPfEn, (1ull << 40) | 0x9));
  Wr(kMsrKvmAsyncPfEn, (1ull << 40) | 0x1);  // Without interrupt delivery: not enabled.
}

TEST_F(KvmPvTest, AsyncPfIntReservedBitsFault) {
  Init(DefaultProfile());
  EXPECT_TRUE(WrFaults(kMsrKvmAsyncPfInt, 0x100));
  Wr(kMsrKvmAsyncPfInt, 0xf3);
  EXPECT_EQ(Rd(kMsrKvmAsyncPfInt), 0xf3u);
}

TEST_F(KvmPvTest, AsyncPfAckAcceptsAnythingAndReadsZero) {
  Init(DefaultProfile());
  Wr(kMsrKvmAsyncPfAck, ~0ull);
  EXPECT_EQ(Rd(kMsrKvmAsyncPfAck), 0u);
}

TEST_F(KvmPvTest, PvEoiAddressMustBeAligned) {
  Init(DefaultProfile());
  EXPECT_TRUE(WrFaults(kMsrKvmPvEoiEn, 0x9003));
  EXPECT_TRUE(WrFaults(kMsrKvmPvEoiEn, (1ull << 40) | 1));  // Enabled on unbacked memory.
  Wr(kMsrKvmPvEoiEn, 0x9005);
  EXPECT_EQ(Rd(kMsrKvmPvEoiEn), 0x9005u);
}

TEST_F(KvmPvTest, PollControlResetsToOneAndKeepsOnlyBit0) {
  Init(DefaultProfile());
  EXPECT_EQ(Rd(kMsrKvmPollControl), 1u);
  EXPECT_TRUE(WrFaults(kMsrKvmPollControl, 2));
  Wr(kMsrKvmPollControl, 0);
  EXPECT_EQ(Rd(kMsrKvmPollControl), 0u);
}

TEST_F(KvmPvTest, MigrationControlKeepsOnlyReadyBit) {
  Init(DefaultProfile(), 2);
  EXPECT_TRUE(WrFaults(kMsrKvmMigrationControl, 2));
  Wr(kMsrKvmMigrationControl, 1);
  EXPECT_EQ(Rd(kMsrKvmMigrationControl, 1), 1u);  // VM-wide.
}

TEST_F(KvmPvTest, PvMsrsFaultWhenEnforcedAndAbsent) {
  Init(*FindProfile("intel-minimal"));  // PV CPUID enforced and empty (selftest kvm_pv_test).
  for (uint32_t msr : kAllPvMsrs) {
    EXPECT_EQ(Do(Access::kRead, msr).kind, Outcome::Kind::kGpInjected) << std::hex << msr;
    EXPECT_TRUE(Do(Access::kRead, msr).unknown_msr);
    EXPECT_EQ(Do(Access::kWrite, msr, 0).kind, Outcome::Kind::kGpInjected) << std::hex << msr;
  }
  ctl_.set_unknown_msr_policy(UnknownMsrPolicy::kIgnore);  // KVM_MSR_RET_UNSUPPORTED.
  EXPECT_EQ(Do(Access::kWrite, kMsrKvmSystemTimeNew, 0x7001).kind, Outcome::Kind::kIgnored);
  EXPECT_TRUE(ctl_.last_writes().empty());
}

TEST_F(KvmPvTest, PvMsrsWorkWithoutEnforcementEvenWithoutFeatureBits) {
  CpuProfile p = *FindProfile("intel-minimal");
  p.features &= ~(1ull << static_cast<uint32_t>(Feature::kPvEnforceCpuid));
  Init(p);
  Wr(kMsrKvmStealTime, 0x9001);
  EXPECT_EQ(Rd(kMsrKvmStealTime), 0x9001u);
}

TEST_F(KvmPvTest, HostMayReadAndZeroAbsentAdvertisedPvMsrs) {
  Init(*FindProfile("intel-minimal"));
  absl::StatusOr<uint64_t> v = ctl_.HostRead(kMsrKvmStealTime, vcpus_[0], mem_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 0u);
  EXPECT_TRUE(ctl_.HostWrite(kMsrKvmStealTime, 0, vcpus_[0], mem_).ok());
  EXPECT_FALSE(ctl_.HostWrite(kMsrKvmStealTime, 0x9001, vcpus_[0], mem_).ok());
  EXPECT_FALSE(ctl_.HostRead(kMsrKvmMigrationControl, vcpus_[0], mem_).ok());  // Not advertised.
}

TEST_F(KvmPvTest, FaultLeavesStateDigestUnchanged) {
  Init(DefaultProfile());
  Wr(kMsrKvmSystemTimeNew, 0x7001);
  Wr(kMsrKvmStealTime, 0x9001);
  EXPECT_TRUE(FaultIsAtomic(Access::kWrite, kMsrKvmStealTime, 0x9003));
  EXPECT_TRUE(FaultIsAtomic(Access::kWrite, kMsrKvmAsyncPfEn, (1ull << 40) | 0x9));
  EXPECT_TRUE(FaultIsAtomic(Access::kWrite, kMsrKvmPvEoiEn, 0x9003));
  EXPECT_TRUE(FaultIsAtomic(Access::kWrite, kMsrKvmPollControl, 4));
  EXPECT_TRUE(FaultIsAtomic(Access::kWrite, kMsrKvmMigrationControl, 4));
}

TEST_F(KvmPvTest, SnapshotRoundTripRestoresPvState) {
  Init(DefaultProfile(), 2);
  Wr(kMsrKvmWallClockNew, 0x5000);
  Wr(kMsrKvmSystemTimeNew, 0x7001, 1);
  Wr(kMsrKvmPollControl, 0);
  const Snapshot snap = CaptureSnapshot(ctl_, vcpus_, mem_);
  const uint64_t digest = StateDigest(ctl_, vcpus_, mem_);
  Wr(kMsrKvmWallClockNew, 0x6000);
  Wr(kMsrKvmPollControl, 1);
  ASSERT_NE(StateDigest(ctl_, vcpus_, mem_), digest);
  ASSERT_TRUE(RestoreSnapshot(snap, ctl_, &vcpus_, &mem_).ok());
  EXPECT_EQ(StateDigest(ctl_, vcpus_, mem_), digest);
  EXPECT_EQ(Rd(kMsrKvmWallClockNew), 0x5000u);
  EXPECT_EQ(Rd(kMsrKvmSystemTimeNew, 1), 0x7001u);
  EXPECT_EQ(Rd(kMsrKvmPollControl), 0u);
}

TEST_F(KvmPvTest, RowsExistEverywhereAndNoneIsVolatile) {
  absl::Span<const MsrRow> rows = KvmPvFamily().rows();
  ASSERT_EQ(rows.size(), kAllPvMsrs.size());
  for (const MsrRow& row : rows) {
    EXPECT_STREQ(row.family, "kvm-pv");
    EXPECT_FALSE(row.volatile_value) << row.name;
    for (const CpuProfile& p : BuiltinProfiles()) EXPECT_TRUE(FamilyRowExists(row, p));
  }
  Init(DefaultProfile());
  EXPECT_EQ(ctl_.MsrName(kMsrKvmSystemTimeNew), "MSR_KVM_SYSTEM_TIME_NEW");
}

}  // namespace
}  // namespace msrtrace
