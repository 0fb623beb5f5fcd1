#include "harness/replay/replay.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/replay/record_replay_test_util.h"
#include "harness/replay/recorder.h"
#include "harness/trace/trace_file.h"

// Counts heap allocations, for the steady-state allocation test below.
static std::atomic<uint64_t> g_allocations{0};
void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  std::abort();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace msrtrace {
namespace {

using ::msrtrace::testing_util::kBrokenMsr;
using ::msrtrace::testing_util::kClockMsr;
using ::msrtrace::testing_util::kCounterMsr;
using ::msrtrace::testing_util::kLeakyMsr;
using ::msrtrace::testing_util::kMemoryMsr;
using ::msrtrace::testing_util::kScribbleMsr;
using ::msrtrace::testing_util::kStorageMsr;
using ::msrtrace::testing_util::RewriteTrace;
using ::msrtrace::testing_util::StartSession;
using ::msrtrace::testing_util::TempPath;
using ::msrtrace::testing_util::TestHeader;

// Records a small trace touching every test MSR that behaves; returns its path.
std::string RecordBasic(const std::string& name, bool with_volatile = false) {
  std::string path = TempPath(name);
  RecorderOptions o;
  o.is_volatile = [](uint32_t i) { return i == kClockMsr; };
  auto s = StartSession(path, TestHeader(), std::move(o));
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return path;
  (void)s->Exit(0, Access::kWrite, kStorageMsr, 0x1122334455667788ull);
  (void)s->Exit(1, Access::kWrite, kStorageMsr, 0x99);
  (void)s->Exit(0, Access::kRead, kStorageMsr);
  (void)s->Exit(1, Access::kWrite, kStorageMsr, 1ull << 63);  // #GP.
  (void)s->Exit(0, Access::kWrite, kMemoryMsr, 0xabcdef);
  (void)s->Exit(1, Access::kRead, 0x9999);  // Unknown: #GP.
  if (with_volatile) (void)s->Exit(0, Access::kRead, kClockMsr);
  (void)s->Exit(1, Access::kRead, kStorageMsr, 0, 4);
  EXPECT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  return path;
}

std::vector<DivergenceKind> Kinds(const ReplayResult& r) {
  std::vector<DivergenceKind> out;
  for (const Divergence& d : r.divergences) out.push_back(d.kind);
  return out;
}

TEST(ReplayTest, RecordingReplaysClean) {
  const std::string path = RecordBasic("clean.trace", true);
  auto r = ReplayFile(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->clean()) << r->divergences[0].expected << " vs " << r->divergences[0].actual;
  EXPECT_FALSE(r->incomplete());
  EXPECT_EQ(r->events, 8u);
  EXPECT_EQ(r->faults, 2u);
  EXPECT_EQ(r->reads, 4u);
  EXPECT_EQ(r->writes, 4u);
  EXPECT_NE(r->recorded_final_digest, 0u);
  EXPECT_EQ(r->final_digest, r->recorded_final_digest);
  unlink(path.c_str());
}

TEST(ReplayTest, CountsPerMsrSortedByIndexWithNames) {
  const std::string path = RecordBasic("permsr.trace");
  auto r = ReplayFile(path);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->per_msr.size(), 3u);
  EXPECT_EQ(r->per_msr[0].index, kStorageMsr);
  EXPECT_EQ(r->per_msr[0].name, "TEST_STORAGE");
  EXPECT_EQ(r->per_msr[0].reads, 2u);
  EXPECT_EQ(r->per_msr[0].writes, 3u);
  EXPECT_EQ(r->per_msr[0].faults, 1u);
  EXPECT_EQ(r->per_msr[2].index, 0x9999u);
  EXPECT_EQ(r->per_msr[2].name, "MSR_0x9999");
  unlink(path.c_str());
}

TEST(ReplayTest, CountsPerMsrOfThousandsOfDistinctIndices) {
  // More distinct indices than the counters' first table holds (it grows), spread over the
  // dispatch windows and far outside them; each read once and index 0x9999 3 more times.
  const std::string path = TempPath("permsr_many.trace");
  auto s = StartSession(path, TestHeader());
  ASSERT_TRUE(s.ok()) << s.status();
  std::vector<uint32_t> indices;
  for (uint32_t i = 0; i < 1500; ++i) indices.push_back(0x40000000u + i * 0x10001u);
  for (uint32_t i = 0; i < 1500; ++i) indices.push_back(0xc0000000u + i);
  for (const uint32_t index : indices) (void)s->Exit(0, Access::kRead, index);
  for (int i = 0; i < 3; ++i) (void)s->Exit(1, Access::kWrite, 0x9999, i);
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  auto r = ReplayFile(path);
  ASSERT_TRUE(r.ok()) << r.status();
  indices.push_back(0x9999);
  std::sort(indices.begin(), indices.end());
  ASSERT_EQ(r->per_msr.size(), indices.size());
  uint64_t reads = 0, writes = 0, faults = 0;
  for (size_t i = 0; i < indices.size(); ++i) {
    const MsrCounts& m = r->per_msr[i];
    ASSERT_EQ(m.index, indices[i]) << i;
    EXPECT_EQ(m.reads + m.writes, m.index == 0x9999 ? 3u : 1u) << m.name;
    reads += m.reads;
    writes += m.writes;
    faults += m.faults;
  }
  EXPECT_EQ(reads, r->reads);
  EXPECT_EQ(writes, r->writes);
  EXPECT_EQ(faults, r->faults);
  EXPECT_EQ(r->events, 3003u);
  unlink(path.c_str());
}

TEST(ReplayTest, ChangedRecordedValueIsValueDivergenceWithRegisterDiff) {
  const std::string path = RecordBasic("value.trace");
  const std::string bad = TempPath("value_bad.trace");
  ASSERT_TRUE(RewriteTrace(path, bad, [](ExitEvent& e) {
                if (e.seq == 3) e.rax_out ^= 1;
                return true;
              }).ok());
  auto r = ReplayFile(bad);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->divergence_count, 1u);
  const Divergence& d = r->divergences[0];
  EXPECT_EQ(d.kind, DivergenceKind::kValue);
  EXPECT_EQ(d.seq, 3u);
  EXPECT_EQ(d.vcpu_id, 0u);
  EXPECT_EQ(d.msr_name, "TEST_STORAGE");
  EXPECT_EQ(d.access, Access::kRead);
  EXPECT_THAT(d.expected, ::testing::HasSubstr("0x55667789"));
  EXPECT_THAT(d.actual, ::testing::HasSubstr("0x55667788"));
  EXPECT_THAT(d.reg_diff, ::testing::HasSubstr("rax: expected 0x55667789 actual 0x55667788"));
  unlink(path.c_str());
  unlink(bad.c_str());
}

