// Tests of the differential engine (triage/differential.h): the allowlist format and its errors,
// and each field the runner compares, on a handler set with deliberate deviations from the
// reference registered here.
#include "triage/differential.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "handlers/msr_table.h"
#include "harness/core/handler_registry.h"
#include "harness/core/msr_handler.h"
#include "harness/core/status_macros.h"

namespace msrtrace {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kPat = 0x277;
constexpr uint32_t kStar = 0xc0000081;
constexpr uint32_t kTsc = 0x10;
constexpr uint32_t kOwnMsr = 0x4d534200;  // Only in the deviant set.

// Delegates to the reference handler it replaced.
class Wrap : public MsrHandler {
 public:
  explicit Wrap(MsrHandler* inner) : inner_(inner) {}
  absl::StatusOr<MsrResult> Read(uint32_t i, ExitContext& c) override { return inner_->Read(i, c); }
  absl::StatusOr<MsrResult> Write(uint32_t i, uint64_t v, ExitContext& c) override {
    return inner_->Write(i, v, c);
  }
  absl::string_view MsrName(uint32_t i) const override { return inner_->MsrName(i); }

 protected:
  MsrHandler* inner_;
};

// IA32_PAT: writes the reference rejects retire (dropped).
class PatAcceptsAll : public Wrap {
 public:
  using Wrap::Wrap;
  absl::StatusOr<MsrResult> Write(uint32_t i, uint64_t v, ExitContext& c) override {
    absl::StatusOr<MsrResult> r = inner_->Write(i, v, c);
    if (r.ok() && r->kind == MsrResult::Kind::kGp) return MsrResult::Ok();
    return r;
  }
};

// MSR_STAR: one value for the whole VM.
class SharedStar : public Wrap {
 public:
  SharedStar(MsrHandler* inner, SlotId slot) : Wrap(inner), slot_(slot) {}
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext& c) override {
    return MsrResult::Ok(c.vm_slot(slot_));
  }
  absl::StatusOr<MsrResult> Write(uint32_t i, uint64_t v, ExitContext& c) override {
    absl::StatusOr<MsrResult> r = inner_->Write(i, v, c);
    if (r.ok() && r->ok()) c.vm_slot(slot_) = v;
    return r;
  }

 private:
  SlotId slot_;
};

// IA32_TIME_STAMP_COUNTER: a guest write leaves IA32_TSC_ADJUST alone.
class TscKeepsAdjust : public Wrap {
 public:
  TscKeepsAdjust(MsrHandler* inner, SlotId adjust) : Wrap(inner), adjust_(adjust) {}
  absl::StatusOr<MsrResult> Write(uint32_t i, uint64_t v, ExitContext& c) override {
    const uint64_t before = c.slot(adjust_);
    absl::StatusOr<MsrResult> r = inner_->Write(i, v, c);
    if (r.ok() && r->ok()) c.slot(adjust_) = before;
    return r;
  }

 private:
  SlotId adjust_;
};

// A storage MSR the reference does not have (its slot is in snapshots of the deviant set).
class OwnMsr : public MsrHandler {
 public:
  explicit OwnMsr(SlotId slot) : slot_(slot) {}
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext& c) override {
    return MsrResult::Ok(c.slot(slot_));
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t v, ExitContext& c) override {
    c.slot(slot_) = v;
    return MsrResult::Ok();
  }

 private:
  SlotId slot_;
};

template <typename T, typename... Args>
void Override(Controller& c, uint32_t index, Args... args) {
  MsrHandler* inner = c.Find(index);
  ASSERT_NE(inner, nullptr);
  ASSERT_EQ(c.Replace(index, c.Adopt(std::make_unique<T>(inner, args...))), inner);
}

absl::Status InstallDeviant(Controller& c, const CpuProfile& profile) {
  RETURN_IF_ERROR(InstallReferenceHandlers(c, profile));
  Override<PatAcceptsAll>(c, kPat);
  Override<SharedStar>(c, kStar, c.layout().AddVmSlot("TEST_SHARED_STAR"));
  Override<TscKeepsAdjust>(c, kTsc,
                           static_cast<SlotId>(c.layout().FindVcpuSlot("IA32_TSC_ADJUST")));
  c.Insert(kOwnMsr, std::make_unique<OwnMsr>(c.layout().AddVcpuSlot("TEST_OWN")));
  return absl::OkStatus();
}

