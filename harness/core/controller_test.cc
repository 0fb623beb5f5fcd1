#include "harness/core/controller.h"

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace msrtrace {
namespace {

using ::testing::ElementsAre;

// A plain-storage MSR in one per-vCPU slot; writes with bit 63 set fault.
class StorageMsr : public MsrHandler {
 public:
  explicit StorageMsr(StateLayout& layout, uint64_t reset = 0)
      : slot_(layout.AddVcpuSlot("TEST_STORAGE", reset)) {}
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext& ctx) override {
    return MsrResult::Ok(ctx.slot(slot_));
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t value, ExitContext& ctx) override {
    if (value >> 63) return MsrResult::Gp();
    ctx.slot(slot_) = value;
    return MsrResult::Ok();
  }
  absl::string_view MsrName(uint32_t) const override { return "TEST_STORAGE"; }

 private:
  SlotId slot_;
};

class FixedMsr : public MsrHandler {
 public:
  explicit FixedMsr(uint64_t v) : v_(v) {}
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext&) override { return MsrResult::Ok(v_); }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t, ExitContext&) override {
    return MsrResult::Gp();
  }

 private:
  uint64_t v_;
};

class BrokenMsr : public MsrHandler {
 public:
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext&) override {
    return absl::InternalError("device on fire");
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t, ExitContext&) override {
    return MsrResult::Unsupported();
  }
};

constexpr uint32_t kIdx = 0x1234;

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ctl_.Insert(kIdx, std::make_unique<StorageMsr>(ctl_.layout())));
    vcpu_ = ctl_.CreateVcpu(0);
    vcpu_.regs.efer = kEferLme | kEferLma;
    vcpu_.regs.cs_l = true;
    vcpu_.regs.rip = 0x1000;
    for (int i = 0; i < kNumGprs; ++i) vcpu_.regs.gpr[i] = 0x1111111100000000ull * (i + 1) + i;
  }
  absl::StatusOr<Outcome> Rd(uint64_t rcx, Exit e = Exit::Rdmsr()) {
    vcpu_.regs.reg(Gpr::kRcx) = rcx;
    return ctl_.Handle(e, vcpu_, mem_);
  }
  absl::StatusOr<Outcome> Wr(uint64_t rcx, uint64_t rdx, uint64_t rax, Exit e = Exit::Wrmsr()) {
    vcpu_.regs.reg(Gpr::kRcx) = rcx;
    vcpu_.regs.reg(Gpr::kRdx) = rdx;
    vcpu_.regs.reg(Gpr::kRax) = rax;
    return ctl_.Handle(e, vcpu_, mem_);
  }

  Controller ctl_;
  Vcpu vcpu_;
  SparseMemory mem_;
};

TEST_F(ControllerTest, InsertReturnsFalseAndKeepsHandlerWhenIndexTaken) {
  auto* first = ctl_.Find(kIdx);
  EXPECT_FALSE(ctl_.Insert(kIdx, std::make_unique<FixedMsr>(7)));
  EXPECT_EQ(ctl_.Find(kIdx), first);
}

TEST_F(ControllerTest, InsertRangeIsAllOrNothing) {
  MsrHandler* h = ctl_.Adopt(std::make_unique<FixedMsr>(1));
  EXPECT_FALSE(ctl_.InsertRange(kIdx - 2, kIdx + 2, h));
  EXPECT_EQ(ctl_.Find(kIdx - 2), nullptr);
  EXPECT_TRUE(ctl_.InsertRange(0x800, 0x8ff, h));
  EXPECT_EQ(ctl_.Find(0x800), h);
  EXPECT_EQ(ctl_.Find(0x8ff), h);
  EXPECT_EQ(ctl_.Find(0x900), nullptr);
  EXPECT_FALSE(ctl_.InsertRange(5, 4, h));
}

TEST_F(ControllerTest, SparseAndDenseIndicesDispatch) {
  MsrHandler* h = ctl_.Adopt(std::make_unique<FixedMsr>(1));
  for (uint32_t i : {0x0u, 0x1fffu, 0x2000u, 0x4b564d00u, 0x4b564dffu, 0xc0000080u, 0xc0001fffu,
                     0xc0002000u, 0xffffffffu, 0x40000000u}) {
    EXPECT_TRUE(ctl_.Insert(i, h)) << std::hex << i;
    EXPECT_EQ(ctl_.Find(i), h) << std::hex << i;
  }
  EXPECT_THAT(ctl_.RegisteredIndices(),
              ElementsAre(0x0u, 0x1234u, 0x1fffu, 0x2000u, 0x40000000u, 0x4b564d00u, 0x4b564dffu,
                          0xc0000080u, 0xc0001fffu, 0xc0002000u, 0xffffffffu));
}

