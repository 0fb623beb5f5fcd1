#include "harness/replay/exit_check.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "harness/core/handler_registry.h"
#include "harness/core/status_macros.h"
#include "harness/replay/machine.h"

namespace msrtrace {
namespace {

constexpr uint32_t kPat = 0x277;
constexpr uint32_t kTsc = 0x10;

// --- Handlers that break fault atomicity, each in its own way ------------------------------
// A counter with internal state outside slots (SaveState): reads count.
constexpr uint32_t kCounterMsr = 0x4d534210;
// A WRMSR of `how` here injects #GP after changing, depending on `how`: 1 IA32_PAT's vCPU slot
// (another MSR's state), 2 a VM-wide slot, 3 the counter handler's internal state (another
// handler object), 4 IA32_PAT's slot through a pointer kept from OnVcpuReset (around
// ExitContext), 5 its own slot and back again (no net change: atomic). Any other value: #GP
// with nothing changed.
constexpr uint32_t kClobberMsr = 0x4d534211;

class CounterHandler : public MsrHandler {
 public:
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext&) override {
    return MsrResult::Ok(++count_);
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t, ExitContext&) override {
    return MsrResult::Gp();
  }
  void SaveState(std::string* out) const override {
    *out = count_ == 0 ? "" : absl::StrCat(count_);
  }
  absl::Status RestoreState(absl::string_view in) override {
    count_ = 0;
    if (!in.empty() && !absl::SimpleAtoi(in, &count_)) return absl::InvalidArgumentError("count");
    return absl::OkStatus();
  }
  uint64_t count_ = 0;
};

class ClobberHandler : public MsrHandler {
 public:
  ClobberHandler(SlotId own, SlotId pat, SlotId vm, CounterHandler* counter)
      : own_(own), pat_(pat), vm_(vm), counter_(counter) {}
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext& ctx) override {
    return MsrResult::Ok(ctx.slot(own_));
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t how, ExitContext& ctx) override {
    switch (how) {
      case 1:
        ctx.slot(pat_) ^= 1;
        break;
      case 2:
        ctx.vm_slot(vm_) ^= 1;
        break;
      case 3:
        ++counter_->count_;
        break;
      case 4:
        for (Vcpu* v : kept_) {
          if (v->id == ctx.vcpu_id()) v->slots[pat_] ^= 1;
        }
        break;
      case 5: {
        uint64_t& s = ctx.slot(own_);
        s ^= 1;
        ctx.slot(own_) ^= 1;  // Noted again, now holding the changed value.
        break;
      }
      default:
        break;
    }
    return MsrResult::Gp();
  }
  void OnVcpuReset(Vcpu& vcpu) override { kept_.push_back(&vcpu); }  // Breaks the rule (case 4).
  void Forget() { kept_.clear(); }
  void Keep(Vcpu* v) { kept_.push_back(v); }

 private:
  SlotId own_, pat_, vm_;
  CounterHandler* counter_;
  std::vector<Vcpu*> kept_;
};

absl::Status InstallNonAtomic(Controller& controller, const CpuProfile& profile) {
  RETURN_IF_ERROR(FindHandlerSet("reference")->install(controller, profile));
  StateLayout& layout = controller.layout();
  const int pat = layout.FindVcpuSlot("IA32_PAT");
  if (pat < 0 || layout.vm_slots().empty()) return absl::InternalError("no IA32_PAT or VM slot");
  const SlotId own = layout.AddVcpuSlot("CLOBBER");
  auto* counter =
      static_cast<CounterHandler*>(controller.Adopt(std::make_unique<CounterHandler>()));
  auto* clobber = controller.Adopt(std::make_unique<ClobberHandler>(
      own, static_cast<SlotId>(pat), static_cast<SlotId>(layout.vm_slots().size() - 1), counter));
  if (!controller.Insert(kCounterMsr, counter) || !controller.Insert(kClobberMsr, clobber)) {
    return absl::AlreadyExistsError("test MSR index taken");
  }
  return absl::OkStatus();
}
const bool kNonAtomicRegistered = RegisterHandlerSet(
    {"test-exit-check-non-atomic", "TEST ONLY: reference + handlers that break fault atomicity",
     &InstallNonAtomic});