TEST(ReplayTest, ChangedOutcomeKindIsOutcomeDivergence) {
  const std::string path = RecordBasic("kind.trace");
  const std::string bad = TempPath("kind_bad.trace");
  ASSERT_TRUE(RewriteTrace(path, bad, [](ExitEvent& e) {
                if (e.seq == 4) e.kind = RecordedKind::kRetired;
                return true;
              }).ok());
  auto r = ReplayFile(bad);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->divergence_count, 1u);
  EXPECT_EQ(r->divergences[0].kind, DivergenceKind::kOutcome);
  EXPECT_EQ(r->divergences[0].expected, "retired");
  EXPECT_EQ(r->divergences[0].actual, "gp");
  unlink(path.c_str());
  unlink(bad.c_str());
}

TEST(ReplayTest, ChangedRipAndPendingAreSeparateDivergences) {
  const std::string path = RecordBasic("rip.trace");
  const std::string bad = TempPath("rip_bad.trace");
  ASSERT_TRUE(RewriteTrace(path, bad, [](ExitEvent& e) {
                if (e.seq == 1) e.rip_out += 1;
                if (e.seq == 4) e.pending_out = PendingException{};
                return true;
              }).ok());
  auto r = ReplayFile(bad);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Kinds(*r),
              ::testing::ElementsAre(DivergenceKind::kRip, DivergenceKind::kPendingException));
  unlink(path.c_str());
  unlink(bad.c_str());
}