TEST_F(ControllerTest, IndexIsEcxAndUpperHalfOfRcxIsIgnored) {
  ASSERT_TRUE(Wr(kIdx, 0, 42).ok());
  auto out = Rd(0xdeadbeef00000000ull | kIdx);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->kind, Outcome::Kind::kRetired);
  EXPECT_EQ(out->index, kIdx);
  EXPECT_EQ(out->value, 42u);
}

TEST_F(ControllerTest, WrmsrValueIsEdxEaxAndUpperHalvesIgnored) {
  auto out = Wr(kIdx, 0xffffffff00000012ull, 0xeeeeeeee00000034ull);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->value, 0x0000001200000034ull);
  EXPECT_EQ(vcpu_.slots[0], 0x0000001200000034ull);
}

TEST_F(ControllerTest, RdmsrSplitsValueIntoEdxEaxAndZeroesUpperHalves) {
  vcpu_.slots[0] = 0x89abcdef01234567ull;
  ASSERT_TRUE(Rd(kIdx).ok());
  EXPECT_EQ(vcpu_.regs.reg(Gpr::kRax), 0x01234567ull);
  EXPECT_EQ(vcpu_.regs.reg(Gpr::kRdx), 0x89abcdefull);
}

TEST_F(ControllerTest, RdmsrChangesNoOtherGpr) {
  const VcpuRegs before = vcpu_.regs;
  ASSERT_TRUE(Rd(kIdx).ok());
  for (int i = 0; i < kNumGprs; ++i) {
    if (i == static_cast<int>(Gpr::kRax) || i == static_cast<int>(Gpr::kRdx) ||
        i == static_cast<int>(Gpr::kRcx)) {
      continue;
    }
    EXPECT_EQ(vcpu_.regs.gpr[i], before.gpr[i]) << GprName(static_cast<Gpr>(i));
  }
}

TEST_F(ControllerTest, WrmsrChangesNoGpr) {
  vcpu_.regs.reg(Gpr::kRcx) = kIdx;
  const VcpuRegs before = vcpu_.regs;
  ASSERT_TRUE(ctl_.Handle(Exit::Wrmsr(), vcpu_, mem_).ok());
  EXPECT_EQ(vcpu_.regs.gpr, before.gpr);
}

TEST_F(ControllerTest, RetiredAccessAdvancesRipByExitInstructionLength) {
  ASSERT_TRUE(Rd(kIdx, Exit::Rdmsr(2)).ok());
  EXPECT_EQ(vcpu_.regs.rip, 0x1002u);
  ASSERT_TRUE(Rd(kIdx, Exit::Rdmsr(5)).ok());  // e.g. prefixed / immediate form.
  EXPECT_EQ(vcpu_.regs.rip, 0x1007u);
}

TEST_F(ControllerTest, RipWrapsAt32BitsOutside64BitMode) {
  vcpu_.regs.cs_l = false;  // Compatibility mode.
  vcpu_.regs.rip = 0xffffffffull;
  ASSERT_TRUE(Rd(kIdx).ok());
  EXPECT_EQ(vcpu_.regs.rip, 1u);
  vcpu_.regs.efer = 0;  // Legacy protected mode.
  vcpu_.regs.rip = 0xfffffffeull;
  ASSERT_TRUE(Rd(kIdx).ok());
  EXPECT_EQ(vcpu_.regs.rip, 0u);
}

TEST_F(ControllerTest, RipWrapsAt64BitsIn64BitMode) {
  vcpu_.regs.rip = 0xffffffffffffffffull;
  ASSERT_TRUE(Rd(kIdx).ok());
  EXPECT_EQ(vcpu_.regs.rip, 1u);
  vcpu_.regs.rip = 0xffffffffull;
  ASSERT_TRUE(Rd(kIdx).ok());
  EXPECT_EQ(vcpu_.regs.rip, 0x100000001ull);
}

TEST_F(ControllerTest, RetiredAccessClearsStiAndMovSsBlocking) {
  vcpu_.regs.interruptibility = kBlockingBySti | kBlockingByMovSs | (1u << 3);
  ASSERT_TRUE(Rd(kIdx).ok());
  EXPECT_EQ(vcpu_.regs.interruptibility, 1u << 3);
}

