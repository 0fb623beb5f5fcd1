#include "harness/replay/exit_check.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "harness/replay/machine.h"

namespace msrtrace {
namespace {

constexpr uint32_t kPat = 0x277;
constexpr uint32_t kTsc = 0x10;

class KeepAll : public DivergenceSink {
 public:
  Divergence* Add(DivergenceKind) override { return &kept.emplace_back(); }
  std::vector<Divergence> kept;
};

class ExitCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TraceHeader h;
    h.cpu_profile = "intel-icx";
    h.handler_set = "reference";
    h.vcpu_count = 2;
    absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(h);
    ASSERT_TRUE(m.ok()) << m.status();
    machine_ = *std::move(m);
    engine_ = std::make_unique<ControllerEngine>(machine_->controller.get());
    checker_ = std::make_unique<ExitChecker>(machine_.get(), engine_.get(), &sink_);
    checker_->BeginRun();
  }
  static ExitEvent Event(uint32_t vcpu, Access a, uint32_t index, uint64_t value = 0) {
    ExitEvent e;
    e.vcpu_id = vcpu;
    e.exit = a == Access::kWrite ? Exit::Wrmsr(2) : Exit::Rdmsr(2);
    e.rcx = index;
    e.rax = value & 0xffffffffu;
    e.rdx = value >> 32;
    e.rip = 0x401000;
    e.cr0 = 0x80050033;
    e.cr4 = 0x20;
    e.efer = 0x500;
    e.cs_l = true;
    e.known = kFieldRaxRdxIn | kFieldRip | kFieldInstrLength | kFieldMode | kFieldEnv;
    return e;
  }
  std::unique_ptr<Machine> machine_;
  std::unique_ptr<ControllerEngine> engine_;
  KeepAll sink_;
  std::unique_ptr<ExitChecker> checker_;
};

TEST_F(ExitCheckTest, TheReferenceControllerPassesEveryCheck) {
  ASSERT_TRUE(checker_->Run(Event(0, Access::kWrite, kPat, 0x0007040600070406ull)).ok());
  ASSERT_TRUE(checker_->Run(Event(0, Access::kRead, kPat)).ok());
  ASSERT_TRUE(checker_->Run(Event(0, Access::kWrite, kPat, 0x0202020202020202ull)).ok());  // #GP.
  EXPECT_TRUE(sink_.kept.empty()) << DivergenceKindName(sink_.kept[0].kind);
  EXPECT_EQ(checker_->observed(), RecordedKind::kGpInjected);
}

TEST_F(ExitCheckTest, ARecordedValueThatDiffersIsAValueDivergence) {
  ExitEvent e = Event(0, Access::kRead, kPat);
  e.kind = RecordedKind::kRetired;
  e.rax_out = 0x1234;
  e.known |= kFieldRaxRdxOut;
  ASSERT_TRUE(checker_->Run(e).ok());
  ASSERT_EQ(sink_.kept.size(), 1u);
  EXPECT_EQ(sink_.kept[0].kind, DivergenceKind::kValue);
  EXPECT_EQ(sink_.kept[0].msr_name, "IA32_PAT");
}

TEST_F(ExitCheckTest, AfterACaptureGapOnlyTheOutcomeKindIsCompared) {
  ExitEvent e = Event(1, Access::kRead, kTsc);
  e.kind = RecordedKind::kRetired;
  e.rax_out = 0x1234;  // Wrong value and RIP: the lost exits may explain them.
  e.rip_out = 0x999;
  e.known |= kFieldRaxRdxOut | kFieldRipOut;
  e.lost_before = 3;
  ASSERT_TRUE(checker_->Run(e).ok());
  EXPECT_TRUE(checker_->after_gap());
  EXPECT_TRUE(sink_.kept.empty());
  // Later events of the same vCPU stay kind-only; the outcome kind is still compared.
  e.lost_before = 0;
  e.kind = RecordedKind::kGpInjected;
  ASSERT_TRUE(checker_->Run(e).ok());
  ASSERT_EQ(sink_.kept.size(), 1u);
  EXPECT_EQ(sink_.kept[0].kind, DivergenceKind::kOutcome);
  // Another vCPU is compared in full.
  sink_.kept.clear();
  ExitEvent other = Event(0, Access::kRead, kPat);
  other.kind = RecordedKind::kRetired;
  other.rax_out = 0x1234;
  other.known |= kFieldRaxRdxOut;
  ASSERT_TRUE(checker_->Run(other).ok());
  EXPECT_FALSE(checker_->after_gap());
  ASSERT_EQ(sink_.kept.size(), 1u);
  EXPECT_EQ(sink_.kept[0].kind, DivergenceKind::kValue);
  EXPECT_EQ(checker_->gaps(), 1u);
  checker_->BeginRun();
  EXPECT_EQ(checker_->gaps(), 0u);
}

