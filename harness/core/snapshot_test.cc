#include "harness/core/snapshot.h"

#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "gtest/gtest.h"

namespace msrtrace {
namespace {

// Keeps a counter in a VM-wide slot, a per-vCPU value in a slot, and a log in internal state.
class CountingMsr : public MsrHandler {
 public:
  explicit CountingMsr(StateLayout& l)
      : vcpu_slot_(l.AddVcpuSlot("COUNT_VCPU", 3)), vm_slot_(l.AddVmSlot("COUNT_VM", 0)) {}
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext& ctx) override {
    return MsrResult::Ok(ctx.slot(vcpu_slot_) + ctx.vm_slot(vm_slot_) + internal_);
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t v, ExitContext& ctx) override {
    ctx.slot(vcpu_slot_) = v;
    ++ctx.vm_slot(vm_slot_);
    internal_ += 100;
    ctx.WriteGuest(0x3000, &v, sizeof(v));
    return MsrResult::Ok();
  }
  void SaveState(std::string* out) const override { *out = std::to_string(internal_); }
  absl::Status RestoreState(absl::string_view in) override {
    return absl::SimpleAtoi(in, &internal_) ? absl::OkStatus()
                                            : absl::InvalidArgumentError("bad state");
  }

 private:
  SlotId vcpu_slot_, vm_slot_;
  uint64_t internal_ = 0;
};

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ctl_.Insert(0x10, std::make_unique<CountingMsr>(ctl_.layout())));
    vcpus_.push_back(ctl_.CreateVcpu(0));
    vcpus_.push_back(ctl_.CreateVcpu(1));
  }
  void Write(int cpu, uint64_t v) {
    vcpus_[cpu].regs.reg(Gpr::kRcx) = 0x10;
    vcpus_[cpu].regs.reg(Gpr::kRax) = v;
    ASSERT_TRUE(ctl_.Handle(Exit::Wrmsr(), vcpus_[cpu], mem_).ok());
  }
  uint64_t Read(int cpu) {
    vcpus_[cpu].regs.reg(Gpr::kRcx) = 0x10;
    EXPECT_TRUE(ctl_.Handle(Exit::Rdmsr(), vcpus_[cpu], mem_).ok());
    return vcpus_[cpu].regs.reg(Gpr::kRax);
  }

  Controller ctl_;
  std::vector<Vcpu> vcpus_;
  SparseMemory mem_;
};

TEST_F(SnapshotTest, ResumeFromSnapshotEqualsUninterruptedRun) {
  Write(0, 1);
  Snapshot mid = CaptureSnapshot(ctl_, vcpus_, mem_);
  Write(1, 7);
  Write(0, 9);
  const uint64_t r = Read(1);
  const uint64_t straight = StateDigest(ctl_, vcpus_, mem_);

  ASSERT_TRUE(RestoreSnapshot(mid, ctl_, &vcpus_, &mem_).ok());
  Write(1, 7);
  Write(0, 9);
  EXPECT_EQ(Read(1), r);
  EXPECT_EQ(StateDigest(ctl_, vcpus_, mem_), straight);
}

TEST_F(SnapshotTest, DigestCoversSlotsVmSlotsHandlerStateMemoryAndRegisters) {
  const uint64_t d0 = StateDigest(ctl_, vcpus_, mem_);
  EXPECT_EQ(StateDigest(ctl_, vcpus_, mem_), d0);  // Stable.
  Snapshot s = CaptureSnapshot(ctl_, vcpus_, mem_);
  EXPECT_EQ(StateDigest(s), d0);
  vcpus_[1].regs.rip++;
  EXPECT_NE(StateDigest(ctl_, vcpus_, mem_), d0);
  vcpus_[1].regs.rip--;
  vcpus_[0].slots[0]++;
  EXPECT_NE(StateDigest(ctl_, vcpus_, mem_), d0);
  vcpus_[0].slots[0]--;
  ctl_.vm_slots()[0]++;
  EXPECT_NE(StateDigest(ctl_, vcpus_, mem_), d0);
  ctl_.vm_slots()[0]--;
  uint8_t b = 1;
  ASSERT_TRUE(mem_.Write(0x9000, &b, 1));
  EXPECT_NE(StateDigest(ctl_, vcpus_, mem_), d0);
  b = 0;
  ASSERT_TRUE(mem_.Write(0x9000, &b, 1));
  EXPECT_EQ(StateDigest(ctl_, vcpus_, mem_), d0);  // A zeroed page equals an untouched one.
}

TEST_F(SnapshotTest, RestoreMatchesSlotsByNameAndKeepsResetForNewSlots) {
  Write(0, 5);
  Snapshot s = CaptureSnapshot(ctl_, vcpus_, mem_);
  // A newer build whose layout has an extra slot before the old one.
  Controller newer;
  newer.layout().AddVcpuSlot("NEW_FIRST", 42);
  ASSERT_TRUE(newer.Insert(0x10, std::make_unique<CountingMsr>(newer.layout())));
  std::vector<Vcpu> vcpus;
  SparseMemory mem;
  ASSERT_TRUE(RestoreSnapshot(s, newer, &vcpus, &mem).ok());
  ASSERT_EQ(vcpus.size(), 2u);
  EXPECT_EQ(vcpus[0].slots[0], 42u);
  EXPECT_EQ(vcpus[0].slots[1], 5u);
}

TEST_F(SnapshotTest, RestoreRejectsUnknownSlotName) {
  Snapshot s = CaptureSnapshot(ctl_, vcpus_, mem_);
  s.vcpu_slot_names[0] = "NOBODY";
  auto st = RestoreSnapshot(s, ctl_, &vcpus_, &mem_);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("NOBODY"), absl::string_view::npos);
}

TEST_F(SnapshotTest, RestoreRejectsBadHandlerState) {
  Snapshot s = CaptureSnapshot(ctl_, vcpus_, mem_);
  s.handler_states[0] = "not-a-number";
  EXPECT_EQ(RestoreSnapshot(s, ctl_, &vcpus_, &mem_).code(), absl::StatusCode::kInvalidArgument);
  s.handler_states.push_back("");
  EXPECT_EQ(RestoreSnapshot(s, ctl_, &vcpus_, &mem_).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace msrtrace
