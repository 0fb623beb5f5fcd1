// Tests of trace reduction: a divergence buried in a 100,000-event trace, a failing oracle, a
// fuzz target's crash, and the errors.
#include "triage/reduce.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "fuzz/planted_bugs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/replay/replay.h"
#include "workloads/record.h"

namespace msrtrace::triage {
namespace {

using ::testing::HasSubstr;

// The fake fuzz target of the crash test: this test binary, started by Reduce with
// MSRTRACE_REDUCE_TEST_TARGET set, reads the trace named by its last argument and reports an
// ASan-style heap overflow iff the trace writes MSR kCrashMsr (whatever the value).
constexpr uint32_t kCrashMsr = 0xdead0;
const bool kFakeTarget = [] {
  if (std::getenv("MSRTRACE_REDUCE_TEST_TARGET") == nullptr) return false;
  std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
  std::string all(std::istreambuf_iterator<char>(cmdline), {});
  while (!all.empty() && all.back() == '\0') all.pop_back();
  const std::string input = all.substr(all.rfind('\0') + 1);
  absl::StatusOr<TraceModel> t = LoadTrace(input);
  if (!t.ok()) _exit(0);
  for (const ExitEvent& e : t->events) {
    if (e.index() == kCrashMsr && MsrAccessOf(e.exit) == Access::kWrite) {
      std::fprintf(stderr,
                   "==%d==ERROR: AddressSanitizer: heap-buffer-overflow on address "
                   "0x602000000010 at pc 0x55d0 bp 0x7ffc sp 0x7ffc\n",
                   static_cast<int>(getpid()));
      _exit(1);
    }
  }
  _exit(0);
}();

class ReduceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "reduce_test_XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    const std::string cmd = "rm -rf '" + dir_ + "'";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "cannot remove %s\n", dir_.c_str());
  }

  TraceModel Random(uint64_t events, uint64_t seed = 3) {
    workloads::RecordRequest o;
    o.workload = "random";
    o.events = events;
    o.seed = seed;
    o.output = dir_ + "/random.trace";
    const absl::StatusOr<workloads::RecordSummary> s = workloads::RecordWorkload(o);
    EXPECT_TRUE(s.ok()) << s.status();
    absl::StatusOr<TraceModel> t = LoadTrace(o.output);
    EXPECT_TRUE(t.ok()) << t.status();
    return *std::move(t);
  }

  std::string dir_;
};

uint64_t ValueIn(const ExitEvent& e) {
  return ((e.rdx & 0xffffffffull) << 32) | (e.rax & 0xffffffffull);
}

