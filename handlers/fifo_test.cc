#include "handlers/fifo.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "handlers/handler_set.h"
#include "harness/core/snapshot.h"

namespace msrtrace {
namespace {

class FifoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InstallFifo(ctl_).ok());
    vcpus_.push_back(ctl_.CreateVcpu(0));
    vcpu().regs.rip = 0x1000;
  }
  Vcpu& vcpu() { return vcpus_[0]; }
  absl::StatusOr<Outcome> Rd() {
    vcpu().regs.reg(Gpr::kRcx) = kFifoMsrIndex;
    return ctl_.Handle(Exit::Rdmsr(), vcpu(), mem_);
  }
  absl::StatusOr<Outcome> Wr(uint64_t v) {
    vcpu().regs.reg(Gpr::kRcx) = kFifoMsrIndex;
    vcpu().regs.reg(Gpr::kRax) = v & 0xffffffff;
    vcpu().regs.reg(Gpr::kRdx) = v >> 32;
    return ctl_.Handle(Exit::Wrmsr(), vcpu(), mem_);
  }
  FifoMsr* fifo() { return static_cast<FifoMsr*>(ctl_.Find(kFifoMsrIndex)); }

  Controller ctl_;
  std::vector<Vcpu> vcpus_;
  SparseMemory mem_;
};

TEST_F(FifoTest, FifoReadsBackInWriteOrder) {
  for (uint64_t v : {1ull, 0x200000002ull, 3ull}) ASSERT_EQ(Wr(v)->kind, Outcome::Kind::kRetired);
  EXPECT_EQ(Rd()->value, 1u);
  EXPECT_EQ(Rd()->value, 0x200000002ull);
  EXPECT_EQ(vcpu().regs.reg(Gpr::kRdx), 2u);
  EXPECT_EQ(Rd()->value, 3u);
  EXPECT_EQ(vcpu().regs.rip, 0x1000u + 6 * 2);
}

TEST_F(FifoTest, FifoEmptyReadIsVmmErrorNotGp) {
  const VcpuRegs before = vcpu().regs;
  absl::StatusOr<Outcome> o = Rd();
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(o.status().message().find("empty"), absl::string_view::npos);
  // RCX was set by Rd(); nothing else may change (no #GP, RIP stays).
  VcpuRegs expect = before;
  expect.reg(Gpr::kRcx) = kFifoMsrIndex;
  EXPECT_EQ(vcpu().regs, expect);
}

TEST_F(FifoTest, FifoFullWriteFaultsAndKeepsState) {
  for (size_t i = 0; i < kFifoMaxDepth; ++i) ASSERT_EQ(Wr(i)->kind, Outcome::Kind::kRetired);
  const uint64_t before = StateDigest(ctl_, vcpus_, mem_);
  vcpu().regs.reg(Gpr::kRax) = 0;  // Put the argument registers as Wr() will.
  vcpu().regs.reg(Gpr::kRdx) = 0;
  const uint64_t before_args = StateDigest(ctl_, vcpus_, mem_);
  EXPECT_NE(before, 0u);
  ASSERT_EQ(Wr(0)->kind, Outcome::Kind::kGpInjected);
  vcpu().regs.pending = PendingException();
  EXPECT_EQ(StateDigest(ctl_, vcpus_, mem_), before_args);
  EXPECT_EQ(fifo()->size(), kFifoMaxDepth);
  EXPECT_EQ(Rd()->value, 0u);  // Oldest value still first.
}

TEST_F(FifoTest, FifoStateRoundTripsThroughSnapshot) {
  ASSERT_TRUE(Wr(7).ok());
  ASSERT_TRUE(Wr(8).ok());
  const Snapshot snap = CaptureSnapshot(ctl_, vcpus_, mem_);
  EXPECT_EQ(Rd()->value, 7u);
  EXPECT_EQ(Rd()->value, 8u);
  ASSERT_TRUE(RestoreSnapshot(snap, ctl_, &vcpus_, &mem_).ok());
  EXPECT_EQ(Rd()->value, 7u);
  EXPECT_EQ(Rd()->value, 8u);
}

TEST_F(FifoTest, FifoStateIsPartOfTheDigest) {
  const uint64_t empty = StateDigest(ctl_, vcpus_, mem_);
  ASSERT_TRUE(Wr(1).ok());
  vcpu().regs = VcpuRegs();
  const uint64_t one = StateDigest(ctl_, vcpus_, mem_);
  EXPECT_NE(empty, one);
}

TEST_F(FifoTest, FifoSaveStateEncodesCountThenValues) {
  ASSERT_TRUE(Wr(0x0102030405060708ull).ok());
  std::string s;
  fifo()->SaveState(&s);
  ASSERT_EQ(s.size(), 12u);
  EXPECT_EQ(s.substr(0, 4), std::string("\x01\0\0\0", 4));
  EXPECT_EQ(s.substr(4), std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
}

TEST_F(FifoTest, FifoRestoreRejectsTruncatedCount) {
  absl::Status s = fifo()->RestoreState(std::string("\x01\0", 2));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("byte offset 0"), absl::string_view::npos) << s;
}

TEST_F(FifoTest, FifoRestoreRejectsCountAboveMaxDepth) {
  std::string st("\x01\x10\0\0", 4);  // 4097.
  absl::Status s = fifo()->RestoreState(st);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("maximum depth"), absl::string_view::npos) << s;
}

TEST_F(FifoTest, FifoRestoreRejectsLengthMismatch) {
  std::string st("\x02\0\0\0", 4);
  st.append(12, 'x');  // 1.5 values.
  absl::Status s = fifo()->RestoreState(st);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("byte offset 16"), absl::string_view::npos) << s;
}

TEST_F(FifoTest, FifoRejectedRestoreKeepsState) {
  ASSERT_TRUE(Wr(5).ok());
  EXPECT_FALSE(fifo()->RestoreState(std::string("\x09\0\0\0", 4)).ok());
  EXPECT_EQ(Rd()->value, 5u);
}

TEST_F(FifoTest, FifoInstallTwiceFails) {
  EXPECT_EQ(InstallFifo(ctl_).code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(FifoTest, FifoNameIsReported) { EXPECT_EQ(ctl_.MsrName(kFifoMsrIndex), "FIFO_DEVICE"); }

}  // namespace
}  // namespace msrtrace