class KeepAll : public DivergenceSink {
 public:
  Divergence* Add(DivergenceKind) override { return &kept.emplace_back(); }
  std::vector<Divergence> kept;
};

// A WRMSR/RDMSR exit of `vcpu` in 64-bit mode with everything but the outputs known.
ExitEvent MsrEvent(uint32_t vcpu, Access a, uint32_t index, uint64_t value = 0) {
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

// A fixture's machine: two intel-icx vCPUs of a registered handler set, the production engine
// and a checker that keeps every divergence.
template <typename TestBase>
class WithChecker : public TestBase {
 protected:
  void Build(const std::string& handler_set, ExitCheckOptions options = {}) {
    TraceHeader h;
    h.cpu_profile = "intel-icx";
    h.handler_set = handler_set;
    h.vcpu_count = 2;
    absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(h);
    ASSERT_TRUE(m.ok()) << m.status();
    machine_ = *std::move(m);
    engine_ = std::make_unique<ControllerEngine>(machine_->controller.get());
    checker_ = std::make_unique<ExitChecker>(machine_.get(), engine_.get(), &sink_, options);
    checker_->BeginRun();
  }
  std::unique_ptr<Machine> machine_;
  std::unique_ptr<ControllerEngine> engine_;
  KeepAll sink_;
  std::unique_ptr<ExitChecker> checker_;
};

class ExitCheckTest : public WithChecker<::testing::Test> {
 protected:
  void SetUp() override { Build("reference"); }
  static ExitEvent Event(uint32_t vcpu, Access a, uint32_t index, uint64_t value = 0) {
    return MsrEvent(vcpu, a, index, value);
  }
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

// Fault atomicity with the production engine: the checker journals the slots handlers reach
// (full_check_interval 0: never a full copy) or copies everything (1: every exit); both must
// catch every state change of a faulting exit and report it the same way.
class FaultAtomicityTest : public WithChecker<::testing::TestWithParam<uint32_t>> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kNonAtomicRegistered);
    ExitCheckOptions o;
    o.full_check_interval = GetParam();
    Build("test-exit-check-non-atomic", o);
    // The vCPUs were copied into the machine after OnVcpuReset: point case 4 at the real ones.
    auto* clobber = static_cast<ClobberHandler*>(machine_->controller->Find(kClobberMsr));
    clobber->Forget();
    for (Vcpu& v : machine_->vcpus) clobber->Keep(&v);
  }
  // Runs a WRMSR of `how` to the clobbering MSR on vCPU 1 and returns what fault atomicity
  // reported ("" if nothing).
  std::string Clobber(uint64_t how) {
    sink_.kept.clear();
    ExitEvent e = MsrEvent(1, Access::kWrite, kClobberMsr, how);
    EXPECT_TRUE(checker_->Run(e).ok());
    EXPECT_EQ(checker_->observed(), RecordedKind::kGpInjected);
    std::string out;
    for (const Divergence& d : sink_.kept) {
      EXPECT_EQ(d.kind, DivergenceKind::kArchGpNotAtomic) << d.actual;
      out += d.actual;
    }
    return out;
  }
};

TEST_P(FaultAtomicityTest, AFaultThatChangesAnotherMsrsSlotIsReported) {
  EXPECT_EQ(Clobber(1), "vCPU slot IA32_PAT 0x7040600070406 -> 0x7040600070407");
}

TEST_P(FaultAtomicityTest, AFaultThatChangesAVmWideSlotIsReported) {
  const std::string got = Clobber(2);
  EXPECT_EQ(got.rfind("VM slot ", 0), 0u) << got;
}