TEST_F(ControllerTest, TrapFlagMakesSingleStepDebugPending) {
  vcpu_.regs.rflags |= kRflagsTf;
  ASSERT_TRUE(Rd(kIdx).ok());
  EXPECT_EQ(vcpu_.regs.pending, PendingException::SingleStep());
  EXPECT_EQ(vcpu_.regs.pending.payload, kDr6Bs);
}

TEST_F(ControllerTest, FaultInjectsGp0AndLeavesRipGprsAndStateUnchanged) {
  vcpu_.regs.interruptibility = kBlockingBySti;
  vcpu_.regs.rflags |= kRflagsTf;
  vcpu_.slots[0] = 5;
  vcpu_.regs.reg(Gpr::kRcx) = kIdx;
  vcpu_.regs.reg(Gpr::kRdx) = 0x80000000ull;
  VcpuRegs before = vcpu_.regs;
  auto out = ctl_.Handle(Exit::Wrmsr(), vcpu_, mem_);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->kind, Outcome::Kind::kGpInjected);
  EXPECT_EQ(vcpu_.regs.pending, PendingException::Gp0());
  EXPECT_EQ(vcpu_.regs.pending.error_code, 0u);
  before.pending = PendingException::Gp0();
  EXPECT_EQ(vcpu_.regs, before);  // RIP, GPRs, blocking, RFLAGS unchanged.
  EXPECT_EQ(vcpu_.slots[0], 5u);
}

TEST_F(ControllerTest, FaultingReadLeavesRaxRdxUnchanged) {
  ASSERT_TRUE(ctl_.Insert(0x99, std::make_unique<BrokenMsr>()));
  const VcpuRegs before = vcpu_.regs;
  vcpu_.regs.reg(Gpr::kRcx) = 0x77;  // Unknown: #GP under the default policy.
  auto out = ctl_.Handle(Exit::Rdmsr(), vcpu_, mem_);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->kind, Outcome::Kind::kGpInjected);
  EXPECT_EQ(vcpu_.regs.reg(Gpr::kRax), before.reg(Gpr::kRax));
  EXPECT_EQ(vcpu_.regs.reg(Gpr::kRdx), before.reg(Gpr::kRdx));
  EXPECT_EQ(vcpu_.regs.rip, before.rip);
}

TEST_F(ControllerTest, UnknownMsrInjectsGpByDefault) {
  auto out = Rd(0x777);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->kind, Outcome::Kind::kGpInjected);
  EXPECT_TRUE(out->unknown_msr);
  EXPECT_EQ(vcpu_.regs.rip, 0x1000u);
}

TEST_F(ControllerTest, UnknownMsrIgnorePolicyReadsZeroDropsWriteAndAdvances) {
  ctl_.set_unknown_msr_policy(UnknownMsrPolicy::kIgnore);
  auto out = Rd(0x777);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->kind, Outcome::Kind::kIgnored);
  EXPECT_EQ(vcpu_.regs.reg(Gpr::kRax), 0u);
  EXPECT_EQ(vcpu_.regs.reg(Gpr::kRdx), 0u);
  EXPECT_EQ(vcpu_.regs.rip, 0x1002u);
  out = Wr(0x777, 1, 2);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->kind, Outcome::Kind::kIgnored);
  EXPECT_EQ(vcpu_.regs.rip, 0x1004u);
  EXPECT_FALSE(vcpu_.regs.pending.valid);
}

TEST_F(ControllerTest, UnknownMsrFailPolicyFailsTheExitAndChangesNothing) {
  ctl_.set_unknown_msr_policy(UnknownMsrPolicy::kFail);
  vcpu_.regs.reg(Gpr::kRcx) = 0x777;
  const VcpuRegs before = vcpu_.regs;
  auto out = ctl_.Handle(Exit::Rdmsr(), vcpu_, mem_);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(vcpu_.regs, before);
}

TEST_F(ControllerTest, UnsupportedFromHandlerFollowsUnknownMsrPolicy) {
  ASSERT_TRUE(ctl_.Insert(0x99, std::make_unique<BrokenMsr>()));
  ctl_.set_unknown_msr_policy(UnknownMsrPolicy::kIgnore);
  auto out = Wr(0x99, 0, 1);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->kind, Outcome::Kind::kIgnored);
}

