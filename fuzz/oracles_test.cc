#include "fuzz/oracles.h"

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "fuzz/fuzz_setup.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "handlers/cpu_profile.h"
#include "handlers/handler_set.h"
#include "handlers/msr_table.h"
#include "harness/core/status_macros.h"
#include "harness/replay/machine.h"

namespace msrtrace {
namespace fuzz {
namespace {

constexpr uint32_t kPat = 0x277;  // IA32_PAT: plain storage with a reserved-type check.

// Runs the real controller, then lets a test hook break the result.
using Hook = std::function<void(const VcpuRegs& before, Vcpu& vcpu, Outcome& out)>;

class HookEngine : public ExitEngine {
 public:
  HookEngine(Controller* c, Hook hook) : c_(c), hook_(std::move(hook)) {}
  absl::StatusOr<Outcome> Handle(const Exit& exit, Vcpu& vcpu, GuestMemory& memory) override {
    const VcpuRegs before = vcpu.regs;
    absl::StatusOr<Outcome> out = c_->Handle(exit, vcpu, memory);
    if (out.ok()) hook_(before, vcpu, *out);
    return out;
  }

 private:
  Controller* c_;
  Hook hook_;
};

// `make_hook` is called once per engine (one per machine; machines are reused across runs).
EngineFactory HookFactory(const std::function<Hook()>& make_hook) {
  return [make_hook](Machine& machine) -> std::unique_ptr<ExitEngine> {
    return std::make_unique<HookEngine>(machine.controller.get(), make_hook());
  };
}

// A counter MSR whose RestoreState puts back only the reset state (an empty or zero counter)
// and drops any other: reset works, restoring a mid-run snapshot does not.
constexpr uint32_t kLossyMsr = 0x4d534200;
class LossyRestoreHandler : public MsrHandler {
 public:
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext&) override {
    return MsrResult::Ok(++count_);
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t, ExitContext&) override {
    return MsrResult::Gp();
  }
  void SaveState(std::string* out) const override { *out = std::to_string(count_); }
  absl::Status RestoreState(absl::string_view) override {
    count_ = 0;  // BUG: ignores the saved count.
    return absl::OkStatus();
  }

 private:
  uint64_t count_ = 0;
};

absl::Status InstallLossy(Controller& controller, const CpuProfile& profile) {
  RETURN_IF_ERROR(FindHandlerSet("reference")->install(controller, profile));
  if (!controller.Insert(kLossyMsr, std::make_unique<LossyRestoreHandler>())) {
    return absl::AlreadyExistsError("lossy MSR index taken");
  }
  return absl::OkStatus();
}
const bool kLossyRegistered = RegisterHandlerSet(
    {"test-lossy-restore", "TEST ONLY: reference + a handler that drops restored state",
     &InstallLossy});

class OraclesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TraceModel> t = ResetTrace("reference");
    ASSERT_TRUE(t.ok()) << t.status();
    trace_ = *t;
  }
  void Add(Access a, uint32_t index, uint64_t value = 0) {
    trace_.events.push_back(MakeEvent(trace_, a, index, value));
    trace_.events.back().seq = trace_.events.size();
  }
  // The PAT reads of the determinism tests would break the reset-value rule first.
  static OracleOptions NoConformance() {
    OracleOptions o = MakeOracleOptions();
    o.table_conformance = false;
    return o;
  }
  absl::optional<OracleFailure> CheckWith(EngineFactory factory,
                                          OracleOptions options = MakeOracleOptions()) {
    OracleRunner runner(std::move(factory), std::move(options));
    absl::StatusOr<absl::optional<OracleFailure>> r = runner.Check(trace_);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : absl::nullopt;
  }
  TraceModel trace_;
};

TEST_F(OraclesTest, EveryOracleHasADistinctName) {
  std::set<std::string> names;
  for (int i = 0; i < static_cast<int>(Oracle::kCount); ++i) {
    names.insert(OracleName(static_cast<Oracle>(i)));
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(Oracle::kCount));
  EXPECT_EQ(names.count("unknown"), 0u);
}

