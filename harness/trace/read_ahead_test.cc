// ReadAhead must be indistinguishable from the reader it wraps: the same events, positions,
// errors (after the same events) and end, whatever the batch sizes; and it must stop cleanly
// when dropped early.
#include "harness/trace/read_ahead.h"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/core/test_tmpdir.h"
#include "harness/trace/trace_test_util.h"

namespace msrtrace {
namespace {

using ::msrtrace::testing_util::ExpectEventEq;
using ::msrtrace::testing_util::SampleEvent;
using ::msrtrace::testing_util::SampleHeader;
using ::msrtrace::testing_util::SampleSnapshot;
using ::testing::HasSubstr;

constexpr uint64_t kDigest = 0xfeedfacecafebeefull;

// The bytes of a trace of `events` SampleEvent()s (seq 1..events), written through a file in
// this process's private temporary directory.
std::string SampleTrace(int events, const std::string& name) {
  const std::string path = testing_util::TestTempPath(name);
  auto writer = TraceWriter::Create(path, SampleHeader(), SampleSnapshot(1));
  EXPECT_TRUE(writer.ok()) << writer.status();
  for (int i = 1; i <= events; ++i) EXPECT_TRUE((*writer)->Append(SampleEvent(i)).ok());
  EXPECT_TRUE((*writer)->Close(kDigest).ok());
  std::string bytes;
  FILE* f = fopen(path.c_str(), "rb");
  char buf[1 << 16];
  for (size_t n; f != nullptr && (n = fread(buf, 1, sizeof(buf), f)) > 0;) bytes.append(buf, n);
  if (f != nullptr) fclose(f);
  remove(path.c_str());
  return bytes;
}

// Start offsets of the records after the 16-byte prelude ([u32 length][u32 crc][u8 type]...).
std::vector<size_t> RecordStarts(const std::string& bytes) {
  std::vector<size_t> starts;
  for (size_t pos = 16; pos + 9 <= bytes.size();) {
    starts.push_back(pos);
    uint32_t len = 0;
    for (int i = 0; i < 4; ++i) {
      len |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[pos + i])) << (8 * i);
    }
    pos += 9 + len;
  }
  return starts;
}

// What a reader gives, step by step.
struct Step {
  ExitEvent event;
  uint64_t record_offset, record_number, offset, records;
};
struct Read {
  absl::Status open;
  std::vector<Step> steps;
  absl::Status error;  // The error Next() ended with (ok at a normal end).
  TraceEnd end = TraceEnd::kComplete;
  TraceTrailer trailer;
  std::vector<CorruptRegion> skipped;
  uint64_t offset = 0, records = 0;
};

// Through Next(), or through NextView() (the replay loop's way) when `view`.
Read Drain(TraceReader& r, bool view = false) {
  Read out;
  ExitEvent e;
  while (true) {
    const ExitEvent* kept = nullptr;
    absl::StatusOr<bool> more = view ? r.NextView(&kept) : r.Next(&e);
    if (view && more.ok() && *more) e = *kept;
    if (!more.ok()) {
      out.error = more.status();
      EXPECT_EQ(r.Next(&e).status(), more.status()) << "the error is sticky";
      break;
    }
    if (!*more) {
      EXPECT_FALSE(*r.Next(&e)) << "the end is sticky";
      break;
    }
    out.steps.push_back(Step{e, r.record_offset(), r.record_number(), r.offset(), r.records()});
  }
  out.end = r.end();
  out.trailer = r.trailer();
  out.skipped = r.skipped();
  out.offset = r.offset();
  out.records = r.records();
  return out;
}

Read ReadDirect(const std::string& bytes, TraceReaderOptions o = {}) {
  auto r = TraceReader::FromBytes(bytes, "t.trace", o);
  if (!r.ok()) {
    Read failed;
    failed.open = r.status();
    return failed;
  }
  return Drain(**r);
}

Read ReadAheadOf(const std::string& bytes, ReadAheadOptions ra, TraceReaderOptions o = {},
                 bool view = false) {
  auto r = TraceReader::FromBytes(bytes, "t.trace", o);
  if (!r.ok()) {
    Read failed;
    failed.open = r.status();
    return failed;
  }
  std::unique_ptr<TraceReader> ahead = ReadAhead(*std::move(r), ra);
  return Drain(*ahead, view);
}

void ExpectSameRead(const Read& want, const Read& got) {
  ASSERT_EQ(got.steps.size(), want.steps.size());
  for (size_t i = 0; i < want.steps.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("event ", i));
    ExpectEventEq(got.steps[i].event, want.steps[i].event);
    EXPECT_EQ(got.steps[i].record_offset, want.steps[i].record_offset);
    EXPECT_EQ(got.steps[i].record_number, want.steps[i].record_number);
    EXPECT_EQ(got.steps[i].offset, want.steps[i].offset);
    EXPECT_EQ(got.steps[i].records, want.steps[i].records);
  }
  EXPECT_EQ(got.error, want.error);
  EXPECT_EQ(got.end, want.end);
  EXPECT_EQ(got.trailer.event_count, want.trailer.event_count);
  EXPECT_EQ(got.trailer.final_state_digest, want.trailer.final_state_digest);
  ASSERT_EQ(got.skipped.size(), want.skipped.size());
  for (size_t i = 0; i < want.skipped.size(); ++i) {
    EXPECT_EQ(got.skipped[i].offset, want.skipped[i].offset);
    EXPECT_EQ(got.skipped[i].record, want.skipped[i].record);
  }
  EXPECT_EQ(got.offset, want.offset);
  EXPECT_EQ(got.records, want.records);
}

