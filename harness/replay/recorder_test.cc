#include "harness/replay/recorder.h"

#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/replay/record_replay_test_util.h"
#include "harness/replay/replay.h"
#include "harness/trace/trace_file.h"

namespace msrtrace {
namespace {

using ::msrtrace::testing_util::kBrokenMsr;
using ::msrtrace::testing_util::kClockMsr;
using ::msrtrace::testing_util::kMemoryMsr;
using ::msrtrace::testing_util::kStorageMsr;
using ::msrtrace::testing_util::StartSession;
using ::msrtrace::testing_util::TempPath;
using ::msrtrace::testing_util::TestHeader;

std::vector<ExitEvent> ReadAll(const std::string& path, TraceEnd* end = nullptr,
                               TraceTrailer* trailer = nullptr) {
  std::vector<ExitEvent> out;
  auto r = TraceReader::Open(path);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return out;
  ExitEvent ev;
  while (true) {
    auto more = (*r)->Next(&ev);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    out.push_back(ev);
  }
  if (end != nullptr) *end = (*r)->end();
  if (trailer != nullptr) *trailer = (*r)->trailer();
  return out;
}

TEST(RecorderTest, RecordsInputsAndOutcomeOfEachExit) {
  const std::string path = TempPath("rec_inputs.trace");
  auto s = StartSession(path, TestHeader());
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->Exit(0, Access::kWrite, kStorageMsr, 0x1122334455667788ull).ok());
  ASSERT_TRUE(s->Exit(1, Access::kRead, kStorageMsr).ok());
  ASSERT_TRUE(s->Exit(0, Access::kRead, kStorageMsr, 0, 3).ok());
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());

  TraceEnd end;
  const std::vector<ExitEvent> evs = ReadAll(path, &end);
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(end, TraceEnd::kComplete);
  EXPECT_EQ(evs[0].seq, 1u);
  EXPECT_EQ(evs[0].vcpu_id, 0u);
  EXPECT_EQ(evs[0].kind, RecordedKind::kRetired);
  EXPECT_EQ(evs[0].rax, 0x55667788u);
  EXPECT_EQ(evs[0].rdx, 0x11223344u);
  EXPECT_EQ(evs[0].rip, 0x1000u);
  EXPECT_EQ(evs[0].rip_out, 0x1002u);
  EXPECT_EQ(evs[0].known, static_cast<uint32_t>(kFieldAll));
  EXPECT_EQ(evs[1].vcpu_id, 1u);
  EXPECT_EQ(evs[1].rax_out, 0u);  // vCPU 1's own slot.
  EXPECT_EQ(evs[2].rax_out, 0x55667788u);
  EXPECT_EQ(evs[2].rdx_out, 0x11223344u);
  EXPECT_EQ(evs[2].exit.instruction_length, 3);
  EXPECT_EQ(evs[2].rip_out, 0x1005u);
  EXPECT_GT(evs[2].exit.host_tsc, evs[0].exit.host_tsc);
  unlink(path.c_str());
}

TEST(RecorderTest, RecordsGpWithPendingExceptionAndUnchangedRip) {
  const std::string path = TempPath("rec_gp.trace");
  auto s = StartSession(path, TestHeader());
  ASSERT_TRUE(s.ok()) << s.status();
  auto out = s->Exit(0, Access::kWrite, kStorageMsr, 1ull << 63);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->kind, Outcome::Kind::kGpInjected);
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  const std::vector<ExitEvent> evs = ReadAll(path);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kind, RecordedKind::kGpInjected);
  EXPECT_EQ(evs[0].rip_out, evs[0].rip);
  EXPECT_EQ(evs[0].pending_out, PendingException::Gp0());
  unlink(path.c_str());
}

TEST(RecorderTest, RecordsVmmErrorWithMessageAndReturnsTheError) {
  const std::string path = TempPath("rec_vmm.trace");
  auto s = StartSession(path, TestHeader());
  ASSERT_TRUE(s.ok()) << s.status();
  auto out = s->Exit(0, Access::kRead, kBrokenMsr);
  EXPECT_FALSE(out.ok());
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  const std::vector<ExitEvent> evs = ReadAll(path);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kind, RecordedKind::kVmmError);
  EXPECT_THAT(evs[0].error, ::testing::HasSubstr("device on fire"));
  unlink(path.c_str());
}

TEST(RecorderTest, NonMsrExitIsPassedThroughAndNotRecorded) {
  const std::string path = TempPath("rec_nonmsr.trace");
  auto s = StartSession(path, TestHeader());
  ASSERT_TRUE(s.ok()) << s.status();
  Exit cpuid{Vendor::kIntelVmx, 10, 0, 2};
  auto out = s->recorder->Handle(cpuid, s->machine->vcpus[0], s->machine->memory);
  EXPECT_TRUE(IsExitNotHandled(out.status()));
  EXPECT_EQ(s->recorder->events_recorded(), 0u);
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  EXPECT_TRUE(ReadAll(path).empty());
  unlink(path.c_str());
}

TEST(RecorderTest, RecordsGuestMemoryWritesAndTheirDigest) {
  const std::string path = TempPath("rec_mem.trace");
  auto s = StartSession(path, TestHeader());
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->Exit(0, Access::kWrite, kMemoryMsr, 0xa1a2a3a4a5a6a7a8ull).ok());
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  const std::vector<ExitEvent> evs = ReadAll(path);
  ASSERT_EQ(evs.size(), 1u);
  ASSERT_EQ(evs[0].memory_writes.size(), 1u);
  EXPECT_EQ(evs[0].memory_writes[0].gpa, 0x5000u);
  EXPECT_EQ(evs[0].memory_writes[0].bytes, std::string("\xa8\xa7\xa6\xa5\xa4\xa3\xa2\xa1", 8));
  EXPECT_NE(evs[0].memory_writes_digest, 0u);
  unlink(path.c_str());
}