TEST_F(OraclesTest, ReferenceControllerPassesEveryOracleOnTheWholeTable) {
  for (const MsrRow& row : MsrTable()) {
    Add(Access::kWrite, row.index, row.reset);
    Add(Access::kRead, row.index);
  }
  Add(Access::kRead, 0xdeadbeef);  // Unknown: #GP.
  absl::optional<OracleFailure> f = CheckWith(ReferenceEngineFactory());
  EXPECT_FALSE(f.has_value()) << FormatFailure(*f, trace_, "test");
}

TEST_F(OraclesTest, RipProgressCatchesARetiredExitThatKeepsRip) {
  Add(Access::kRead, kPat);
  absl::optional<OracleFailure> f = CheckWith(HookFactory(
      [] { return [](const VcpuRegs& before, Vcpu& v, Outcome&) { v.regs.rip = before.rip; }; }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kRipProgress);
  EXPECT_EQ(f->event, 0u);
}

TEST_F(OraclesTest, RipProgressCatchesAFaultThatMovesRip) {
  Add(Access::kRead, 0xdeadbeef);
  absl::optional<OracleFailure> f = CheckWith(HookFactory([] {
    return [](const VcpuRegs&, Vcpu& v, Outcome& o) {
      if (o.kind == Outcome::Kind::kGpInjected) v.regs.rip += 2;
    };
  }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kRipProgress);
}

TEST_F(OraclesTest, RipProgressWrapsAt32BitsOutsideLongMode) {
  Add(Access::kRead, kPat);
  trace_.events[0].rip = 0xffffffff;
  trace_.events[0].efer = 0;
  trace_.events[0].cs_l = false;
  EXPECT_FALSE(CheckWith(ReferenceEngineFactory()).has_value());
  // An engine that does not wrap is caught.
  absl::optional<OracleFailure> f = CheckWith(HookFactory([] {
    return [](const VcpuRegs& before, Vcpu& v, Outcome&) { v.regs.rip = before.rip + 2; };
  }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kRipProgress);
}

TEST_F(OraclesTest, RegisterHygieneCatchesAClobberedGpr) {
  Add(Access::kWrite, kPat, 0x0007040600070406ull);
  absl::optional<OracleFailure> f = CheckWith(HookFactory(
      [] { return [](const VcpuRegs&, Vcpu& v, Outcome&) { v.regs.reg(Gpr::kRbx) ^= 1; }; }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kRegisterHygiene);
  EXPECT_THAT(f->detail, ::testing::HasSubstr("rbx"));
}

TEST_F(OraclesTest, RegisterHygieneCatchesUpperHalvesLeftSet) {
  Add(Access::kRead, kPat);
  trace_.events[0].rax = 0x1234567800000000ull;
  absl::optional<OracleFailure> f = CheckWith(HookFactory([] {
    return [](const VcpuRegs& before, Vcpu& v, Outcome&) {
      v.regs.reg(Gpr::kRax) |= before.reg(Gpr::kRax) & ~0xffffffffull;
    };
  }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kRegisterHygiene);
}

TEST_F(OraclesTest, UpperHalfIndependenceCatchesAnIndexFromAllOfRcx) {
  Add(Access::kRead, kPat);
  absl::optional<OracleFailure> f = CheckWith(HookFactory([] {
    return [](const VcpuRegs& before, Vcpu& v, Outcome& o) {
      if ((before.reg(Gpr::kRcx) >> 32) != 0 && o.access == Access::kRead) {
        o.value = 0;  // As if a different (unknown) MSR had been read.
        v.regs.reg(Gpr::kRax) = v.regs.reg(Gpr::kRdx) = 0;
      }
    };
  }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kUpperHalfIndependence);
}

TEST_F(OraclesTest, DeterminismCatchesStateSharedAcrossRuns) {
  Add(Access::kRead, kPat);
  static uint64_t counter = 0;  // Survives fresh engines: not deterministic.
  absl::optional<OracleFailure> f = CheckWith(HookFactory([] {
                                                return [](const VcpuRegs&, Vcpu& v, Outcome& o) {
                                                  o.value = ++counter;
                                                  v.regs.reg(Gpr::kRax) = o.value & 0xffffffff;
                                                  v.regs.reg(Gpr::kRdx) = o.value >> 32;
                                                };
                                              }),
                                              NoConformance());
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kDeterminism);
}

TEST_F(OraclesTest, DeterminismCatchesEngineStateOutsideTheMachine) {
  for (int i = 0; i < 4; ++i) Add(Access::kRead, kPat);
  absl::optional<OracleFailure> f = CheckWith(
      HookFactory([] {
        auto exits = std::make_shared<uint64_t>(0);  // Per engine, outside the machine's state.
        return [exits](const VcpuRegs&, Vcpu& v, Outcome& o) {
          o.value = ++*exits;
          v.regs.reg(Gpr::kRax) = o.value;
          v.regs.reg(Gpr::kRdx) = 0;
        };
      }),
      NoConformance());
  ASSERT_TRUE(f.has_value());
  // The machine is reused, not rebuilt: the second run sees the count the first one left.
  EXPECT_EQ(f->oracle, Oracle::kDeterminism);
  EXPECT_EQ(f->event, 0u);
}

TEST_F(OraclesTest, SnapshotResumeCatchesAHandlerThatDropsRestoredState) {
  ASSERT_TRUE(kLossyRegistered);
  trace_.header.handler_set = "test-lossy-restore";
  for (int i = 0; i < 4; ++i) Add(Access::kRead, kLossyMsr);
  absl::optional<OracleFailure> f = CheckWith(ReferenceEngineFactory());
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kSnapshotResume);
  EXPECT_EQ(f->event, 2u);
}

// --- The combined check pass -------------------------------------------------------------------

// Runs the trace once and returns the failure and what the runner did.
struct CheckedWithStats {
  absl::optional<OracleFailure> failure;
  OracleRunStats stats;
};

TEST_F(OraclesTest, AnInputThatPassesCostsThePrimaryRunAndOneCombinedPass) {
  for (int i = 0; i < 3; ++i) {
    Add(Access::kWrite, kPat, 0x0007040600070406ull);
    Add(Access::kRead, kPat);
  }
  OracleRunner runner(ReferenceEngineFactory(), MakeOracleOptions());
  absl::StatusOr<absl::optional<OracleFailure>> r = runner.Check(trace_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->has_value()) << FormatFailure(**r, trace_, "test");
  const OracleRunStats& s = runner.stats();
  EXPECT_EQ(s.inputs, 1u);
  EXPECT_EQ(s.combined_passes, 1u);
  EXPECT_EQ(s.attributions, 0u);
  // The primary run, then the resumed half [3, 6) and the first half [0, 3): each event twice,
  // against four times less half for the single second runs (determinism, junk, resume).
  EXPECT_EQ(s.runs, 3u);
  EXPECT_EQ(s.events, 2 * trace_.events.size());
}

// An engine that breaks only what one second run changes, on the event at `at` only: the
// combined pass must see it and the single runs must name the right oracle and event.
class CombinedPassAttributionTest : public OraclesTest {
 protected:
  void SetUp() override {
    OraclesTest::SetUp();
    for (int i = 0; i < 6; ++i) Add(Access::kRead, kPat);
    trace_.events[kAt].exit.instruction_length = 3;  // Marks the event the engines break.
  }
  CheckedWithStats Run(EngineFactory factory) {
    OracleRunner runner(std::move(factory), NoConformance());
    absl::StatusOr<absl::optional<OracleFailure>> r = runner.Check(trace_);
    EXPECT_TRUE(r.ok()) << r.status();
    return {r.ok() ? *r : absl::nullopt, runner.stats()};
  }
  static constexpr size_t kAt = 4;  // In the resumed half (mid = 3).
};

// Breaks the marked event's value when `broken(before)` says so.
EngineFactory BreakMarkedEventWhen(const std::function<bool(const VcpuRegs&)>& broken) {
  return HookFactory([broken] {
    return [broken](const VcpuRegs& before, Vcpu& v, Outcome& o) {
      if (before.rip + 3 != v.regs.rip || o.kind != Outcome::Kind::kRetired || !broken(before)) {
        return;
      }
      o.value ^= 0x10;
      v.regs.reg(Gpr::kRax) ^= 0x10;
    };
  });
}

TEST_F(CombinedPassAttributionTest, JunkDependenceInTheResumedHalfIsUpperHalfIndependence) {
  const CheckedWithStats r =
      Run(BreakMarkedEventWhen([](const VcpuRegs& b) { return (b.reg(Gpr::kRax) >> 32) != 0; }));
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_EQ(r.failure->oracle, Oracle::kUpperHalfIndependence);
  EXPECT_EQ(r.failure->event, kAt);
  EXPECT_EQ(r.stats.attributions, 1u);
  EXPECT_EQ(r.stats.unattributed, 0u);
}

TEST_F(CombinedPassAttributionTest, ADifferenceOnTheSecondRunIsDeterminism) {
  // Every exit of the marked event after the first (an engine-side count, outside the
  // machine): the primary run sees the right value, every later run another.
  const CheckedWithStats r = Run(HookFactory([] {
    auto seen = std::make_shared<int>(0);
    return [seen](const VcpuRegs& before, Vcpu& v, Outcome& o) {
      if (before.rip + 3 != v.regs.rip || o.kind != Outcome::Kind::kRetired) return;
      if ((*seen)++ >= 1) {
        o.value ^= 0x10;
        v.regs.reg(Gpr::kRax) ^= 0x10;
      }
    };
  }));
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_EQ(r.failure->oracle, Oracle::kDeterminism);
  EXPECT_EQ(r.failure->event, kAt);
  EXPECT_EQ(r.stats.attributions, 1u);
}

TEST_F(CombinedPassAttributionTest, ADisagreementNoSingleRunReproducesIsDeterminism) {
  // Differs on the combined pass only (its second exit of the marked event), never again.
  const CheckedWithStats r = Run(HookFactory([] {
    auto seen = std::make_shared<int>(0);
    return [seen](const VcpuRegs& before, Vcpu& v, Outcome& o) {
      if (before.rip + 3 != v.regs.rip || o.kind != Outcome::Kind::kRetired) return;
      if ((*seen)++ == 1) {
        o.value ^= 0x10;
        v.regs.reg(Gpr::kRax) ^= 0x10;
      }
    };
  }));
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_EQ(r.failure->oracle, Oracle::kDeterminism);
  EXPECT_EQ(r.failure->event, kAt);
  EXPECT_THAT(r.failure->detail, ::testing::HasSubstr("no single second run did"));
  EXPECT_EQ(r.stats.unattributed, 1u);
}

TEST_F(OraclesTest, SnapshotResumeIsAttributedAfterTheCombinedPass) {
  ASSERT_TRUE(kLossyRegistered);
  trace_.header.handler_set = "test-lossy-restore";
  for (int i = 0; i < 6; ++i) Add(Access::kRead, kLossyMsr);
  OracleRunner runner(ReferenceEngineFactory(), MakeOracleOptions());
  absl::StatusOr<absl::optional<OracleFailure>> r = runner.Check(trace_);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->oracle, Oracle::kSnapshotResume);
  EXPECT_EQ((*r)->event, 3u);
  EXPECT_EQ(runner.stats().attributions, 1u);
  EXPECT_EQ(runner.stats().unattributed, 0u);
}

TEST_F(OraclesTest, StateThatDiffersOnlyBeforeTheMidpointIsDeterminism) {
  // A handler-visible difference the outcomes do not show: the first half's end state. The
  // resumed half starts from the primary run's snapshot, so only the mid-point hash sees it.
  for (int i = 0; i < 4; ++i) Add(Access::kRead, kPat);
  const CheckedWithStats r = [&] {
    OracleRunner runner(HookFactory([] {
                          auto exits = std::make_shared<int>(0);
                          return [exits](const VcpuRegs&, Vcpu& v, Outcome&) {
                            // Exit 8: the combined pass's last (its first half, event 1).
                            if (++*exits == 8 && !v.slots.empty()) v.slots.back() ^= 1;
                          };
                        }),
                        NoConformance());
    absl::StatusOr<absl::optional<OracleFailure>> c = runner.Check(trace_);
    EXPECT_TRUE(c.ok()) << c.status();
    return CheckedWithStats{c.ok() ? *c : absl::nullopt, runner.stats()};
  }();
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_EQ(r.failure->oracle, Oracle::kDeterminism);
  EXPECT_EQ(r.failure->event, 2u);  // Before event mid.
  EXPECT_THAT(r.failure->detail, ::testing::HasSubstr("state hashes differ"));
}

TEST_F(OraclesTest, EveryOracleIsOneRowOfTheTable) {
  std::set<Oracle> seen;
  for (const OracleDef& def : Oracles()) {
    EXPECT_TRUE(seen.insert(def.oracle).second) << OracleName(def.oracle);
    EXPECT_EQ(def.method == OracleMethod::kSecondRun, def.second_run != SecondRun::kNone)
        << OracleName(def.oracle);
    EXPECT_EQ(def.method == OracleMethod::kEngineCheck, def.divergence_kinds != 0)
        << OracleName(def.oracle);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(Oracle::kCount));
  // Every architectural divergence of the engine belongs to exactly one oracle.
  for (int k = static_cast<int>(DivergenceKind::kArchRipAdvance);
       k < static_cast<int>(DivergenceKind::kCount); ++k) {
    int owners = 0;
    for (const OracleDef& def : Oracles()) owners += (def.divergence_kinds >> k) & 1;
    EXPECT_EQ(owners, 1) << DivergenceKindName(static_cast<DivergenceKind>(k));
  }
}

TEST_F(OraclesTest, DeterminismIsJudgedBeforeUpperHalfIndependence) {
  size_t det = 0, junk = 0;
  for (size_t i = 0; i < Oracles().size(); ++i) {
    if (Oracles()[i].oracle == Oracle::kDeterminism) det = i;
    if (Oracles()[i].oracle == Oracle::kUpperHalfIndependence) junk = i;
  }
  EXPECT_LT(det, junk);
}

TEST_F(OraclesTest, FaultAtomicityCatchesAStateChangeBeforeAFault) {
  Add(Access::kWrite, kPat, 0x0202020202020202ull);  // PAT type 2 is reserved: #GP.
  absl::optional<OracleFailure> f = CheckWith(HookFactory([] {
    return [](const VcpuRegs&, Vcpu& v, Outcome& o) {
      if (o.kind == Outcome::Kind::kGpInjected && !v.slots.empty()) v.slots[0] ^= 1;
    };
  }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kFaultAtomicity);
}

TEST_F(OraclesTest, ReadAfterWriteCatchesAPlainStorageMsrReadingBackWrong) {
  Add(Access::kWrite, kPat, 0x0007040600070406ull);
  absl::optional<OracleFailure> f = CheckWith(HookFactory([] {
    return [](const VcpuRegs&, Vcpu& v, Outcome& o) {
      if (o.access == Access::kRead && o.index == kPat) {
        o.value ^= 1;
        v.regs.reg(Gpr::kRax) ^= 1;
      }
    };
  }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kReadAfterWrite);
}

TEST_F(OraclesTest, PlainStorageTargetsIncludePatButNotTheTsc) {
  auto has = [](const std::vector<MsrTarget>& ts, uint32_t i) {
    for (const MsrTarget& t : ts) {
      if (i >= t.first && i <= t.last) return true;
    }
    return false;
  };
  const std::vector<MsrTarget> plain = PlainStorageTargets(MsrTable());
  EXPECT_TRUE(has(plain, kPat));
  EXPECT_FALSE(has(plain, 0x10));   // IA32_TIME_STAMP_COUNTER: volatile.
  EXPECT_FALSE(has(plain, 0x174));  // IA32_SYSENTER_CS: VMX keeps bits 31:0 only.
  EXPECT_FALSE(has(plain, 0x175));  // IA32_SYSENTER_ESP: canonicalized.
}

TEST_F(OraclesTest, AnUnusableTraceIsAnErrorNotAFinding) {
  trace_.header.handler_set = "no-such-handler-set";
  OracleRunner runner(ReferenceEngineFactory(), MakeOracleOptions());
  EXPECT_FALSE(runner.Check(trace_).ok());
}

TEST_F(OraclesTest, FailureReportNamesTheOracleTheEventAndTheReproducer) {
  Add(Access::kRead, kPat);
  OracleFailure f{Oracle::kRipProgress, 0, "RIP did not move"};
  const std::string report = FormatFailure(f, trace_, "./exit_sequence_fuzzer");
  EXPECT_THAT(report, ::testing::HasSubstr("rip-progress"));
  EXPECT_THAT(report, ::testing::HasSubstr("index 0x277"));
  EXPECT_THAT(report, ::testing::HasSubstr("RIP did not move"));
  EXPECT_THAT(report, ::testing::HasSubstr("./exit_sequence_fuzzer <input>"));
  EXPECT_THAT(report, ::testing::HasSubstr("msrtrace replay --repeat=2"));
}

// --- The semantic oracles ------------------------------------------------------------------------

constexpr uint32_t kMtrrDefType = 0x2ff;  // Reserved mask ~0xcff.

TEST_F(OraclesTest, RecordedOutcomeCatchesAValueOtherThanTheRecordedOne) {
  Add(Access::kRead, kPat);
  ExitEvent& e = trace_.events.back();
  e.kind = RecordedKind::kRetired;
  e.rax_out = 0x1234;  // The reference reads PAT's reset value.
  e.rdx_out = 0;
  e.known |= kFieldRaxRdxOut;
  absl::optional<OracleFailure> f = CheckWith(ReferenceEngineFactory());
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kRecordedOutcome);
  EXPECT_EQ(f->event, 0u);
}

TEST_F(OraclesTest, RecordedOutcomeIsJudgedAfterTheArchitecturalRules) {
  Add(Access::kRead, kPat);
  ExitEvent& e = trace_.events.back();
  e.kind = RecordedKind::kRetired;
  e.rip_out = e.rip + e.exit.instruction_length;
  e.known |= kFieldRipOut;
  absl::optional<OracleFailure> f = CheckWith(HookFactory(
      [] { return [](const VcpuRegs& before, Vcpu& v, Outcome&) { v.regs.rip = before.rip; }; }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kRipProgress);
}

// Turns the #GP of a write to `index` into a retired write.
Hook AcceptWritesTo(uint32_t index) {
  return [index](const VcpuRegs& before, Vcpu& v, Outcome& o) {
    if (o.index != index || o.access != Access::kWrite || o.kind != Outcome::Kind::kGpInjected) {
      return;
    }
    o.kind = Outcome::Kind::kRetired;
    v.regs.pending = PendingException{};
    v.regs.rip = before.rip + 2;
  };
}

TEST_F(OraclesTest, TableConformanceCatchesAnAcceptedReservedBit) {
  Add(Access::kWrite, kMtrrDefType, 1ull << 12);
  absl::optional<OracleFailure> f =
      CheckWith(HookFactory([] { return AcceptWritesTo(kMtrrDefType); }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kTableConformance);
  EXPECT_THAT(f->detail, ::testing::HasSubstr("reserved"));
}

TEST_F(OraclesTest, TableConformanceCatchesAnAcceptedNonCanonicalValue) {
  Add(Access::kWrite, 0xc0000100, 1ull << 60);  // MSR_FS_BASE.
  absl::optional<OracleFailure> f =
      CheckWith(HookFactory([] { return AcceptWritesTo(0xc0000100); }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kTableConformance);
  EXPECT_THAT(f->detail, ::testing::HasSubstr("canonical"));
}

TEST_F(OraclesTest, TableConformanceCatchesAWriteAfterTheLockBit) {
  constexpr uint32_t kFeatureControl = 0x3a;
  Add(Access::kWrite, kFeatureControl, 1);  // Lock.
  Add(Access::kWrite, kFeatureControl, 1);
  absl::optional<OracleFailure> f =
      CheckWith(HookFactory([] { return AcceptWritesTo(kFeatureControl); }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kTableConformance);
  EXPECT_EQ(f->event, 1u);
  EXPECT_THAT(f->detail, ::testing::HasSubstr("locked"));
}

TEST_F(OraclesTest, TableConformanceCatchesAWrongResetValue) {
  Add(Access::kRead, kPat);
  absl::optional<OracleFailure> f = CheckWith(HookFactory([] {
    return [](const VcpuRegs&, Vcpu& v, Outcome& o) {
      if (o.index != kPat) return;
      o.value ^= 1;
      v.regs.reg(Gpr::kRax) = o.value & 0xffffffff;
    };
  }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kTableConformance);
  EXPECT_THAT(f->detail, ::testing::HasSubstr("reset"));
}

TEST_F(OraclesTest, TableConformanceHoldsForTheReferenceOnEveryRowRead) {
  for (const MsrRow& row : MsrTable()) Add(Access::kRead, row.index);
  EXPECT_FALSE(CheckWith(ReferenceEngineFactory()).has_value());
}

TEST_F(OraclesTest, IndexRoutingCatchesAnOutcomeNamingAnotherIndex) {
  Add(Access::kRead, kPat);
  absl::optional<OracleFailure> f = CheckWith(
      HookFactory([] { return [](const VcpuRegs&, Vcpu&, Outcome& o) { o.index = kPat + 1; }; }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kIndexRouting);
}

TEST_F(OraclesTest, VcpuIsolationCatchesAWriteAnotherVcpuSees) {
  absl::StatusOr<TraceModel> t = ResetTrace("reference", 2);
  ASSERT_TRUE(t.ok()) << t.status();
  trace_ = *t;
  Add(Access::kWrite, kPat, 0x0606060606060606ull);
  EngineFactory broadcast = [](Machine& machine) -> std::unique_ptr<ExitEngine> {
    Machine* m = &machine;
    return std::make_unique<HookEngine>(
        machine.controller.get(), [m](const VcpuRegs&, Vcpu& v, Outcome& o) {
          if (o.access != Access::kWrite || o.kind != Outcome::Kind::kRetired) return;
          for (Vcpu& other : m->vcpus) {
            if (other.id != v.id) {
              (void)m->controller->HostWrite(o.index, o.value, other, m->memory);
            }
          }
        });
  };
  absl::optional<OracleFailure> f = CheckWith(broadcast);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kVcpuIsolation);
}

TEST_F(OraclesTest, TableConformanceCatchesAWriteThatChangesAReadOnlyBit) {
  constexpr uint32_t kMiscEnable = 0x1a0;    // Bits 11 and 12 read-only (reset: both set).
  Add(Access::kWrite, kMiscEnable, 0x1000);  // Clears bit 11.
  absl::optional<OracleFailure> f =
      CheckWith(HookFactory([] { return AcceptWritesTo(kMiscEnable); }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kTableConformance);
  EXPECT_THAT(f->detail, ::testing::HasSubstr("read-only bits 0x800"));
}

TEST_F(OraclesTest, TableConformanceCatchesAKeptBitThatAWriteChanged) {
  constexpr uint32_t kEfer = 0xc0000080;
  constexpr uint64_t kLma = 1ull << 10;  // Kept: the written LMA is dropped.
  Add(Access::kWrite, kEfer);
  ExitEvent& e = trace_.events.back();
  ASSERT_NE(e.efer & kLma, 0u) << "events run in 64-bit mode";
  e.rax = e.efer & ~kLma;  // The current EFER with LMA cleared.
  absl::optional<OracleFailure> f = CheckWith(HookFactory([] {
    return [](const VcpuRegs&, Vcpu& v, Outcome& o) {
      if (o.index == kEfer && o.access == Access::kWrite && o.kind == Outcome::Kind::kRetired) {
        v.regs.efer = o.value;  // BUG: stores the written LMA.
      }
    };
  }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kTableConformance) << f->detail;
  EXPECT_THAT(f->detail, ::testing::HasSubstr("keeps"));
}

TEST_F(OraclesTest, IndexRoutingCatchesAHandlerGivenAnotherIndexThanEcx) {
  constexpr uint32_t kFix4kC0000 = 0x268;  // One handler serves 0x268 and 0x269.
  Add(Access::kRead, kFix4kC0000);
  EngineFactory xor1 = [](Machine& machine) -> std::unique_ptr<ExitEngine> {
    class Xor1 : public ExitEngine {
     public:
      explicit Xor1(Controller* c) : c_(c) {}
      absl::StatusOr<Outcome> Handle(const Exit& exit, Vcpu& vcpu, GuestMemory& memory) override {
        const uint64_t rcx = vcpu.regs.reg(Gpr::kRcx);
        vcpu.regs.reg(Gpr::kRcx) = rcx ^ 1;
        absl::StatusOr<Outcome> out = c_->Handle(exit, vcpu, memory);
        vcpu.regs.reg(Gpr::kRcx) = rcx;
        if (out.ok()) out->index = static_cast<uint32_t>(rcx);  // The outcome names ECX.
        return out;
      }

     private:
      Controller* c_;
    };
    return std::make_unique<Xor1>(machine.controller.get());
  };
  absl::optional<OracleFailure> f = CheckWith(xor1);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kIndexRouting);
  EXPECT_THAT(f->detail, ::testing::HasSubstr("handed index 0x269"));
}

TEST_F(OraclesTest, VcpuIsolationCatchesARelatedMsrAnotherVcpuSees) {
  constexpr uint32_t kTsc = 0x10, kTscAdjust = 0x3b;
  absl::StatusOr<TraceModel> t = ResetTrace("reference", 2);
  ASSERT_TRUE(t.ok()) << t.status();
  trace_ = *t;
  Add(Access::kWrite, kTsc, 0x123456789ull);
  EngineFactory shared_adjust = [](Machine& machine) -> std::unique_ptr<ExitEngine> {
    Machine* m = &machine;
    return std::make_unique<HookEngine>(
        machine.controller.get(), [m](const VcpuRegs&, Vcpu& v, Outcome& o) {
          if (o.index != kTsc || o.access != Access::kWrite) return;
          for (Vcpu& other : m->vcpus) {
            if (other.id != v.id) {
              (void)m->controller->HostWrite(kTscAdjust, 0x77, other, m->memory);
            }
          }
        });
  };
  absl::optional<OracleFailure> f = CheckWith(shared_adjust);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kVcpuIsolation);
  EXPECT_THAT(f->detail, ::testing::HasSubstr("related"));
}

TEST_F(OraclesTest, TheReferenceRowsDeclareKvmsRelatedMsrs) {
  absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(trace_.header);
  ASSERT_TRUE(m.ok()) << m.status();
  auto related = [&](uint32_t index, uint32_t other) {
    for (const DeclaredRow& r : (*m)->controller->declared_rows()) {
      if (index < r.first || index > r.last) continue;
      for (int i = 0; i < r.num_related; ++i) {
        if (other >= r.related[i].first && other <= r.related[i].last) return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(related(0x10, 0x3b));    // TSC -> TSC_ADJUST.
  EXPECT_TRUE(related(0x10, 0x6e0));   // TSC -> TSC_DEADLINE.
  EXPECT_TRUE(related(0x1b, 0x802));   // APIC_BASE -> x2APIC ID.
  EXPECT_TRUE(related(0x2ff, 0x268));  // MTRR_DEF_TYPE -> fixed ranges.
  EXPECT_TRUE(related(0x2ff, 0x201));  // MTRR_DEF_TYPE -> variable ranges.
  EXPECT_TRUE(related(0x38f, 0x186));  // PERF_GLOBAL_CTRL -> PERFEVTSEL0.
  EXPECT_FALSE(related(0x277, 0x10));  // PAT has none.
}

TEST_F(OraclesTest, TheReferenceSetDeclaresEveryTableRowOfItsProfile) {
  for (const CpuProfile& profile : BuiltinProfiles()) {
    TraceHeader h = trace_.header;
    h.cpu_profile = profile.name;
    absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(h);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ((*m)->controller->declared_rows().size(), MsrTable(profile).size()) << profile.name;
  }
}

}  // namespace
}  // namespace fuzz
}  // namespace msrtrace