TEST_F(ControllerTest, HandlerErrorIsVmmErrorAndChangesNoRegister) {
  ASSERT_TRUE(ctl_.Insert(0x99, std::make_unique<BrokenMsr>()));
  vcpu_.regs.reg(Gpr::kRcx) = 0x99;
  const VcpuRegs before = vcpu_.regs;
  auto out = ctl_.Handle(Exit::Rdmsr(), vcpu_, mem_);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(out.status().message()), ::testing::HasSubstr("device on fire"));
  EXPECT_EQ(vcpu_.regs, before);
}

TEST_F(ControllerTest, NonMsrExitIsNotHandledSoAChainCanContinue) {
  Exit cpuid{Vendor::kIntelVmx, 10, 0, 2};
  const VcpuRegs before = vcpu_.regs;
  auto out = ctl_.Handle(cpuid, vcpu_, mem_);
  EXPECT_TRUE(IsExitNotHandled(out.status()));
  EXPECT_EQ(vcpu_.regs, before);
  EXPECT_FALSE(IsExitNotHandled(absl::UnimplementedError("other")));
}

TEST_F(ControllerTest, SvmMsrExitUsesExitInfo1ForDirection) {
  auto out = Wr(kIdx, 0, 9, Exit::SvmMsr(Access::kWrite));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->access, Access::kWrite);
  out = Rd(kIdx, Exit::SvmMsr(Access::kRead));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->value, 9u);
  Exit bad = Exit::SvmMsr(Access::kRead);
  bad.info1 = 2;
  EXPECT_TRUE(IsExitNotHandled(ctl_.Handle(bad, vcpu_, mem_).status()));
}

TEST_F(ControllerTest, HostAccessHasNoRegisterEffects) {
  const VcpuRegs before = vcpu_.regs;
  ASSERT_TRUE(ctl_.HostWrite(kIdx, 77, vcpu_, mem_).ok());
  auto v = ctl_.HostRead(kIdx, vcpu_, mem_);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 77u);
  EXPECT_EQ(vcpu_.regs, before);
  EXPECT_EQ(ctl_.HostRead(0x777, vcpu_, mem_).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ctl_.HostWrite(kIdx, 1ull << 63, vcpu_, mem_).code(),
            absl::StatusCode::kInvalidArgument);
}

// The test seam of the index-routing oracle: the index handed to the handler, per guest exit.
class IndexEcho : public MsrHandler {
 public:
  absl::StatusOr<MsrResult> Read(uint32_t index, ExitContext&) override {
    return MsrResult::Ok(index);
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t, ExitContext&) override {
    return MsrResult::Ok();
  }
};

TEST_F(ControllerTest, DispatchTraceRecordsTheIndexHandedToTheHandlerForGuestExitsOnly) {
  MsrHandler* h = ctl_.Adopt(std::make_unique<IndexEcho>());
  ASSERT_TRUE(ctl_.InsertRange(0x800, 0x8ff, h));
  DispatchTrace trace;
  ctl_.set_dispatch_trace(&trace);
  auto out = Rd(0xffffffff00000000ull | 0x80f);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->value, 0x80fu);   // What the handler was given...
  EXPECT_EQ(trace.index, 0x80fu);  // ...is what the trace saw.
  EXPECT_EQ(trace.count, 1u);
  ASSERT_TRUE(Wr(0x777, 0, 1).ok());  // Unknown MSR: the looked-up index is traced too.
  EXPECT_EQ(trace.index, 0x777u);
  EXPECT_EQ(trace.count, 2u);
  ASSERT_TRUE(ctl_.HostRead(0x800, vcpu_, mem_).ok());  // Host accesses are not traced.
  ASSERT_TRUE(ctl_.HostWrite(kIdx, 5, vcpu_, mem_).ok());
  EXPECT_EQ(trace.index, 0x777u);
  EXPECT_EQ(trace.count, 2u);
  ctl_.set_dispatch_trace(nullptr);  // Unset: nothing is recorded.
  ASSERT_TRUE(Rd(0x801).ok());
  EXPECT_EQ(trace.count, 2u);
}

TEST_F(ControllerTest, VcpuCreatedBeforeLayoutGrewIsRejected) {
  ctl_.layout().AddVcpuSlot("LATE");
  auto out = Rd(kIdx);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ControllerTest, MsrNameFallsBackToHex) {
  EXPECT_EQ(ctl_.MsrName(kIdx), "TEST_STORAGE");
  EXPECT_EQ(ctl_.MsrName(0xabc), "MSR_0xabc");
}

}  // namespace
}  // namespace msrtrace