TEST_F(ExitCheckTest, AfterACaptureGapTheArchitecturalChecksStillApply) {
  // An engine that forgets to advance RIP.
  class Stuck : public ExitEngine {
   public:
    explicit Stuck(Controller* c) : c_(c) {}
    absl::StatusOr<Outcome> Handle(const Exit& x, Vcpu& v, GuestMemory& m) override {
      const uint64_t rip = v.regs.rip;
      absl::StatusOr<Outcome> o = c_->Handle(x, v, m);
      v.regs.rip = rip;
      return o;
    }
    Controller* c_;
  } stuck(machine_->controller.get());
  ExitChecker checker(machine_.get(), &stuck, &sink_);
  ExitEvent e = Event(0, Access::kRead, kPat);
  e.lost_before = UINT64_MAX;
  ASSERT_TRUE(checker.Run(e).ok());
  ASSERT_EQ(sink_.kept.size(), 1u);
  EXPECT_EQ(sink_.kept[0].kind, DivergenceKind::kArchRipAdvance);
}

TEST_F(ExitCheckTest, RipWrapsAt32BitsByTheModeBeforeTheExit) {
  ExitEvent e = Event(0, Access::kRead, kPat);
  e.rip = 0xffffffff;
  e.efer = 0;  // Not 64-bit mode: EIP wraps.
  e.cs_l = false;
  ASSERT_TRUE(checker_->Run(e).ok());
  EXPECT_TRUE(sink_.kept.empty());
  EXPECT_EQ(machine_->vcpus[0].regs.rip, 1u);
}

TEST_F(ExitCheckTest, FaultAtomicityCatchesASlotChangedBeforeAFault) {
  // An engine whose #GP flips a per-vCPU slot.
  class Leaky : public ExitEngine {
   public:
    explicit Leaky(Controller* c) : c_(c) {}
    absl::StatusOr<Outcome> Handle(const Exit& x, Vcpu& v, GuestMemory& m) override {
      absl::StatusOr<Outcome> o = c_->Handle(x, v, m);
      if (o.ok() && o->kind == Outcome::Kind::kGpInjected && !v.slots.empty()) v.slots[0] ^= 1;
      return o;
    }
    Controller* c_;
  } leaky(machine_->controller.get());
  ExitChecker checker(machine_.get(), &leaky, &sink_);
  ASSERT_TRUE(checker.Run(Event(0, Access::kWrite, kPat, 0x0202020202020202ull)).ok());
  ASSERT_EQ(sink_.kept.size(), 1u);
  EXPECT_EQ(sink_.kept[0].kind, DivergenceKind::kArchGpNotAtomic);
  EXPECT_NE(sink_.kept[0].actual.find("vCPU slot"), std::string::npos) << sink_.kept[0].actual;
}

TEST_F(ExitCheckTest, UpperHalfJunkIsAppliedAfterTheInputs) {
  ExitCheckOptions o;
  o.junk_rcx = kJunkRcx;
  o.junk_rax = kJunkRax;
  o.junk_rdx = kJunkRdx;
  checker_->set_options(o);
  ASSERT_TRUE(checker_->Run(Event(0, Access::kWrite, kPat, 0x0007040600070406ull)).ok());
  EXPECT_EQ(checker_->regs_before().reg(Gpr::kRcx), kPat ^ kJunkRcx);
  EXPECT_EQ(checker_->observed(), RecordedKind::kRetired);  // ECX is the index.
  EXPECT_TRUE(sink_.kept.empty());
}

TEST_F(ExitCheckTest, AnEventForAMissingVcpuIsAnErrorNotADivergence) {
  EXPECT_EQ(checker_->Run(Event(7, Access::kRead, kPat)).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace msrtrace