// A golden divergence: the value recorded for a read at the end of the trace is wrong, and the
// value the handlers return was written tens of thousands of events earlier. The reduced trace
// keeps that write and the read (and nothing else that is not needed), and diverges the same way.
TEST_F(ReduceTest, BuriedDivergenceShrinksToItsCauseAndEffect) {
  TraceModel t = Random(100000);
  ASSERT_EQ(t.events.size(), 100000u);
  // The last retired write per (vCPU, index) and its position.
  struct LastWrite {
    size_t pos;
    uint64_t value;
  };
  absl::flat_hash_map<uint64_t, LastWrite> last;
  size_t read_pos = 0, write_pos = 0;
  for (size_t i = 0; i < t.events.size() && read_pos == 0; ++i) {
    const ExitEvent& e = t.events[i];
    const uint64_t key = (uint64_t{e.vcpu_id} << 32) | e.index();
    // EFER is an input of every event (its mode fields), not state a write leaves behind.
    if (e.kind != RecordedKind::kRetired || e.volatile_value || e.index() == 0xc0000080) continue;
    if (MsrAccessOf(e.exit) == Access::kWrite) {
      last[key] = {i, ValueIn(e)};
      continue;
    }
    auto it = last.find(key);
    const uint64_t read = ((e.rdx_out & 0xffffffffull) << 32) | (e.rax_out & 0xffffffffull);
    if (i > 90000 && it != last.end() && i - it->second.pos > 20000 && read == it->second.value &&
        read != 0) {
      read_pos = i;
      write_pos = it->second.pos;
    }
  }
  ASSERT_NE(read_pos, 0u) << "no read far from its write in the random workload";
  ExitEvent& planted = t.events[read_pos];
  planted.rax_out ^= 0x10;  // The recording says something the handlers do not return.
  const uint64_t write_seq = t.events[write_pos].seq;
  const uint64_t read_seq = planted.seq;

  ReduceTarget target;
  target.divergence = DivergenceKind::kValue;
  target.msr_index = planted.index();
  ReduceOptions options;
  options.max_seconds = 0;
  absl::StatusOr<ReduceResult> r = Reduce(t, target, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->events_before, 100000u);
  EXPECT_LE(r->events_after, 5u);
  EXPECT_EQ(r->trace.events.size(), r->events_after);
  bool has_write = false, has_read = false;
  for (const ExitEvent& e : r->trace.events) {
    has_write = has_write || e.seq == write_seq;
    has_read = has_read || e.seq == read_seq;
  }
  EXPECT_TRUE(has_write) << "the write that set the value was dropped: " << r->finding;

  EXPECT_TRUE(has_read);

  // Written to disk, the reduced trace replays with exactly that divergence.
  const std::string out = dir_ + "/reduced.trace";
  ASSERT_TRUE(WriteTraceAtomically(r->trace, out).ok());
  absl::StatusOr<ReplayResult> replay = ReplayFile(out);
  ASSERT_TRUE(replay.ok()) << replay.status();
  ASSERT_EQ(replay->divergence_count, 1u);
  EXPECT_EQ(replay->divergences[0].kind, DivergenceKind::kValue);
  EXPECT_EQ(replay->divergences[0].index, planted.index());
  EXPECT_EQ(replay->divergences[0].seq, read_seq);
}

// Only the target divergence's kind, MSR and values count: asking for another kind fails with a
// message naming what the trace shows.
TEST_F(ReduceTest, TraceWithoutTheDivergenceIsAnError) {
  TraceModel t = Random(500);
  ReduceTarget target;
  absl::StatusOr<ReduceResult> r = Reduce(t, target);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("0 divergence(s)"));
}

TEST_F(ReduceTest, WholeTraceDivergenceKindsCannotBeTargets) {
  TraceModel t = Random(100);
  ReduceTarget target;
  target.divergence = DivergenceKind::kFinalState;
  absl::StatusOr<ReduceResult> r = Reduce(t, target);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("whole trace"));
}

// A handler that commits a write before refusing it fails fault-atomicity; the reduced trace is
// that one write, its value down to the one bit that makes the handler refuse it.
TEST_F(ReduceTest, FailingOracleShrinksToOneWriteWithMinimalValue) {
  TraceModel t = Random(2000);
  t.header.handler_set = fuzz::PlantedHandlerSet(fuzz::PlantedBug::kStateChangedBeforeGp);
  absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(t.header);
  ASSERT_TRUE(m.ok()) << m.status();
  t.snapshot = CaptureSnapshot(*(*m)->controller, (*m)->vcpus, (*m)->memory);
  ExitEvent bad = t.events[1000];
  bad.exit = Exit::Wrmsr(2);
  bad.rcx = fuzz::kPlantedMsr;
  bad.rax = 0x12345678;
  bad.rdx = 0xabc0;
  fuzz::ClearOutcome(&bad);
  t.events[1000] = bad;
  ReduceTarget target;
  target.kind = FindingKind::kOracle;
  target.oracle = fuzz::Oracle::kFaultAtomicity;
  absl::StatusOr<ReduceResult> r = Reduce(t, target);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->trace.events.size(), 1u);
  const ExitEvent& e = r->trace.events[0];
  EXPECT_EQ(e.index(), fuzz::kPlantedMsr);
  EXPECT_EQ(e.rax, 0u);
  EXPECT_EQ(e.rdx, 0x40u);  // The lowest set bit of 0xabc0: one bit above 31 is needed.
  EXPECT_THAT(r->finding, HasSubstr("fault-atomicity"));
}