TEST(RecorderTest, MarksVolatileMsrsByPredicate) {
  const std::string path = TempPath("rec_volatile.trace");
  RecorderOptions o;
  o.is_volatile = [](uint32_t i) { return i == kClockMsr; };
  auto s = StartSession(path, TestHeader(), std::move(o));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->Exit(0, Access::kRead, kClockMsr).ok());
  ASSERT_TRUE(s->Exit(0, Access::kRead, kStorageMsr).ok());
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  const std::vector<ExitEvent> evs = ReadAll(path);
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_TRUE(evs[0].volatile_value);
  EXPECT_FALSE(evs[1].volatile_value);
  unlink(path.c_str());
}

TEST(RecorderTest, HeaderTakesVcpuCountAndPolicyFromTheMachine) {
  const std::string path = TempPath("rec_header.trace");
  TraceHeader h = TestHeader(3, UnknownMsrPolicy::kIgnore);
  auto s = StartSession(path, h);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->recorder->header().vcpu_count, 3u);
  EXPECT_EQ(s->recorder->header().unknown_msr_policy, UnknownMsrPolicy::kIgnore);
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  auto r = TraceReader::Open(path);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->header().vcpu_count, 3u);
  EXPECT_EQ((*r)->snapshot().vcpus.size(), 3u);
  unlink(path.c_str());
}

TEST(RecorderTest, TrailerDigestEqualsReplayFinalDigestDespiteGuestGprChanges) {
  const std::string path = TempPath("rec_digest.trace");
  auto s = StartSession(path, TestHeader());
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->Exit(0, Access::kWrite, kStorageMsr, 42).ok());
  // The guest runs between exits: registers the trace does not record change.
  s->machine->vcpus[0].regs.reg(Gpr::kRbx) = 0x5555;
  s->machine->vcpus[1].regs.reg(Gpr::kR15) = 0x7777;
  ASSERT_TRUE(s->Exit(1, Access::kWrite, kMemoryMsr, 7).ok());
  ASSERT_TRUE(s->Exit(0, Access::kRead, kStorageMsr).ok());
  const uint64_t model = s->recorder->ModelDigest(s->machine->vcpus);
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  TraceTrailer trailer;
  ReadAll(path, nullptr, &trailer);
  EXPECT_EQ(trailer.final_state_digest, model);
  auto result = ReplayFile(path);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->final_digest, model);
  EXPECT_TRUE(result->clean());
  unlink(path.c_str());
}

TEST(RecorderTest, UnclosedRecordingKeepsEventsWithoutTrailer) {
  const std::string path = TempPath("rec_unclosed.trace");
  {
    RecorderOptions in_place;
    in_place.atomic = false;
    auto s = StartSession(path, TestHeader(), std::move(in_place));
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE(s->Exit(0, Access::kWrite, kStorageMsr, 1).ok());
    ASSERT_TRUE(s->Exit(0, Access::kRead, kStorageMsr).ok());
  }
  TraceEnd end;
  EXPECT_EQ(ReadAll(path, &end).size(), 2u);
  EXPECT_EQ(end, TraceEnd::kNoTrailer);
  unlink(path.c_str());
}

TEST(RecorderTest, FlushMakesEventsVisibleBeforeClose) {
  const std::string path = TempPath("rec_flush.trace");
  RecorderOptions in_place;
  in_place.atomic = false;  // Read while the recording runs.
  auto s = StartSession(path, TestHeader(), std::move(in_place));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->Exit(0, Access::kWrite, kStorageMsr, 1).ok());
  ASSERT_TRUE(s->recorder->Flush().ok());
  EXPECT_EQ(ReadAll(path).size(), 1u);  // Read while the recording is still open.
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  unlink(path.c_str());
}

TEST(RecorderTest, FlushEveryNEventsPolicy) {
  const std::string path = TempPath("rec_flush_every.trace");
  RecorderOptions o;
  o.flush_every = 2;
  o.atomic = false;  // Read while the recording runs.
  auto s = StartSession(path, TestHeader(), std::move(o));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->Exit(0, Access::kWrite, kStorageMsr, 1).ok());
  ASSERT_TRUE(s->Exit(0, Access::kWrite, kStorageMsr, 2).ok());
  EXPECT_EQ(ReadAll(path).size(), 2u);
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  unlink(path.c_str());
}

TEST(RecorderTest, CloseTwiceIsAnError) {
  const std::string path = TempPath("rec_close2.trace");
  auto s = StartSession(path, TestHeader());
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->recorder->Close(s->machine->vcpus).ok());
  EXPECT_FALSE(s->recorder->CloseWithoutDigest().ok());
  unlink(path.c_str());
}

TEST(RecorderTest, StartFailsCleanlyOnUnwritablePath) {
  testing_util::RegisterTestSet();
  auto m = BuildMachine(TestHeader());
  ASSERT_TRUE(m.ok());
  auto r = Recorder::Start("/nonexistent-dir/x.trace", TestHeader(), *(*m)->controller, (*m)->vcpus,
                           (*m)->memory);
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace msrtrace
