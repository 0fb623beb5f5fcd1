#include "harness/replay/machine.h"

#include <dirent.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "harness/core/handler_registry.h"
#include "harness/replay/exit_check.h"
#include "harness/trace/trace_file.h"

namespace msrtrace {
namespace {

// Counts divergences; keeps none.
class CountingSink : public DivergenceSink {
 public:
  Divergence* Add(DivergenceKind) override {
    ++count;
    return nullptr;
  }
  uint64_t count = 0;
};

struct RunOutcome {
  std::vector<RecordedKind> kinds;
  std::vector<uint64_t> values;
  uint64_t digest = 0;
  uint64_t divergences = 0;
};

RunOutcome RunOn(Machine& m, const Snapshot& snapshot, const std::vector<ExitEvent>& events) {
  RunOutcome out;
  absl::Status st = m.Restore(snapshot);
  EXPECT_TRUE(st.ok()) << st;
  ControllerEngine engine(m.controller.get());
  CountingSink sink;
  ExitChecker checker(&m, &engine, &sink);
  checker.BeginRun();
  for (const ExitEvent& e : events) {
    absl::Status s = checker.Run(e);
    EXPECT_TRUE(s.ok()) << s;
    out.kinds.push_back(checker.observed());
    out.values.push_back(checker.result().ok() ? checker.result()->value : 0);
  }
  out.digest = m.Digest();
  out.divergences = sink.count;
  return out;
}

struct LoadedTrace {
  std::string name;
  TraceHeader header;
  Snapshot snapshot;
  std::vector<ExitEvent> events;
};

std::vector<LoadedTrace> GoldenCorpus() {
  std::vector<LoadedTrace> out;
  const std::string dir = MSRTRACE_GOLDEN_DIR;
  DIR* d = opendir(dir.c_str());
  EXPECT_NE(d, nullptr) << dir;
  if (d == nullptr) return out;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n.size() > 6 && n.substr(n.size() - 6) == ".trace") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) {
    absl::StatusOr<std::unique_ptr<TraceReader>> r = TraceReader::Open(absl::StrCat(dir, "/", n));
    EXPECT_TRUE(r.ok()) << n << ": " << r.status();
    if (!r.ok()) continue;
    LoadedTrace t;
    t.name = n;
    t.header = (*r)->header();
    t.snapshot = (*r)->snapshot();
    ExitEvent ev;
    while (true) {
      absl::StatusOr<bool> more = (*r)->Next(&ev);
      if (!more.ok() || !*more) break;
      t.events.push_back(ev);
    }
    out.push_back(std::move(t));
  }
  return out;
}

TEST(MachineTest, AResetMachineEqualsAFreshOneOverTheGoldenCorpus) {
  const std::vector<LoadedTrace> corpus = GoldenCorpus();
  ASSERT_GE(corpus.size(), 10u);
  MachineCache cache;
  // Twice over the corpus: every trace runs on a machine another trace (or itself) dirtied.
  for (int round = 0; round < 2; ++round) {
    for (const LoadedTrace& t : corpus) {
      absl::StatusOr<std::unique_ptr<Machine>> fresh = BuildMachine(t.header);
      ASSERT_TRUE(fresh.ok()) << t.name << ": " << fresh.status();
      const RunOutcome want = RunOn(**fresh, t.snapshot, t.events);
      absl::StatusOr<Machine*> reused = cache.Get(t.header);
      ASSERT_TRUE(reused.ok()) << t.name << ": " << reused.status();
      (*reused)->set_reset_check_interval(1);
      const RunOutcome got = RunOn(**reused, t.snapshot, t.events);
      EXPECT_EQ(got.kinds, want.kinds) << t.name;
      EXPECT_EQ(got.values, want.values) << t.name;
      EXPECT_EQ(got.digest, want.digest) << t.name;
      EXPECT_EQ(got.divergences, want.divergences) << t.name;
    }
  }
  EXPECT_LT(cache.size(), corpus.size());  // Traces share machines.
}

TEST(MachineTest, ResetRestoresTheResetDigestAndTouchesOnlyDirtyPages) {
  TraceHeader h;
  h.cpu_profile = "intel-icx";
  h.handler_set = "reference";
  absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(h);
  ASSERT_TRUE(m.ok()) << m.status();
  Machine& machine = **m;
  const uint64_t reset = machine.Digest();
  const uint8_t byte = 0x5a;
  ASSERT_TRUE(machine.memory.Write(0x1000, &byte, 1));
  machine.vcpus[0].regs.rip = 0x1234;
  machine.controller->vm_slots().assign(machine.controller->vm_slots().size(), 7);
  ASSERT_EQ(machine.memory.dirty_pages().size(), 1u);
  EXPECT_NE(machine.Digest(), reset);
  ASSERT_TRUE(machine.Reset().ok());
  EXPECT_EQ(machine.Digest(), reset);
  EXPECT_TRUE(machine.memory.dirty_pages().empty());
}