TEST(ReplayTest, ChangedMemoryWriteIsMemoryDivergence) {
  const std::string path = RecordBasic("mem.trace");
  const std::string bad = TempPath("mem_bad.trace");
  ASSERT_TRUE(RewriteTrace(path, bad, [](ExitEvent& e) {
                if (!e.memory_writes.empty()) e.memory_writes[0].bytes[0] ^= 0xff;
                return true;
              }).ok());
  auto r = ReplayFile(bad);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_GE(r->divergence_count, 1u);
  EXPECT_EQ(r->divergences[0].kind, DivergenceKind::kMemoryWrites);
  unlink(path.c_str());
  unlink(bad.c_str());
}

TEST(ReplayTest, MemoryDigestIsComparedWhenOnlyTheDigestIsKnown) {
  const std::string path = RecordBasic("memdigest.trace");
  const std::string bad = TempPath("memdigest_bad.trace");
  ASSERT_TRUE(RewriteTrace(path, bad, [](ExitEvent& e) {
                e.known &= ~kFieldMemoryWrites;
                e.memory_writes.clear();
                if (e.memory_writes_digest != 0) e.memory_writes_digest ^= 1;
                return true;
              }).ok());
  auto r = ReplayFile(bad);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->divergence_count, 1u);
  EXPECT_EQ(r->divergences[0].kind, DivergenceKind::kMemoryWrites);
  unlink(path.c_str());
  unlink(bad.c_str());
}

TEST(ReplayTest, UnknownFieldsAreNotCompared) {
  const std::string path = RecordBasic("unknown_fields.trace");
  const std::string bad = TempPath("unknown_fields_bad.trace");
  ASSERT_TRUE(RewriteTrace(path, bad, [](ExitEvent& e) {
                e.known &= ~(kFieldRaxRdxOut | kFieldRipOut);
                e.rax_out = 0xbad;
                e.rip_out = 0xbad;
                return true;
              }).ok());
  auto r = ReplayFile(bad);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->clean());
  unlink(path.c_str());
  unlink(bad.c_str());
}

TEST(ReplayTest, VolatileValueExactPolicyComparesAndKindOnlyDoesNot) {
  const std::string path = RecordBasic("volatile.trace", true);
  const std::string bad = TempPath("volatile_bad.trace");
  ASSERT_TRUE(RewriteTrace(path, bad, [](ExitEvent& e) {
                if (e.volatile_value) e.exit.host_tsc += 5;  // Another host clock.
                return true;
              }).ok());
  ReplayOptions exact;
  auto r = ReplayFile(bad, exact);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Kinds(*r), ::testing::Contains(DivergenceKind::kValue));
  ReplayOptions kind_only;
  kind_only.volatile_policy = VolatilePolicy::kKindOnly;
  // The final state (RAX of vCPU 0) differs too; compare only the per-event result.
  r = ReplayFile(bad, kind_only);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Kinds(*r), ::testing::Not(::testing::Contains(DivergenceKind::kValue)));
  unlink(path.c_str());
  unlink(bad.c_str());
}