// Batch shapes: one event per hand-over, sizes that do not divide the trace, the default.
std::vector<ReadAheadOptions> Shapes() {
  std::vector<ReadAheadOptions> shapes(4);
  shapes[0].batch_events = 1;
  shapes[0].batches = 2;
  shapes[1].batch_events = 7;
  shapes[1].batches = 3;
  shapes[2].batch_events = 256;
  shapes[2].batch_bytes = 500;  // Handed over early, by bytes.
  return shapes;                // shapes[3]: the defaults.
}

TEST(ReadAheadTest, GivesTheWrappedReadersEventsPositionsAndEnd) {
  const std::string bytes = SampleTrace(1000, "complete.trace");
  const Read want = ReadDirect(bytes);
  ASSERT_TRUE(want.open.ok()) << want.open;
  ASSERT_EQ(want.steps.size(), 1000u);
  ASSERT_EQ(want.end, TraceEnd::kComplete);
  for (const ReadAheadOptions& shape : Shapes()) {
    SCOPED_TRACE(absl::StrCat("batch_events ", shape.batch_events, " batches ", shape.batches));
    ExpectSameRead(want, ReadAheadOf(bytes, shape));
    ExpectSameRead(want, ReadAheadOf(bytes, shape, {}, /*view=*/true));
  }
}

TEST(ReadAheadTest, EmptyTraceEndsAtOnce) {
  const std::string bytes = SampleTrace(0, "empty.trace");
  const Read want = ReadDirect(bytes);
  ASSERT_TRUE(want.steps.empty());
  for (const ReadAheadOptions& shape : Shapes()) ExpectSameRead(want, ReadAheadOf(bytes, shape));
}

TEST(ReadAheadTest, CorruptionIsReportedAfterTheEventsBeforeIt) {
  std::string bytes = SampleTrace(300, "corrupt.trace");
  const std::vector<size_t> starts = RecordStarts(bytes);
  // Records: header, snapshot core, one page, then the events. Damage event 123's payload.
  const size_t at = starts[3 + 122] + 12;
  bytes[at] = static_cast<char>(bytes[at] ^ 0x40);
  const Read want = ReadDirect(bytes);
  ASSERT_EQ(want.steps.size(), 122u);
  ASSERT_EQ(want.error.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(want.error.message()), HasSubstr("checksum mismatch"));
  for (const ReadAheadOptions& shape : Shapes()) {
    ExpectSameRead(want, ReadAheadOf(bytes, shape));
    ExpectSameRead(want, ReadAheadOf(bytes, shape, {}, /*view=*/true));
  }

  // With skip_corrupt the damaged record is listed and reading goes on.
  TraceReaderOptions skip;
  skip.skip_corrupt = true;
  const Read skipped = ReadDirect(bytes, skip);
  ASSERT_EQ(skipped.steps.size(), 299u);
  ASSERT_EQ(skipped.skipped.size(), 1u);
  for (const ReadAheadOptions& shape : Shapes()) {
    ExpectSameRead(skipped, ReadAheadOf(bytes, shape, skip));
  }
}

TEST(ReadAheadTest, TornTailEndsLikeTheWrappedReader) {
  const std::string bytes = SampleTrace(50, "torn.trace");
  const std::vector<size_t> starts = RecordStarts(bytes);
  const std::string torn = bytes.substr(0, starts[3 + 40] + 5);  // Inside event 41's record.
  const Read want = ReadDirect(torn);
  ASSERT_EQ(want.steps.size(), 40u);
  ASSERT_EQ(want.end, TraceEnd::kTornTail);
  for (const ReadAheadOptions& shape : Shapes()) ExpectSameRead(want, ReadAheadOf(torn, shape));
}

TEST(ReadAheadTest, NextViewOfAPlainReaderIsItsNext) {
  const std::string bytes = SampleTrace(100, "view.trace");
  auto r = TraceReader::FromBytes(bytes, "t.trace");
  ASSERT_TRUE(r.ok());
  ExpectSameRead(ReadDirect(bytes), Drain(**r, /*view=*/true));
}