TEST_F(ReduceTest, OracleThatHoldsIsAnError) {
  TraceModel t = Random(200);
  ReduceTarget target;
  target.kind = FindingKind::kOracle;
  absl::StatusOr<ReduceResult> r = Reduce(t, target);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("every oracle holds"));
}

// The crash of a fuzz target (a subprocess) with its signature: the write to kCrashMsr is kept,
// its value goes to 0 (the crash does not depend on it).
TEST_F(ReduceTest, FuzzTargetCrashShrinksToTheCrashingEvent) {
  TraceModel t = Random(300);
  ExitEvent bad = t.events[150];
  bad.exit = Exit::Wrmsr(2);
  bad.rcx = kCrashMsr;
  bad.rax = 0xffff0000ffff;
  bad.rdx = 0x77;
  fuzz::ClearOutcome(&bad);
  t.events[150] = bad;
  ReduceTarget target;
  target.kind = FindingKind::kCrash;
  target.fuzz_target = "/proc/self/exe";
  ASSERT_EQ(setenv("MSRTRACE_REDUCE_TEST_TARGET", "1", 1), 0);
  absl::StatusOr<ReduceResult> r = Reduce(t, target);
  unsetenv("MSRTRACE_REDUCE_TEST_TARGET");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->trace.events.size(), 1u);
  EXPECT_EQ(r->trace.events[0].index(), kCrashMsr);
  EXPECT_EQ(r->trace.events[0].rax, 0u);
  EXPECT_EQ(r->trace.events[0].rdx, 0u);
  EXPECT_THAT(r->finding, HasSubstr("ERROR: AddressSanitizer: heap-buffer-overflow"));
}

TEST_F(ReduceTest, MissingFuzzTargetIsNotFound) {
  TraceModel t = Random(10);
  ReduceTarget target;
  target.kind = FindingKind::kCrash;
  target.fuzz_target = dir_ + "/no_such_fuzzer";
  absl::StatusOr<ReduceResult> r = Reduce(t, target);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

TEST(CrashSignatureTest, MasksPidsAddressesAndNumbers) {
  EXPECT_EQ(CrashSignature("noise\n==123==ERROR: AddressSanitizer: SEGV on unknown address 0x0"),
            "ERROR: AddressSanitizer: SEGV");
  EXPECT_EQ(CrashSignature("x.cc:12:5: runtime error: shift exponent 64 is too large\n"),
            "runtime error: shift exponent N is too large");
  EXPECT_EQ(CrashSignature("FAILED: fault-atomicity at event 3\n"), "FAILED: fault-atomicity");
  EXPECT_EQ(CrashSignature("all good\n"), "");
}

// The time bound stops the search but the result still shows the finding.
TEST_F(ReduceTest, TimeBoundKeepsAValidResult) {
  TraceModel t = Random(3000);
  size_t i = 2500;
  while (i < t.events.size() &&
         (t.events[i].kind != RecordedKind::kRetired || t.events[i].volatile_value ||
          MsrAccessOf(t.events[i].exit) != Access::kRead)) {
    ++i;
  }
  ASSERT_LT(i, t.events.size());
  t.events[i].rax_out ^= 0x1;
  ReduceTarget target;
  ReduceOptions options;
  options.max_seconds = 1e-9;
  absl::StatusOr<ReduceResult> r = Reduce(t, target, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->trace.events.size(), i + 1);  // Only the cut after the target event happened.
}

TEST_F(ReduceTest, WriteIsAtomicAndLeavesNoTempFile) {
  TraceModel t = Random(50);
  const std::string out = dir_ + "/out.trace.gz";
  ASSERT_TRUE(WriteTraceAtomically(t, out).ok());
  absl::StatusOr<TraceModel> back = LoadTrace(out);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->events.size(), 50u);
  const std::string ls = "ls -a '" + dir_ + "' | grep -c msrtrace-reduce";
  EXPECT_NE(std::system(ls.c_str()), 0) << "a temp file was left behind";
  EXPECT_FALSE(WriteTraceAtomically(t, dir_ + "/no/such/dir/x.trace").ok());
}

}  // namespace
}  // namespace msrtrace::triage