TEST(MachineTest, AnEmptySnapshotMeansTheResetState) {
  TraceHeader h;
  h.cpu_profile = "intel-icx";
  h.handler_set = "reference+fifo";
  h.vcpu_count = 2;
  absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(h);
  ASSERT_TRUE(m.ok()) << m.status();
  const uint64_t reset = (*m)->Digest();
  (*m)->vcpus[1].regs.rip = 0x42;
  ASSERT_TRUE((*m)->Restore(Snapshot()).ok());
  EXPECT_EQ((*m)->Digest(), reset);
  EXPECT_EQ((*m)->vcpus.size(), 2u);
}

// --- Handlers that break the rule (harness/replay/machine.h) -------------------------------------

constexpr uint32_t kTestMsr = 0x4d534300;

// Saves its counter but does not restore it: the reset check names it.
class ForgetfulHandler : public MsrHandler {
 public:
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext&) override {
    return MsrResult::Ok(++count_);
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t, ExitContext&) override {
    return MsrResult::Gp();
  }
  absl::string_view MsrName(uint32_t) const override { return "TEST_FORGETFUL"; }
  void SaveState(std::string* out) const override { *out = std::to_string(count_); }
  absl::Status RestoreState(absl::string_view) override { return absl::OkStatus(); }  // BUG.

 private:
  uint64_t count_ = 0;
};

// Keeps its counter outside SaveState altogether: the reset-vs-fresh comparison finds it.
class HiddenStateHandler : public MsrHandler {
 public:
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext&) override {
    return MsrResult::Ok(++count_);
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t, ExitContext&) override {
    return MsrResult::Gp();
  }

 private:
  uint64_t count_ = 0;  // BUG: not in SaveState.
};

absl::Status InstallForgetful(Controller& c, const CpuProfile&) {
  c.Insert(kTestMsr, std::make_unique<ForgetfulHandler>());
  return absl::OkStatus();
}
absl::Status InstallHidden(Controller& c, const CpuProfile&) {
  c.Insert(kTestMsr, std::make_unique<HiddenStateHandler>());
  return absl::OkStatus();
}
const bool kRegistered = RegisterHandlerSet({"test-forgetful", "TEST ONLY", &InstallForgetful}) &&
                         RegisterHandlerSet({"test-hidden-state", "TEST ONLY", &InstallHidden});

ExitEvent ReadOf(uint32_t index) {
  ExitEvent e;
  e.exit = Exit::Rdmsr(2);
  e.rcx = index;
  e.known = kFieldRaxRdxIn | kFieldRip | kFieldInstrLength;
  e.rip = 0x1000;
  return e;
}

TEST(MachineTest, AHandlerWhoseStateDoesNotComeBackFailsTheResetLoudly) {
  ASSERT_TRUE(kRegistered);
  TraceHeader h;
  h.cpu_profile = "intel-icx";
  h.handler_set = "test-forgetful";
  absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(h);
  ASSERT_TRUE(m.ok()) << m.status();
  (*m)->set_reset_check_interval(1);
  RunOn(**m, Snapshot(), {ReadOf(kTestMsr)});
  absl::Status st = (*m)->Reset();
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_NE(st.message().find("TEST_FORGETFUL"), std::string::npos) << st;
  EXPECT_NE(st.message().find("SaveState/RestoreState"), std::string::npos) << st;
}

TEST(MachineTest, AHandlerWithHiddenStateMakesAResetMachineDifferFromAFreshOne) {
  ASSERT_TRUE(kRegistered);
  TraceHeader h;
  h.cpu_profile = "intel-icx";
  h.handler_set = "test-hidden-state";
  MachineCache cache;
  const std::vector<ExitEvent> events = {ReadOf(kTestMsr)};
  absl::StatusOr<Machine*> first = cache.Get(h);
  ASSERT_TRUE(first.ok());
  const RunOutcome a = RunOn(**first, Snapshot(), events);
  absl::StatusOr<Machine*> again = cache.Get(h);
  ASSERT_TRUE(again.ok());
  const RunOutcome b = RunOn(**again, Snapshot(), events);
  EXPECT_NE(a.values, b.values);  // What the determinism oracle and the corpus test catch.
}

}  // namespace
}  // namespace msrtrace