TEST(ReplayTest, VolatileAutoPolicyIsExactOnlyWhenTheHostClockWasRecorded) {
  const std::string path = RecordBasic("volatile_auto.trace", true);
  const std::string with_env = TempPath("volatile_auto_env.trace");
  const std::string without_env = TempPath("volatile_auto_noenv.trace");
  // Another recorded value for the clock read: a divergence only if the clock is known.
  ASSERT_TRUE(RewriteTrace(path, with_env, [](ExitEvent& e) {
                if (e.volatile_value) e.rax_out += 5;
                return true;
              }).ok());
  ASSERT_TRUE(RewriteTrace(path, without_env, [](ExitEvent& e) {
                if (e.volatile_value) {
                  e.rax_out += 5;
                  e.known &= ~kFieldEnv;  // An importer does not know the host TSC.
                  e.exit.host_tsc = 0;
                }
                return true;
              }).ok());
  ReplayOptions o;  // kAuto.
  auto r = ReplayFile(with_env, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Kinds(*r), ::testing::Contains(DivergenceKind::kValue));
  r = ReplayFile(without_env, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Kinds(*r), ::testing::Not(::testing::Contains(DivergenceKind::kValue)));
  unlink(path.c_str());
  unlink(with_env.c_str());
  unlink(without_env.c_str());
}

TEST(ReplayTest, FinalStateDigestMismatchIsReported) {
  const std::string path = RecordBasic("final.trace");
  const std::string bad = TempPath("final_bad.trace");
  ASSERT_TRUE(RewriteTrace(path, bad, [](ExitEvent& e) { return e.seq != 1; }).ok());
  auto r = ReplayFile(bad);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Kinds(*r), ::testing::Contains(DivergenceKind::kFinalState));
  unlink(path.c_str());
  unlink(bad.c_str());
}

TEST(ReplayTest, GpThatChangedStateIsNotAtomic) {
  const std::string path = TempPath("leaky.trace");
  auto s = StartSession(path, TestHeader());
  ASSERT_TRUE(s.ok()) << s.status();
  (void)s->Exit(0, Access::kWrite, kLeakyMsr, 5);
  (void)s->Exit(0, Access::kWrite, kScribbleMsr, 0x6000);
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  auto r = ReplayFile(path);
  ASSERT_TRUE(r.ok()) << r.status();
  // The recording agrees (same buggy handlers), but the architectural check does not.
  ASSERT_EQ(r->divergence_count, 2u);
  EXPECT_EQ(r->divergences[0].kind, DivergenceKind::kArchGpNotAtomic);
  EXPECT_THAT(r->divergences[0].actual, ::testing::HasSubstr("TEST.leaky"));
  EXPECT_EQ(r->divergences[1].kind, DivergenceKind::kArchGpNotAtomic);
  EXPECT_THAT(r->divergences[1].actual, ::testing::HasSubstr("guest memory"));
  unlink(path.c_str());
}

TEST(ReplayTest, VmmErrorMatchesRecordedVmmError) {
  const std::string path = TempPath("vmm.trace");
  auto s = StartSession(path, TestHeader());
  ASSERT_TRUE(s.ok()) << s.status();
  (void)s->Exit(0, Access::kRead, kBrokenMsr);
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  auto r = ReplayFile(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->clean());
  EXPECT_EQ(r->vmm_errors, 1u);
  unlink(path.c_str());
}

TEST(ReplayTest, UnknownMsrPolicyComesFromTheHeader) {
  const std::string path = TempPath("ignore.trace");
  auto s = StartSession(path, TestHeader(1, UnknownMsrPolicy::kIgnore));
  ASSERT_TRUE(s.ok()) << s.status();
  (void)s->Exit(0, Access::kRead, 0x9999);
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  auto r = ReplayFile(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->clean());
  EXPECT_EQ(r->ignored, 1u);
  unlink(path.c_str());
}

TEST(ReplayTest, RepeatDetectsStateOutsideTheSnapshot) {
  const std::string path = TempPath("counter.trace");
  auto s = StartSession(path, TestHeader());
  ASSERT_TRUE(s.ok()) << s.status();
  (void)s->Exit(0, Access::kRead, kCounterMsr);
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  ReplayOptions o;
  o.repeat = 3;
  auto r = ReplayFile(path, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Kinds(*r), ::testing::Contains(DivergenceKind::kNondeterministic));
  unlink(path.c_str());
}