const bool kRegistered = RegisterHandlerSet(
    {"difftest-deviant", "TEST ONLY: reference with deliberate deviations", &InstallDeviant});

TraceHeader Header(uint32_t vcpus = 2) {
  (void)kRegistered;
  TraceHeader h;
  h.cpu_profile = "intel-icx";
  h.handler_set = "difftest-deviant";
  h.vcpu_count = vcpus;
  h.unknown_msr_policy = UnknownMsrPolicy::kInjectGp;
  return h;
}

ExitEvent Event(uint64_t seq, uint32_t vcpu, Access access, uint32_t index, uint64_t value = 0) {
  ExitEvent e;
  e.seq = seq;
  e.vcpu_id = vcpu;
  e.exit = access == Access::kWrite ? Exit::Wrmsr(2) : Exit::Rdmsr(2);
  e.exit.host_tsc = 1000 * seq;
  e.rcx = index;
  e.rax = access == Access::kWrite ? (value & 0xffffffffu) : 0;
  e.rdx = access == Access::kWrite ? (value >> 32) : 0;
  e.rip = 0x1000;
  return e;
}

TEST(AllowlistTest, ParsesRangesFieldsCommentsAndReasons) {
  absl::StatusOr<Allowlist> list = Allowlist::Parse(
      "# comment\n\n0x277 outcome PAT types: ours accepts them  \n"
      "  0x200-0x20f any variable MTRRs # are ours\n16 state decimal index\n",
      "t.allow");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->entries().size(), 3u);
  const AllowEntry& pat = list->entries()[0];
  EXPECT_EQ(pat.first, 0x277u);
  EXPECT_EQ(pat.field, DiffField::kOutcome);
  EXPECT_EQ(pat.reason, "PAT types: ours accepts them");
  EXPECT_EQ(pat.line, 3);
  EXPECT_TRUE(list->entries()[1].any_field);
  EXPECT_EQ(list->entries()[1].last, 0x20fu);
  EXPECT_EQ(list->entries()[1].reason, "variable MTRRs # are ours");
  EXPECT_EQ(list->entries()[2].first, 16u);
  EXPECT_NE(list->Match(0x205, DiffField::kValue), nullptr);
  EXPECT_EQ(list->Match(0x277, DiffField::kValue), nullptr);
  EXPECT_NE(list->Match(0x277, DiffField::kOutcome), nullptr);
  EXPECT_EQ(list->entries()[0].matched, 1u);
  EXPECT_EQ(list->entries()[1].matched, 1u);
}

TEST(AllowlistTest, BadEntriesAreNamedByFileAndLine) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"0x277 outcome ok\nzzz value why\n", "t.allow:2: 'zzz' is not an MSR index"},
      {"0x1ffffffff value why\n", "t.allow:1: '0x1ffffffff' is not an MSR index"},
      {"\n0x277 colour why\n", "t.allow:2: unknown field 'colour'"},
      {"0x277 value\n", "t.allow:1: entry without a reason"},
      {"0x277\n", "t.allow:1: expected '<index>[-<last>] <field> <reason>'"},
      {"0x20f-0x200 value why\n", "t.allow:1: range 0x20f-0x200 ends before it starts"},
      {"0x277 value a\n0x277 value b\n", "t.allow:2: duplicate of the entry on line 1"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Allowlist> list = Allowlist::Parse(c.text, "t.allow");
    ASSERT_FALSE(list.ok()) << c.text;
    EXPECT_THAT(std::string(list.status().message()), HasSubstr(c.message)) << c.text;
  }
  EXPECT_FALSE(Allowlist::Parse(std::string(Allowlist::kMaxBytes + 1, '#'), "big").ok());
  EXPECT_FALSE(Allowlist::Load("/nonexistent/dir/x.allow").ok());
}