TEST(ReadAheadTest, LargeEventsReadTheSame) {
  // Events whose records exceed kLargeEventBytes (their slots drop the storage when reused).
  const std::string path = testing_util::TestTempPath("large.trace");
  auto writer = TraceWriter::Create(path, SampleHeader(), SampleSnapshot(1));
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (int i = 1; i <= 40; ++i) {
    ExitEvent e = SampleEvent(i);
    e.memory_writes.clear();
    e.known &= ~kFieldMemoryDigest;
    e.kind = RecordedKind::kVmmError;
    e.error = std::string(i % 3 == 0 ? 100000 : 10, static_cast<char>('a' + i % 26));
    ASSERT_TRUE((*writer)->Append(e).ok());
  }
  ASSERT_TRUE((*writer)->Close(kDigest).ok());
  auto direct = TraceReader::Open(path);
  ASSERT_TRUE(direct.ok()) << direct.status();
  const Read want = Drain(**direct);
  ASSERT_EQ(want.steps.size(), 40u);
  EXPECT_EQ(want.steps[2].event.error.size(), 100000u);
  for (const ReadAheadOptions& shape : Shapes()) {
    for (bool view : {false, true}) {
      auto inner = TraceReader::Open(path);
      ASSERT_TRUE(inner.ok());
      std::unique_ptr<TraceReader> ahead = ReadAhead(*std::move(inner), shape);
      ExpectSameRead(want, Drain(*ahead, view));
    }
  }
  remove(path.c_str());
}

TEST(ReadAheadTest, BeforeTheEndNoEndIsReported) {
  const std::string bytes = SampleTrace(100, "midway.trace");
  auto inner = TraceReader::FromBytes(bytes, "t.trace");
  ASSERT_TRUE(inner.ok());
  std::unique_ptr<TraceReader> r = ReadAhead(*std::move(inner));
  ExitEvent e;
  ASSERT_TRUE(*r->Next(&e));
  EXPECT_EQ(r->end(), TraceEnd::kNoTrailer);
  EXPECT_EQ(r->trailer().event_count, 0u);
  EXPECT_TRUE(r->skipped().empty());
  EXPECT_EQ(r->header().producer, SampleHeader().producer);
  EXPECT_EQ(r->snapshot().vcpus.size(), SampleSnapshot(1).vcpus.size());
}

TEST(ReadAheadTest, DroppedBeforeTheEndStopsItsWorker) {
  const std::string bytes = SampleTrace(5000, "dropped.trace");
  for (int taken : {0, 1, 3, 700}) {
    auto inner = TraceReader::FromBytes(bytes, "t.trace");
    ASSERT_TRUE(inner.ok());
    ReadAheadOptions o;
    o.batch_events = 16;
    o.batches = 2;
    std::unique_ptr<TraceReader> r = ReadAhead(*std::move(inner), o);
    ExitEvent e;
    for (int i = 0; i < taken; ++i) {
      ASSERT_TRUE(*r->Next(&e));
      EXPECT_EQ(e.seq, static_cast<uint64_t>(i + 1));
    }
    r.reset();  // Must return (the worker waits for a free batch) and leak nothing (ASan).
  }
}

// Threads of this process (/proc/self/task).
int ThreadCount() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (const dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// A live capture read through a pipe whose writer stops writing (but keeps it open): a reader
// dropped early, e.g. after unusable input, must not wait for the writer. The worker is left
// blocked in read(2) and finishes on its own once the pipe closes.
TEST(ReadAheadTest, DroppedWhileThePipeStallsDoesNotWaitForTheWriter) {
  const std::string bytes = SampleTrace(100, "stalled.trace");
  const std::vector<size_t> starts = RecordStarts(bytes);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  // Header, snapshot and 20 events; the rest never comes while the reader lives.
  const std::string prefix = bytes.substr(0, starts[3 + 20]);
  const int threads = ThreadCount();
  ASSERT_LT(prefix.size(), 60000u);  // Fits the pipe buffer: the write does not block.
  ASSERT_EQ(write(fds[1], prefix.data(), prefix.size()), static_cast<ssize_t>(prefix.size()));
  auto inner = TraceReader::Open(absl::StrCat("/dev/fd/", fds[0]));
  ASSERT_TRUE(inner.ok()) << inner.status();
  ReadAheadOptions o;
  o.batch_events = 4;  // Events come a batch at a time: 5 full batches, then the stall.
  o.batches = 16;      // Room for all of them: the worker goes on to block in read(2).
  o.stop_wait = absl::Milliseconds(50);
  std::unique_ptr<TraceReader> r = ReadAhead(*std::move(inner), o);
  ExitEvent e;
  for (int i = 1; i <= 20; ++i) {  // All there is: the worker has gone on to read event 21.
    ASSERT_TRUE(*r->Next(&e));
    EXPECT_EQ(e.seq, static_cast<uint64_t>(i));
  }
  r.reset();      // Returns after stop_wait although the worker is blocked reading the pipe.
  close(fds[1]);  // Now the left-behind worker sees the end and exits.
  close(fds[0]);
  // Before the process exits: wait (bounded) until the worker has gone.
  for (int i = 0; i < 1000 && ThreadCount() > threads; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(ThreadCount(), threads);
}

}  // namespace
}  // namespace msrtrace