TEST(ReplayTest, RepeatOfDeterministicTraceIsClean) {
  const std::string path = RecordBasic("repeat.trace");
  ReplayOptions o;
  o.repeat = 4;
  auto r = ReplayFile(path, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->clean());
  unlink(path.c_str());
}

TEST(ReplayTest, ResumingFromMidTraceSnapshotMatchesUninterruptedRun) {
  const std::string path = RecordBasic("resume.trace");
  for (uint64_t k = 1; k <= 7; ++k) {
    ReplayOptions o;
    o.resume_after = k;
    auto r = ReplayFile(path, o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->clean()) << "resume after " << k;
  }
  unlink(path.c_str());
}

TEST(ReplayTest, TraceWithoutTrailerIsIncompleteButClean) {
  const std::string path = TempPath("notrailer.trace");
  {
    RecorderOptions in_place;
    in_place.atomic = false;  // Stopped without Close(): keep what was written.
    auto s = StartSession(path, TestHeader(), std::move(in_place));
    ASSERT_TRUE(s.ok()) << s.status();
    (void)s->Exit(0, Access::kWrite, kStorageMsr, 3);
  }
  auto r = ReplayFile(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->clean());
  EXPECT_TRUE(r->incomplete());
  EXPECT_EQ(r->end, TraceEnd::kNoTrailer);
  EXPECT_EQ(r->events, 1u);
  unlink(path.c_str());
}

TEST(ReplayTest, EventOfMissingVcpuIsUnusableInput) {
  const std::string path = RecordBasic("novcpu.trace");
  const std::string bad = TempPath("novcpu_bad.trace");
  ASSERT_TRUE(RewriteTrace(path, bad, [](ExitEvent& e) {
                if (e.seq == 2) e.vcpu_id = 7;
                return true;
              }).ok());
  auto r = ReplayFile(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("vCPU 7"));
  unlink(path.c_str());
  unlink(bad.c_str());
}

TEST(ReplayTest, UnknownProfileOrHandlerSetIsUnusableInputListingKnownOnes) {
  TraceHeader h = TestHeader();
  h.cpu_profile = "pentium-pro";
  auto m = BuildMachine(h);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), ::testing::HasSubstr("intel-icx"));
  h = TestHeader();
  h.handler_set = "acme";
  m = BuildMachine(h);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), ::testing::HasSubstr("reference"));
}

TEST(ReplayTest, MaxDivergencesKeepsDetailsButCountsAll) {
  const std::string path = RecordBasic("many.trace");
  const std::string bad = TempPath("many_bad.trace");
  ASSERT_TRUE(RewriteTrace(path, bad, [](ExitEvent& e) {
                e.rip_out ^= 0x100;
                return true;
              }).ok());
  ReplayOptions o;
  o.max_divergences = 2;
  auto r = ReplayFile(bad, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->divergences.size(), 2u);
  EXPECT_EQ(r->divergence_count, 7u);  // Every event of the trace.
  unlink(path.c_str());
  unlink(bad.c_str());
}

TEST(ReplayTest, ReferenceHandlersReplayTheirOwnRecording) {
  // Through the reference set: a few exits on a fresh intel-icx machine.
  TraceHeader h = TestHeader(1);
  h.handler_set = "reference";
  const std::string path = TempPath("reference.trace");
  auto m = BuildMachine(h);
  ASSERT_TRUE(m.ok()) << m.status();
  auto rec = Recorder::Start(path, h, *(*m)->controller, (*m)->vcpus, (*m)->memory);
  ASSERT_TRUE(rec.ok()) << rec.status();
  Vcpu& v = (*m)->vcpus[0];
  for (uint32_t index : {0x277u, 0x1bu, 0xc0000080u, 0x10u}) {
    v.regs.reg(Gpr::kRcx) = index;
    (void)(*rec)->Handle(Exit::Rdmsr(), v, (*m)->memory);
  }
  ASSERT_TRUE((*rec)->Close((*m)->vcpus).ok());
  auto r = ReplayFile(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->clean());
  EXPECT_EQ(r->events, 4u);
  unlink(path.c_str());
}