TEST(DifferentialTest, AgreementOnIndicesWithoutDeviation) {
  DifferentialRunner runner(DiffOptions{});
  ASSERT_TRUE(runner.Begin(Header(), Snapshot()).ok());
  uint64_t seq = 1;
  for (uint32_t index : {0x1bu, 0xc0000080u, 0x3bu, 0xc0000102u}) {
    ASSERT_EQ(*runner.Step(Event(seq++, 0, Access::kRead, index)), 0u);
  }
  ASSERT_EQ(*runner.Step(Event(seq++, 0, Access::kWrite, 0xc0000102u, 0x1234)), 0u);
  ASSERT_EQ(*runner.Step(Event(seq++, 1, Access::kRead, 0xc0000102u)), 0u);
  // An index only the deviant set has is not compared.
  ASSERT_EQ(*runner.Step(Event(seq++, 0, Access::kWrite, kOwnMsr, 7)), 0u);
  EXPECT_EQ(runner.result().findings, 0u);
  EXPECT_EQ(runner.result().events, 7u);
  EXPECT_EQ(runner.result().compared, 6u);
}

TEST(DifferentialTest, OutcomeDifferenceNamesEventIndexBothOutcomesAndTheKvmSource) {
  DifferentialRunner runner(DiffOptions{});
  ASSERT_TRUE(runner.Begin(Header(), Snapshot()).ok());
  ASSERT_EQ(*runner.Step(Event(1, 0, Access::kRead, kPat)), 0u);
  ASSERT_EQ(*runner.Step(Event(2, 0, Access::kWrite, kPat, 0x2)), 1u);  // Type 2 is reserved.
  runner.Finish();
  const DiffResult& r = runner.result();
  ASSERT_EQ(r.details.size(), 1u);
  const DiffFinding& f = r.details[0];
  EXPECT_EQ(f.event, 1u);
  EXPECT_EQ(f.seq, 2u);
  EXPECT_EQ(f.index, kPat);
  EXPECT_EQ(f.field, DiffField::kOutcome);
  EXPECT_EQ(f.team, "retired");
  EXPECT_EQ(f.reference, "#GP(0)");
  EXPECT_FALSE(f.citation.empty());
  const std::string text = FormatDiffFinding(f, r.team_set, r.reference_set);
  EXPECT_THAT(text, HasSubstr("event 1 (seq 2) vCPU 0 wrmsr IA32_PAT (0x277): outcome: "
                              "difftest-deviant retired, reference #GP(0)"));
  EXPECT_THAT(text, HasSubstr("kvm: "));
  ASSERT_EQ(r.per_index.size(), 1u);
  EXPECT_EQ(r.per_index[0].fields[static_cast<int>(DiffField::kOutcome)], 1u);
}

TEST(DifferentialTest, AllowlistCoversAndCountsInsteadOfReporting) {
  absl::StatusOr<Allowlist> list =
      Allowlist::Parse("0x277 outcome ours accepts every type\n0x10 state never\n", "t");
  ASSERT_TRUE(list.ok());
  DifferentialRunner runner(DiffOptions{}, &*list);
  ASSERT_TRUE(runner.Begin(Header(), Snapshot()).ok());
  EXPECT_EQ(*runner.Step(Event(1, 0, Access::kWrite, kPat, 0x2)), 0u);
  EXPECT_EQ(*runner.Step(Event(2, 0, Access::kWrite, kPat, 0x3)), 0u);
  EXPECT_EQ(runner.result().findings, 0u);
  EXPECT_EQ(runner.result().allowed, 2u);
  EXPECT_EQ(list->entries()[0].matched, 2u);
  const std::string summary = FormatAllowlistSummary(*list);
  EXPECT_THAT(summary, HasSubstr("line 1: 0x277 outcome: matched 2 times"));
  EXPECT_THAT(summary, HasSubstr("line 2: 0x10 state: never matched"));
}

