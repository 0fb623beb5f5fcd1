#include "fuzz/oracles.h"

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "fuzz/fuzz_setup.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "handlers/msr_table.h"
#include "harness/status_macros.h"

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

// `make_hook` is called once per engine instance (so hooks can keep per-instance state).
EngineFactory HookFactory(const std::function<Hook()>& make_hook) {
  return [make_hook](const TraceHeader& header) -> absl::StatusOr<EngineInstance> {
    EngineInstance inst;
    ASSIGN_OR_RETURN(inst.machine, BuildMachine(header));
    inst.engine = std::make_unique<HookEngine>(inst.machine->controller.get(), make_hook());
    return inst;
  };
}

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
  absl::optional<OracleFailure> CheckWith(EngineFactory factory) {
    OracleRunner runner(std::move(factory), MakeOracleOptions());
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
  }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kDeterminism);
}

TEST_F(OraclesTest, SnapshotResumeCatchesStateOutsideTheSnapshot) {
  for (int i = 0; i < 4; ++i) Add(Access::kRead, kPat);
  absl::optional<OracleFailure> f = CheckWith(HookFactory([] {
    auto exits = std::make_shared<uint64_t>(0);  // Per engine, but not in any snapshot.
    return [exits](const VcpuRegs&, Vcpu& v, Outcome& o) {
      o.value = ++*exits;
      v.regs.reg(Gpr::kRax) = o.value;
      v.regs.reg(Gpr::kRdx) = 0;
    };
  }));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->oracle, Oracle::kSnapshotResume);
  EXPECT_EQ(f->event, 2u);
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

}  // namespace
}  // namespace fuzz
}  // namespace msrtrace