// Records `n` exits cycling over storage reads/writes, a faulting write and guest-memory writes.
std::string RecordLoop(const std::string& name, int n) {
  std::string path = TempPath(name);
  auto s = StartSession(path, TestHeader());
  EXPECT_TRUE(s.ok()) << s.status();
  for (int i = 0; i < n; ++i) {
    switch (i % 4) {
      case 0:
        (void)s->Exit(i % 2, Access::kWrite, kStorageMsr, i);
        break;
      case 1:
        (void)s->Exit(i % 2, Access::kRead, kStorageMsr);
        break;
      case 2:
        (void)s->Exit(i % 2, Access::kWrite, kStorageMsr, 1ull << 63);
        break;
      default:
        (void)s->Exit(i % 2, Access::kWrite, kMemoryMsr, i);
    }
  }
  EXPECT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  return path;
}

// Replays a trace of `small` and one of `large` events: the extra events may cost a few more
// allocations (buffer growth), not one per event.
void ExpectNoAllocationPerEvent(int small, int large, bool read_ahead) {
  ReplayOptions o;
  o.read_ahead = read_ahead;
  auto allocations = [&](int events) {
    const std::string path = RecordLoop(absl::StrCat("alloc_", events, ".trace"), events);
    const uint64_t before = g_allocations.load();
    auto r = ReplayFile(path, o);
    const uint64_t n = g_allocations.load() - before;
    EXPECT_TRUE(r.ok() && r->clean());
    unlink(path.c_str());
    return n;
  };
  const uint64_t a = allocations(small);
  const uint64_t b = allocations(large);
  EXPECT_LT(b, a + 100) << "small " << a << ", large " << b;
}

TEST(ReplayTest, SteadyStateReplayDoesNotAllocatePerEvent) {
  ExpectNoAllocationPerEvent(1000, 11000, /*read_ahead=*/false);
}

// With read-ahead each ring slot allocates on its first use (an event's memory writes); past
// the ring's capacity (ReadAheadOptions: 4 x 4096 events) nothing more.
TEST(ReplayTest, SteadyStateReadAheadReplayDoesNotAllocatePerEvent) {
  ExpectNoAllocationPerEvent(20000, 60000, /*read_ahead=*/true);
}