TEST(DifferentialTest, WriteSeenByAnotherVcpuIsAStateDifference) {
  DifferentialRunner runner(DiffOptions{});
  ASSERT_TRUE(runner.Begin(Header(2), Snapshot()).ok());
  ASSERT_EQ(*runner.Step(Event(1, 0, Access::kWrite, kStar, 0x0023001000000000)), 1u);
  const DiffFinding& f = runner.result().details.at(0);
  EXPECT_EQ(f.field, DiffField::kState);
  EXPECT_THAT(f.detail, HasSubstr("on vCPU 1 (another vCPU)"));
  // A later read on the other vCPU differs in value as well.
  ASSERT_EQ(*runner.Step(Event(2, 1, Access::kRead, kStar)), 1u);
  EXPECT_EQ(runner.result().details.at(1).field, DiffField::kValue);
}

TEST(DifferentialTest, MissingRelatedUpdateIsSeenThroughTheFamilysRows) {
  DifferentialRunner runner(DiffOptions{});
  ASSERT_TRUE(runner.Begin(Header(1), Snapshot()).ok());
  ASSERT_EQ(*runner.Step(Event(1, 0, Access::kWrite, kTsc, 1u << 20)), 1u);
  const DiffFinding& f = runner.result().details.at(0);
  EXPECT_EQ(f.field, DiffField::kState);
  EXPECT_EQ(f.index, kTsc);
  EXPECT_THAT(f.detail, HasSubstr("IA32_TSC_ADJUST (0x3b)"));
  EXPECT_THAT(f.detail, HasSubstr("(a related MSR)"));
}

TEST(DifferentialTest, SnapshotWithTheTeamsOwnSlotsRestoresIntoBoth) {
  // A snapshot of the deviant set with its own slot set, and PAT changed from reset.
  DifferentialRunner runner(DiffOptions{});
  ASSERT_TRUE(runner.Begin(Header(1), Snapshot()).ok());
  absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(Header(1));
  ASSERT_TRUE(m.ok());
  Machine& machine = **m;
  ASSERT_TRUE(machine.controller->HostWrite(kOwnMsr, 5, machine.vcpus[0], machine.memory).ok());
  ASSERT_TRUE(
      machine.controller->HostWrite(kPat, 0x0606060606060606, machine.vcpus[0], machine.memory)
          .ok());
  const Snapshot snap = CaptureSnapshot(*machine.controller, machine.vcpus, machine.memory);
  ASSERT_TRUE(runner.Begin(Header(1), snap).ok());
  // Both machines read the snapshot's PAT.
  ASSERT_EQ(*runner.Step(Event(1, 0, Access::kRead, kPat)), 0u);
  EXPECT_EQ(runner.result().compared, 1u);
}

TEST(DifferentialTest, TheReferenceAgainstItselfIsRefused) {
  DifferentialRunner runner(DiffOptions{});
  TraceHeader h = Header();
  h.handler_set = "reference";
  EXPECT_FALSE(runner.Begin(h, Snapshot()).ok());
  EXPECT_FALSE(runner.Step(Event(1, 0, Access::kRead, kPat)).ok());
}

TEST(ControllerReplaceTest, ReplacesOnlyTakenIndices) {
  Controller c;
  MsrHandler* a = c.Adopt(std::make_unique<OwnMsr>(c.layout().AddVcpuSlot("A")));
  MsrHandler* b = c.Adopt(std::make_unique<OwnMsr>(c.layout().AddVcpuSlot("B")));
  EXPECT_EQ(c.Replace(0x10, b), nullptr);  // Free index: nothing to replace.
  EXPECT_EQ(c.Find(0x10), nullptr);
  ASSERT_TRUE(c.Insert(0x10, a));
  ASSERT_TRUE(c.Insert(0x4d534300, a));  // Outside the dense windows.
  EXPECT_EQ(c.Replace(0x10, b), a);
  EXPECT_EQ(c.Find(0x10), b);
  EXPECT_EQ(c.Replace(0x4d534300, b), a);
  EXPECT_EQ(c.Find(0x4d534300), b);
  EXPECT_EQ(c.Replace(0x10, nullptr), nullptr);
  EXPECT_EQ(c.Find(0x10), b);
}

}  // namespace
}  // namespace msrtrace