TEST_P(FaultAtomicityTest, AFaultThatChangesAnotherHandlersInternalStateIsReported) {
  const std::string got = Clobber(3);
  EXPECT_EQ(got.rfind("internal state of handler #", 0), 0u) << got;
  // And the counter's own reads (retired) change it without a report.
  sink_.kept.clear();
  ASSERT_TRUE(checker_->Run(MsrEvent(0, Access::kRead, kCounterMsr)).ok());
  EXPECT_TRUE(sink_.kept.empty());
}

TEST_P(FaultAtomicityTest, ASlotChangedAndPutBackIsNoChange) { EXPECT_EQ(Clobber(5), ""); }

TEST_P(FaultAtomicityTest, AFaultThatChangesNothingIsClean) {
  EXPECT_EQ(Clobber(0), "");
  // A reference handler's own #GP (reserved PAT type) after state-changing retired exits.
  sink_.kept.clear();
  ASSERT_TRUE(checker_->Run(MsrEvent(1, Access::kWrite, kPat, 0x0007040600070406ull)).ok());
  ASSERT_TRUE(checker_->Run(MsrEvent(1, Access::kWrite, kPat, 0x0202020202020202ull)).ok());
  EXPECT_EQ(checker_->observed(), RecordedKind::kGpInjected);
  EXPECT_TRUE(sink_.kept.empty());
}

INSTANTIATE_TEST_SUITE_P(JournalAndFullCopy, FaultAtomicityTest, ::testing::Values(0u, 1u),
                         [](const ::testing::TestParamInfo<uint32_t>& i) {
                           return i.param == 0 ? std::string("Journal") : std::string("FullCopy");
                         });

TEST(FaultAtomicityFullCheckTest, AWriteAroundExitContextIsCaughtByTheFullCopy) {
  TraceHeader h;
  h.cpu_profile = "intel-icx";
  h.handler_set = "test-exit-check-non-atomic";
  h.vcpu_count = 2;
  absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(h);
  ASSERT_TRUE(m.ok()) << m.status();
  auto* clobber = static_cast<ClobberHandler*>((*m)->controller->Find(kClobberMsr));
  clobber->Forget();
  for (Vcpu& v : (*m)->vcpus) clobber->Keep(&v);
  ControllerEngine engine((*m)->controller.get());
  KeepAll sink;
  ExitCheckOptions o;
  o.full_check_interval = 4;  // Exits 4, 8, ... copy everything.
  ExitChecker checker(m->get(), &engine, &sink, o);
  checker.BeginRun();
  for (int i = 1; i <= 8; ++i) {
    ASSERT_TRUE(checker.Run(MsrEvent(1, Access::kWrite, kClobberMsr, 4)).ok());
    // The journal cannot see a write that bypasses ExitContext; the periodic full copy does.
    EXPECT_EQ(sink.kept.size(), static_cast<size_t>(i / 4)) << "exit " << i;
  }
  ASSERT_FALSE(sink.kept.empty());
  EXPECT_EQ(sink.kept[0].kind, DivergenceKind::kArchGpNotAtomic);
  EXPECT_NE(sink.kept[0].actual.find("vCPU slot IA32_PAT"), std::string::npos)
      << sink.kept[0].actual;
}

TEST(KeepsNoInternalStateTest, OnlyHandlersThatDoNotOverrideSaveState) {
  class Stateless : public MsrHandler {
   public:
    absl::StatusOr<MsrResult> Read(uint32_t, ExitContext&) override { return MsrResult::Ok(); }
    absl::StatusOr<MsrResult> Write(uint32_t, uint64_t, ExitContext&) override {
      return MsrResult::Ok();
    }
  };
  EXPECT_TRUE(MsrHandler::KeepsNoInternalState(Stateless()));
  CounterHandler counter;  // Its state bytes are empty at 0, but it has state.
  EXPECT_FALSE(MsrHandler::KeepsNoInternalState(counter));
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