// Reading ahead on a second thread changes nothing in the result: clean traces, divergences
// (with their details), an incomplete trace and unusable input (its message names the byte).
TEST(ReplayTest, ReadAheadGivesTheSameResultAsOneThread) {
  const std::string clean = RecordLoop("ra_clean.trace", 9000);
  const std::string diverging = TempPath("ra_diverging.trace");
  ASSERT_TRUE(RewriteTrace(clean, diverging, [](ExitEvent& e) {
                if (e.seq % 1000 == 2) e.rax_out ^= 1;  // Reads of TEST_STORAGE.
                if (e.seq == 5000) e.kind = RecordedKind::kGpInjected;
                return true;
              }).ok());
  const std::string unusable = TempPath("ra_unusable.trace");
  ASSERT_TRUE(RewriteTrace(clean, unusable, [](ExitEvent& e) {
                if (e.seq == 7777) e.vcpu_id = 9;
                return true;
              }).ok());
  const std::string notrailer = TempPath("ra_notrailer.trace");
  {
    RecorderOptions in_place;
    in_place.atomic = false;
    auto s = StartSession(notrailer, TestHeader(), std::move(in_place));
    ASSERT_TRUE(s.ok()) << s.status();
    for (int i = 0; i < 5000; ++i) (void)s->Exit(i % 2, Access::kWrite, kStorageMsr, i);
  }
  for (const std::string& path : {clean, diverging, unusable, notrailer}) {
    SCOPED_TRACE(path);
    ReplayOptions one;
    one.read_ahead = false;
    one.max_divergences = 100;
    one.repeat = 2;
    one.resume_after = 4321;
    ReplayOptions two = one;
    two.read_ahead = true;
    absl::StatusOr<ReplayResult> a = ReplayFile(path, one);
    absl::StatusOr<ReplayResult> b = ReplayFile(path, two);
    ASSERT_EQ(a.ok(), b.ok());
    if (!a.ok()) {
      EXPECT_EQ(a.status(), b.status());
      EXPECT_THAT(std::string(a.status().message()), ::testing::HasSubstr("byte "));
      continue;
    }
    EXPECT_EQ(a->events, b->events);
    EXPECT_EQ(a->reads, b->reads);
    EXPECT_EQ(a->writes, b->writes);
    EXPECT_EQ(a->faults, b->faults);
    EXPECT_EQ(a->end, b->end);
    EXPECT_EQ(a->final_digest, b->final_digest);
    EXPECT_EQ(a->recorded_final_digest, b->recorded_final_digest);
    ASSERT_EQ(a->divergence_count, b->divergence_count);
    ASSERT_EQ(a->divergences.size(), b->divergences.size());
    for (size_t i = 0; i < a->divergences.size(); ++i) {
      EXPECT_EQ(a->divergences[i].kind, b->divergences[i].kind);
      EXPECT_EQ(a->divergences[i].seq, b->divergences[i].seq);
      EXPECT_EQ(a->divergences[i].expected, b->divergences[i].expected);
      EXPECT_EQ(a->divergences[i].actual, b->divergences[i].actual);
      EXPECT_EQ(a->divergences[i].reg_diff, b->divergences[i].reg_diff);
    }
    ASSERT_EQ(a->per_msr.size(), b->per_msr.size());
    for (size_t i = 0; i < a->per_msr.size(); ++i) {
      EXPECT_EQ(a->per_msr[i].index, b->per_msr[i].index);
      EXPECT_EQ(a->per_msr[i].reads, b->per_msr[i].reads);
      EXPECT_EQ(a->per_msr[i].faults, b->per_msr[i].faults);
    }
  }
  // The diverging trace does diverge (the comparison above is not of two empty lists).
  ReplayOptions o;
  absl::StatusOr<ReplayResult> r = ReplayFile(diverging, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(r->divergence_count, 9u);
  for (const std::string& path : {clean, diverging, unusable, notrailer}) unlink(path.c_str());
}

TEST(ReplayTest, DivergenceKindNamesAreDistinct) {
  std::vector<std::string> names;
  names.reserve(static_cast<size_t>(DivergenceKind::kCount));
  for (int k = 0; k < static_cast<int>(DivergenceKind::kCount); ++k) {
    names.push_back(DivergenceKindName(static_cast<DivergenceKind>(k)));
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::unique(names.begin(), names.end()), names.end());
  EXPECT_THAT(names, ::testing::Not(::testing::Contains("unknown")));
}

TEST(ReplayCompactTest, HandWrittenExampleWithoutHandlerStatesReplaysClean) {
  const char* src = getenv("MSRTRACE_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "run through ctest (it sets MSRTRACE_SOURCE_DIR)";
  const std::string bin = TempPath("hand_written.trace");
  const absl::Status s =
      ReadTraceText(std::string(src) + "/corpus/examples/hand_written.textproto", bin);
  ASSERT_TRUE(s.ok()) << s;
  absl::StatusOr<ReplayResult> r = ReplayFile(bin);
  unlink(bin.c_str());
  ASSERT_TRUE(r.ok()) << r.status();  // Omitted handler states = reset, not an error.
  EXPECT_TRUE(r->clean()) << DivergenceKindName(r->divergences[0].kind) << ": "
                          << r->divergences[0].expected << " vs " << r->divergences[0].actual;
  EXPECT_EQ(r->events, 3u);
  EXPECT_EQ(r->faults, 1u);
}

}  // namespace
}  // namespace msrtrace
