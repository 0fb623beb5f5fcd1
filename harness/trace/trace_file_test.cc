// The binary trace format's reader and writer, tortured in the style of leveldb's log_test.cc:
// test names read as the format's error specification (docs/trace-format.md).
//
// Traces with deliberate defects are built here byte by byte from the specification (prelude,
// framing, masked CRC), independently of trace_file.cc, so these tests also check that the
// implementation matches the document.
#include "harness/trace/trace_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/core/test_tmpdir.h"
#include "harness/trace/trace_framing.h"
#include "harness/trace/trace_proto.h"
#include "harness/trace/trace_test_util.h"

// Counts heap allocations, for the steady-state test of Next().
static std::atomic<uint64_t> g_allocations{0};
void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = malloc(n == 0 ? 1 : n);
  if (p == nullptr) abort();
  return p;
}
// GCC 12 pairs the replaced operator delete with the inlined malloc above and warns
// (-Wmismatched-new-delete); they are a matched pair by construction.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { free(p); }
void operator delete(void* p, size_t) noexcept { free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace msrtrace {
namespace {

using ::msrtrace::testing_util::ExpectEventEq;
using ::msrtrace::testing_util::ExpectHeaderEq;
using ::msrtrace::testing_util::ExpectSnapshotEq;
using ::msrtrace::testing_util::SampleEvent;
using ::msrtrace::testing_util::SampleHeader;
using ::msrtrace::testing_util::SampleSnapshot;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t kDigest = 0x0123456789abcdefull;

// A path in this process's private temporary directory (removed at exit), named after the test.
std::string TempPath(absl::string_view suffix) {
  return testing_util::TestTempPath(
      absl::StrCat(::testing::UnitTest::GetInstance()->current_test_info()->name(), suffix));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Writes a trace of `events` SampleEvent()s (seq 1..events) and returns its path.
std::string WriteSample(absl::string_view suffix, int events, int pages = 1,
                        TraceWriterOptions options = {}) {
  std::string path = TempPath(suffix);
  auto writer = TraceWriter::Create(path, SampleHeader(), SampleSnapshot(pages), options);
  EXPECT_TRUE(writer.ok()) << writer.status();
  if (!writer.ok()) return path;
  for (int i = 1; i <= events; ++i) EXPECT_TRUE((*writer)->Append(SampleEvent(i)).ok());
  EXPECT_TRUE((*writer)->Close(kDigest).ok());
  return path;
}

// Everything a reader produced.
struct ReadResult {
  absl::Status open;              // Open()/FromBytes() status.
  absl::Status next;              // First error of Next(), if any.
  std::vector<ExitEvent> events;  // Events before the end or the error.
  TraceEnd end = TraceEnd::kComplete;
  TraceTrailer trailer;
  uint64_t records = 0;
  uint64_t offset = 0;
};

ReadResult Drain(absl::StatusOr<std::unique_ptr<TraceReader>> reader) {
  ReadResult r;
  r.open = reader.status();
  if (!reader.ok()) return r;
  ExitEvent e;
  for (;;) {
    absl::StatusOr<bool> more = (*reader)->Next(&e);
    if (!more.ok()) {
      r.next = more.status();
      // Errors are sticky.
      EXPECT_EQ((*reader)->Next(&e).status(), more.status());
      break;
    }
    if (!*more) {
      r.end = (*reader)->end();
      r.trailer = (*reader)->trailer();
      EXPECT_FALSE(*(*reader)->Next(&e));  // The end is sticky too.
      break;
    }
    r.events.push_back(e);
  }
  r.records = (*reader)->records();
  r.offset = (*reader)->offset();
  return r;
}

ReadResult ReadBytes(std::string bytes, std::string name = "t.bin") {
  return Drain(TraceReader::FromBytes(std::move(bytes), std::move(name)));
}

// --- The format, from the specification ---

std::string U16(uint16_t v) { return std::string{static_cast<char>(v), static_cast<char>(v >> 8)}; }
std::string U32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

std::string Prelude(uint16_t major = kTraceFormatMajor, uint16_t minor = kTraceFormatMinor,
                    uint32_t flags = 0) {
  return "MSRTRACE" + U16(major) + U16(minor) + U32(flags);
}

// [u32 length][u32 masked crc32 of type + payload][u8 type][payload].
std::string Record(uint8_t type, const std::string& payload) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, &type, 1);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(payload.data()), payload.size());
  const uint32_t c = static_cast<uint32_t>(crc);
  const uint32_t masked = ((c >> 15) | (c << 17)) + 0xa282ead8u;
  return U32(payload.size()) + U32(masked) + std::string(1, static_cast<char>(type)) + payload;
}

enum : uint8_t { kHeader = 1, kCore = 2, kPage = 3, kEvent = 4, kTrailer = 5 };

std::string HeaderRecord(uint32_t major = kTraceFormatMajor, uint32_t minor = kTraceFormatMinor) {
  proto::TraceHeader p;
  ToProto(SampleHeader(), &p);
  p.set_format_major(major);
  p.set_format_minor(minor);
  return Record(kHeader, p.SerializeAsString());
}

// The snapshot core and its page records.
std::string SnapshotRecords(int pages = 1) {
  const Snapshot s = SampleSnapshot(pages);
  proto::Snapshot core;
  SnapshotCoreToProto(s, &core);
  std::string out = Record(kCore, core.SerializeAsString());
  for (uint64_t gpa : s.memory.PageAddresses()) {
    proto::MemoryPage p;
    PageToProto(gpa, s.memory.Page(gpa), &p);
    out += Record(kPage, p.SerializeAsString());
  }
  return out;
}

std::string EventRecord(uint64_t seq) {
  proto::ExitEvent p;
  ToProto(SampleEvent(seq), &p);
  return Record(kEvent, p.SerializeAsString());
}

std::string TrailerRecord(uint64_t count, uint64_t digest = kDigest) {
  proto::Trailer p;
  ToProto(TraceTrailer{count, digest}, &p);
  return Record(kTrailer, p.SerializeAsString());
}

// Prelude, header and a one-page snapshot: everything before the events.
std::string Start() { return Prelude() + HeaderRecord() + SnapshotRecords(); }

// Record boundaries (offsets where a record starts, plus the end), and the record types.
struct Layout {
  std::vector<size_t> starts;
  std::vector<uint8_t> types;
};
Layout Walk(const std::string& bytes) {
  Layout l;
  size_t pos = 16;
  while (pos + 9 <= bytes.size()) {
    l.starts.push_back(pos);
    l.types.push_back(static_cast<uint8_t>(bytes[pos + 8]));
    uint32_t len = 0;
    for (int i = 0; i < 4; ++i) {
      len |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[pos + i])) << (8 * i);
    }
    pos += 9 + len;
  }
  l.starts.push_back(pos);
  return l;
}

std::string Gzip(const std::string& bytes) {
  z_stream zs{};
  EXPECT_EQ(
      deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
      Z_OK);
  std::string out(deflateBound(&zs, bytes.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = bytes.size();
  zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
  zs.avail_out = out.size();
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// --- Round trips ---

void ExpectSampleTrace(const ReadResult& r, int events) {
  ASSERT_TRUE(r.open.ok()) << r.open;
  ASSERT_TRUE(r.next.ok()) << r.next;
  ASSERT_EQ(r.events.size(), static_cast<size_t>(events));
  for (int i = 0; i < events; ++i) ExpectEventEq(r.events[i], SampleEvent(i + 1));
  EXPECT_EQ(r.end, TraceEnd::kComplete);
  EXPECT_EQ(r.trailer.event_count, static_cast<uint64_t>(events));
  EXPECT_EQ(r.trailer.final_state_digest, kDigest);
}

// The record checksum is zlib's CRC-32 (docs/trace-format.md), computed by the framing's own
// table-driven code: every length around the 8-byte steps, every alignment.
TEST(TraceFileTest, Crc32IsZlibsCrc32) {
  std::string data(300, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + (i >> 3));
  for (size_t at = 0; at < 8; ++at) {
    for (size_t len = 0; len + at <= data.size(); len += (len < 40 ? 1 : 37)) {
      const uLong want =
          crc32(0L, reinterpret_cast<const Bytef*>(data.data() + at), static_cast<uInt>(len));
      EXPECT_EQ(Crc32(data.data() + at, len), static_cast<uint32_t>(want))
          << "offset " << at << " length " << len;
    }
  }
}

TEST(TraceFileTest, RoundTripPlain) {
  const std::string path = WriteSample(".bin", 10, 2);
  const std::string bytes = ReadFile(path);
  EXPECT_THAT(bytes, StartsWith("MSRTRACE"));
  auto reader = TraceReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  TraceHeader want = SampleHeader();
  ExpectHeaderEq((*reader)->header(), want);
  ExpectSnapshotEq((*reader)->snapshot(), SampleSnapshot(2));
  const ReadResult r = Drain(std::move(reader));
  ExpectSampleTrace(r, 10);
  EXPECT_EQ(r.records, 1u + 1u + 2u + 10u + 1u);
  EXPECT_EQ(r.offset, bytes.size());
}

TEST(TraceFileTest, RoundTripGzip) {
  TraceWriterOptions options;
  options.gzip = true;
  const std::string path = WriteSample(".bin", 10, 2, options);
  const std::string bytes = ReadFile(path);
  ASSERT_GE(bytes.size(), 2u);
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), 0x1f);  // Detected by content, not by name.
  EXPECT_EQ(static_cast<uint8_t>(bytes[1]), 0x8b);
  auto reader = TraceReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ExpectSnapshotEq((*reader)->snapshot(), SampleSnapshot(2));
  ExpectSampleTrace(Drain(std::move(reader)), 10);
  ExpectSampleTrace(ReadBytes(bytes), 10);
}

TEST(TraceFileTest, GzSuffixImpliesGzip) {
  const std::string bytes = ReadFile(WriteSample(".bin.gz", 3));
  ASSERT_GE(bytes.size(), 2u);
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), 0x1f);
  ExpectSampleTrace(ReadBytes(bytes), 3);
}

TEST(TraceFileTest, ConcatenatedGzipMembersReadAsOneStream) {
  const std::string plain = ReadFile(WriteSample(".bin", 4));
  const size_t cut = plain.size() / 2;
  ExpectSampleTrace(ReadBytes(Gzip(plain.substr(0, cut)) + Gzip(plain.substr(cut))), 4);
}

TEST(TraceFileTest, EmptyTraceHasHeaderSnapshotTrailer) {
  const std::string path = TempPath(".bin");
  Snapshot empty;
  auto writer = TraceWriter::Create(path, TraceHeader{}, empty);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Close(0).ok());
  const std::string bytes = ReadFile(path);
  EXPECT_EQ(Walk(bytes).types, (std::vector<uint8_t>{kHeader, kCore, kTrailer}));
  const ReadResult r = ReadBytes(bytes);
  ASSERT_TRUE(r.open.ok()) << r.open;
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.end, TraceEnd::kComplete);
  EXPECT_EQ(r.records, 3u);
}

TEST(TraceFileTest, LargeSnapshotSplitsPages) {
  // 300 pages (1.2 MiB) would not fit one record under a 1 MiB cap; on disk each is its own.
  const std::string path = WriteSample(".bin", 1, 300);
  const std::string bytes = ReadFile(path);
  const Layout l = Walk(bytes);
  ASSERT_EQ(l.types.size(), 1u + 1u + 300u + 1u + 1u);
  EXPECT_EQ(l.types[0], kHeader);
  EXPECT_EQ(l.types[1], kCore);
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ(l.types[2 + i], kPage);
    EXPECT_LT(l.starts[3 + i] - l.starts[2 + i], kPageSize + 32) << "page record " << i;
  }
  EXPECT_EQ(l.types[302], kEvent);
  EXPECT_EQ(l.types[303], kTrailer);
  auto reader = TraceReader::FromBytes(bytes);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ExpectSnapshotEq((*reader)->snapshot(), SampleSnapshot(300));
}

TEST(TraceFileTest, WriterRefusesARecordAboveTheCap) {
  Snapshot s = SampleSnapshot(0);
  s.handler_states[0] = std::string(5 << 20, 'x');
  auto writer = TraceWriter::Create(TempPath(".bin"), SampleHeader(), s);
  ASSERT_FALSE(writer.ok());
  EXPECT_THAT(std::string(writer.status().message()),
              HasSubstr("more than the 4194304-byte record cap"));
}

// Issue 9 item 4: the documented limit of 16,383 vCPUs did not fit the 4 MiB snapshot record
// ("snapshot record of N bytes exceeds the 4194304-byte record cap"). Format 1.1 splits the
// vCPUs over several snapshot records; a snapshot that fits one record is still written as 1.0.
TEST(TraceFileTest, SnapshotOf16383VcpusIsSplitOverRecordsAndReadsBack) {
  Snapshot s = SampleSnapshot(1);
  s.vcpu_slot_names.clear();
  for (int j = 0; j < 4; ++j) {
    s.vcpu_slot_names.push_back(absl::StrCat(std::string(100, 'S'), "_", j));
  }
  const Vcpu model = s.vcpus[0];
  s.vcpus.clear();
  for (uint32_t id = 0; id < 16383; ++id) {
    Vcpu v = model;
    v.id = id;
    v.regs.rip = 0xffffffff81000000ull + id;
    v.slots.assign(4, 0x123456789abcull + id);
    s.vcpus.push_back(v);
  }
  TraceHeader h = SampleHeader();
  h.vcpu_count = 16383;
  const std::string path = TempPath(".bin");
  auto writer = TraceWriter::Create(path, h, s);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(SampleEvent(1)).ok());
  ASSERT_TRUE((*writer)->Close(kDigest).ok());
  const std::string bytes = ReadFile(path);
  const Layout l = Walk(bytes);
  ASSERT_GE(l.types.size(), 5u);
  size_t cores = 0;
  for (uint8_t t : l.types) cores += t == kCore ? 1 : 0;
  EXPECT_GT(cores, 1u);
  EXPECT_EQ(bytes[10], 1);  // Minor version 1.
  auto reader = TraceReader::FromBytes(bytes);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->header().format_minor, 1u);
  ExpectSnapshotEq((*reader)->snapshot(), s);
  ExitEvent e;
  EXPECT_TRUE(*(*reader)->Next(&e));
  EXPECT_FALSE(*(*reader)->Next(&e));
  EXPECT_EQ((*reader)->end(), TraceEnd::kComplete);

  // Small snapshots keep format 1.0 byte for byte.
  const std::string small = ReadFile(WriteSample(".small.bin", 1));
  EXPECT_EQ(small[10], 0);
}

TEST(TraceFileTest, WriterRejectsInvalidHeaderSnapshotAndEvents) {
  TraceHeader h = SampleHeader();
  h.vcpu_count = 0;
  auto bad = TraceWriter::Create(TempPath(".bin"), h, SampleSnapshot(0));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("header.vcpu_count is 0"));

  auto writer = TraceWriter::Create(TempPath(".bin"), SampleHeader(), SampleSnapshot(0));
  ASSERT_TRUE(writer.ok());
  ExitEvent e = SampleEvent(1);
  e.exit.instruction_length = 16;
  const absl::Status s = (*writer)->Append(e);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("event seq 1: exit.instruction_length 16"));
  EXPECT_EQ((*writer)->events_written(), 0u);
}

TEST(TraceFileTest, WriterRejectsNonIncreasingSeq) {
  auto writer = TraceWriter::Create(TempPath(".bin"), SampleHeader(), SampleSnapshot(0));
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(SampleEvent(5)).ok());
  const absl::Status s = (*writer)->Append(SampleEvent(5));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("event seq 5 is not greater than the previous"));
  EXPECT_TRUE((*writer)->Append(SampleEvent(6)).ok());
  EXPECT_EQ((*writer)->events_written(), 2u);
  ASSERT_TRUE((*writer)->Close(0).ok());
  EXPECT_EQ((*writer)->Append(SampleEvent(7)).code(), absl::StatusCode::kFailedPrecondition);
}

// Format 1.2 (docs/trace-format.md, Versioning): a trace that uses MSR routing or host events
// says so in its version, in the prelude and the header record; every other trace stays 1.0.
TEST(TraceFileTest, RoutingOrHostEventsAreWrittenAsFormat12OtherTracesStay10) {
  struct Case {
    const char* what;
    TraceHeader header;
    uint16_t minor;
  };
  std::vector<Case> cases = {{"plain", SampleHeader(), 0},
                             {"exit reasons", SampleHeader(), 2},
                             {"filter", SampleHeader(), 2},
                             {"userspace set", SampleHeader(), 2},
                             {"host events", SampleHeader(), 2}};
  cases[1].header.routing.user_space_msr_mask = kMsrExitReasonUnknown;
  ASSERT_TRUE(DenyListFilter({0x277}, &cases[2].header.routing.filter).ok());
  cases[3].header.routing.userspace_handler_set = "reference+fifo";
  cases[4].header.host_events = true;
  for (const Case& c : cases) {
    std::string bytes;
    auto writer = TraceWriter::CreateInMemory(&bytes, c.header, SampleSnapshot(0));
    ASSERT_TRUE(writer.ok()) << c.what << ": " << writer.status();
    ASSERT_TRUE((*writer)->Close(0).ok()) << c.what;
    ASSERT_GT(bytes.size(), 12u);
    EXPECT_EQ(static_cast<uint8_t>(bytes[8]) | static_cast<uint8_t>(bytes[9]) << 8, 1) << c.what;
    EXPECT_EQ(static_cast<uint8_t>(bytes[10]) | static_cast<uint8_t>(bytes[11]) << 8, c.minor)
        << c.what;
    auto reader = TraceReader::FromBytes(bytes);
    ASSERT_TRUE(reader.ok()) << c.what << ": " << reader.status();
    EXPECT_EQ((*reader)->header().format_minor, c.minor) << c.what;
    EXPECT_EQ((*reader)->header().host_events, c.minor == kHostEventsMinor) << c.what;
  }
}

// A reader before 1.2 would take a host event for a guest exit: a writer writes one only into a
// trace whose version announces it.
TEST(TraceFileTest, WriterRefusesAHostEventInATraceThatDoesNotDeclareThem) {
  ExitEvent host = SampleEvent(1);
  host.host_initiated = true;
  std::string bytes;
  auto writer = TraceWriter::CreateInMemory(&bytes, SampleHeader(), SampleSnapshot(0));
  ASSERT_TRUE(writer.ok());
  const absl::Status s = (*writer)->Append(host);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("event seq 1 is host-initiated"));
  EXPECT_TRUE((*writer)->Append(SampleEvent(2)).ok());  // Guest exits still go in.

  TraceHeader declared = SampleHeader();
  declared.host_events = true;
  writer = TraceWriter::CreateInMemory(&bytes, declared, SampleSnapshot(0));
  ASSERT_TRUE(writer.ok());
  EXPECT_TRUE((*writer)->Append(host).ok());
}

// The reader accepts host events in a 1.2 trace and, from writers that predate 1.2, in a 1.0
// trace (built here with the framing functions, as such a writer did).
TEST(TraceFileTest, ReaderAcceptsHostEventsInFormat10And12) {
  ExitEvent host = SampleEvent(1);
  host.host_initiated = true;
  for (const bool declared : {false, true}) {
    TraceHeader h = SampleHeader();
    h.host_events = declared;
    std::string bytes;
    ASSERT_TRUE(AppendTraceStart(h, SampleSnapshot(0), &bytes).ok());
    proto::ExitEvent scratch;
    ASSERT_TRUE(AppendEventRecord(host, &scratch, &bytes).ok());
    AppendTrailerRecord(TraceTrailer{1, kDigest}, &bytes);
    const ReadResult r = ReadBytes(bytes);
    ASSERT_TRUE(r.open.ok()) << r.open;
    ASSERT_TRUE(r.next.ok()) << r.next;
    EXPECT_EQ(r.end, TraceEnd::kComplete);
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_TRUE(r.events[0].host_initiated);
    EXPECT_EQ(static_cast<uint8_t>(bytes[10]), declared ? kHostEventsMinor : 0u);
  }
}

TEST(TraceFileTest, InPlaceWriterDestroyedWithoutCloseLeavesNoTrailer) {
  const std::string path = TempPath(".bin");
  {
    TraceWriterOptions in_place;
    in_place.atomic = false;
    auto writer = TraceWriter::Create(path, SampleHeader(), SampleSnapshot(1), in_place);
    ASSERT_TRUE(writer.ok());
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE((*writer)->Append(SampleEvent(i)).ok());
  }
  const ReadResult r = Drain(TraceReader::Open(path));
  ASSERT_TRUE(r.open.ok()) << r.open;
  EXPECT_TRUE(r.next.ok()) << r.next;
  EXPECT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.end, TraceEnd::kNoTrailer);
}

// --- Torture: truncation and bit flips ---

TEST(TraceFileTest, TruncationAtEveryByteNeverCrashesAndKeepsCompleteRecords) {
  const std::string bytes = ReadFile(WriteSample(".bin", 3, 1));
  const Layout l = Walk(bytes);
  ASSERT_EQ(l.types,
            (std::vector<uint8_t>{kHeader, kCore, kPage, kEvent, kEvent, kEvent, kTrailer}));
  const size_t snapshot_end = l.starts[3];  // After the page record.
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at byte ", cut));
    const ReadResult r = ReadBytes(bytes.substr(0, cut));
    if (cut == 0) {
      EXPECT_EQ(r.open.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(r.open.message()), HasSubstr("empty file"));
      continue;
    }
    if (cut < snapshot_end) {
      // Before the first event: the header or snapshot is incomplete, which Open() reports.
      EXPECT_EQ(r.open.code(), absl::StatusCode::kDataLoss) << r.open;
      EXPECT_THAT(std::string(r.open.message()), StartsWith("t.bin: byte "));
      continue;
    }
    ASSERT_TRUE(r.open.ok()) << r.open;
    ASSERT_TRUE(r.next.ok()) << r.next;
    // Exactly the events whose records are complete.
    size_t complete = 0;
    for (size_t i = 3; i < 6; ++i) complete += l.starts[i + 1] <= cut ? 1 : 0;
    ASSERT_EQ(r.events.size(), complete);
    for (size_t i = 0; i < complete; ++i) ExpectEventEq(r.events[i], SampleEvent(i + 1));
    const bool at_boundary = std::find(l.starts.begin(), l.starts.end(), cut) != l.starts.end();
    EXPECT_EQ(r.end, at_boundary ? TraceEnd::kNoTrailer : TraceEnd::kTornTail);
  }
  ExpectSampleTrace(ReadBytes(bytes), 3);
}

TEST(TraceFileTest, BitFlipInEveryByteIsDetectedOrHarmless) {
  const std::string bytes = ReadFile(WriteSample(".bin", 3, 1));
  const Layout l = Walk(bytes);
  const ReadResult good = ReadBytes(bytes);
  ExpectSampleTrace(good, 3);
  const size_t trailer_start = l.starts[l.starts.size() - 2];
  int detected = 0, harmless = 0;
  for (size_t pos = 0; pos < bytes.size(); ++pos) {
    for (int bit = 0; bit < 8; ++bit) {
      SCOPED_TRACE(absl::StrCat("flip bit ", bit, " of byte ", pos));
      std::string bad = bytes;
      bad[pos] = static_cast<char>(bad[pos] ^ (1 << bit));
      const ReadResult r = ReadBytes(bad);
      if (!r.open.ok() || !r.next.ok() || r.end != TraceEnd::kComplete) {
        ++detected;
        // A flip in a CRC, type byte or payload is always a checksum mismatch.
        bool crc_covered = false;
        for (size_t i = 0; i + 1 < l.starts.size(); ++i) {
          if (pos >= l.starts[i] + 4 && pos < l.starts[i + 1]) crc_covered = true;
        }
        if (crc_covered && pos >= trailer_start) {
          // The last record: nothing intact follows it, so a damaged trailer reads as a torn
          // tail after every event.
          ASSERT_TRUE(r.next.ok()) << r.next;
          EXPECT_EQ(r.end, TraceEnd::kTornTail);
          EXPECT_EQ(r.events.size(), 3u);
        } else if (crc_covered) {
          const absl::Status& s = r.open.ok() ? r.next : r.open;
          EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
          EXPECT_THAT(std::string(s.message()), HasSubstr("checksum mismatch"));
        }
        continue;
      }
      // Not detected: then the trace reads exactly as before (e.g. a flag bit of the prelude).
      ++harmless;
      EXPECT_GE(pos, 12u) << "only the prelude flags may change harmlessly";
      EXPECT_LT(pos, 16u);
      ASSERT_EQ(r.events.size(), good.events.size());
      for (size_t i = 0; i < r.events.size(); ++i) ExpectEventEq(r.events[i], good.events[i]);
    }
  }
  EXPECT_EQ(harmless, 4 * 8);  // The 32 flag bits, which 1.x readers ignore.
  EXPECT_GT(detected, 0);
}

TEST(TraceFileTest, ChecksumMismatchNamesFileByteOffsetAndRecord) {
  std::string bytes = ReadFile(WriteSample(".bin", 3, 1));
  const Layout l = Walk(bytes);
  const size_t second_event = l.starts[4];
  bytes[second_event + 12] ^= 0x40;
  const ReadResult r = ReadBytes(bytes, "trace.bin");
  ASSERT_TRUE(r.open.ok());
  EXPECT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.next.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(r.next.message(),
            absl::StrFormat("trace.bin: byte %u (record 4): checksum mismatch; corrupt, not a torn "
                            "tail: 2 intact records follow from byte %u (msrtrace replay "
                            "--skip-corrupt reads past it)",
                            second_event, l.starts[5]));
}

TEST(TraceFileTest, BadLengthAboveCapRejectedWithoutAllocating) {
  // The record header claims ~4 GiB. A reader that allocated or read the payload first would
  // run out of memory; the cap is checked on the header alone. Followed by an intact record it
  // is corruption; at the end of the file, a torn tail.
  const std::string huge = U32(0xfffffff0u) + U32(0) + std::string(1, kEvent);
  const ReadResult r = ReadBytes(Start() + EventRecord(1) + huge + EventRecord(2));
  ASSERT_TRUE(r.open.ok()) << r.open;
  EXPECT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.next.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.next.message()),
              HasSubstr("record length 4294967280 exceeds the 4194304-byte cap; corrupt, not a "
                        "torn tail: 1 intact record follows"));
  const ReadResult at_end = ReadBytes(Start() + EventRecord(1) + huge);
  ASSERT_TRUE(at_end.next.ok()) << at_end.next;
  EXPECT_EQ(at_end.events.size(), 1u);
  EXPECT_EQ(at_end.end, TraceEnd::kTornTail);

  const ReadResult in_header = ReadBytes(Prelude() + huge);
  EXPECT_EQ(in_header.open.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(in_header.open.message()),
              HasSubstr("t.bin: byte 16 (record 0): record length 4294967280 exceeds"));
}

// --- Prelude and versions ---

TEST(TraceFileTest, WrongMagic) {
  const ReadResult r = ReadBytes("NOTATRACEFILE-----------------------");
  EXPECT_EQ(r.open.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.open.message(), "t.bin: byte 0: not a trace file (no \"MSRTRACE\" magic)");
  // Also when the non-trace is gzip-compressed.
  EXPECT_EQ(ReadBytes(Gzip("hello, world")).open.code(), absl::StatusCode::kInvalidArgument);
  // A file cut inside the magic is a truncated trace, not another kind of file.
  EXPECT_EQ(ReadBytes("MSRT").open.code(), absl::StatusCode::kDataLoss);
}

TEST(TraceFileTest, NewerMajorVersionRejected) {
  const ReadResult r = ReadBytes(Prelude(2, 0) + HeaderRecord(2, 0) + SnapshotRecords());
  EXPECT_EQ(r.open.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.open.message(), "t.bin: byte 8: written by format 2.x; this reader supports 1.x");
}

TEST(TraceFileTest, OlderMinorVersionAccepted) {
  // Minor 0 is the oldest 1.x; a reader of any later 1.y reads it.
  const ReadResult r = ReadBytes(Prelude(1, 0) + HeaderRecord(1, 0) + SnapshotRecords() +
                                 EventRecord(1) + TrailerRecord(1));
  ASSERT_TRUE(r.open.ok()) << r.open;
  ASSERT_TRUE(r.next.ok()) << r.next;
  EXPECT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.end, TraceEnd::kComplete);
}

TEST(TraceFileTest, NewerMinorVersionWithUnknownFieldsAndSkippableRecordsAccepted) {
  // A 1.9 writer added a field to events (number 100) and an optional record type (64+).
  std::string event = EventRecord(1);
  proto::ExitEvent p;
  ToProto(SampleEvent(2), &p);
  std::string payload = p.SerializeAsString();
  payload += std::string("\xa0\x06\x2a", 3);  // Field 100, varint 42.
  auto reader = TraceReader::FromBytes(Prelude(1, 9) + HeaderRecord(1, 9) + SnapshotRecords() +
                                       Record(70, "metadata a 1.0 reader does not know") + event +
                                       Record(kEvent, payload) + TrailerRecord(2));
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->header().format_minor, 9u);
  const ReadResult r = Drain(std::move(reader));
  ASSERT_TRUE(r.next.ok()) << r.next;
  ASSERT_EQ(r.events.size(), 2u);
  ExpectEventEq(r.events[1], SampleEvent(2));
  EXPECT_EQ(r.end, TraceEnd::kComplete);
  EXPECT_EQ(r.records, 7u);  // The skipped record counts.
}

TEST(TraceFileTest, HeaderRecordVersionMustMatchThePrelude) {
  const ReadResult r = ReadBytes(Prelude(1, 2) + HeaderRecord(1, 3) + SnapshotRecords());
  EXPECT_EQ(r.open.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.open.message()),
              HasSubstr("header record says format 1.3, the file header 1.2"));
}

TEST(TraceFileTest, FileEndingInsideThePreludeIsTruncated) {
  const ReadResult r = ReadBytes(Prelude().substr(0, 11));
  EXPECT_EQ(r.open.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(r.open.message(), "t.bin: byte 11: file ends inside the 16-byte file header");
}

// --- Record order and content ---

TEST(TraceFileTest, FirstRecordMustBeTheHeader) {
  const ReadResult r = ReadBytes(Prelude() + SnapshotRecords());
  EXPECT_EQ(r.open.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.open.message()),
              HasSubstr("(record 0): expected a header record, found a snapshot record"));
}

TEST(TraceFileTest, SnapshotMissingPagesIsAnOpenError) {
  const std::string full = Prelude() + HeaderRecord() + SnapshotRecords(3);
  const Layout l = Walk(full);
  const ReadResult r = ReadBytes(full.substr(0, l.starts[4]) + EventRecord(1));
  EXPECT_EQ(r.open.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.open.message()),
              HasSubstr("(record 4): expected a page record, found a event record"));
  const ReadResult cut = ReadBytes(full.substr(0, l.starts[4]));
  EXPECT_THAT(std::string(cut.open.message()), HasSubstr("file ends before snapshot page 3 of 3"));
}

TEST(TraceFileTest, ExtraPageAfterTheSnapshotIsAnError) {
  const Snapshot s = SampleSnapshot(1);
  proto::MemoryPage p;
  PageToProto(0x90000, s.memory.Page(s.memory.PageAddresses()[0]), &p);
  const ReadResult r = ReadBytes(Start() + Record(kPage, p.SerializeAsString()));
  ASSERT_TRUE(r.open.ok()) << r.open;
  EXPECT_EQ(r.next.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.next.message()),
              HasSubstr("unexpected page record after the snapshot"));
}

TEST(TraceFileTest, InvalidEventContentIsInvalidArgumentNamingTheRecord) {
  ExitEvent e = SampleEvent(2);
  proto::ExitEvent p;
  ToProto(e, &p);
  p.mutable_exit()->set_instruction_length(0);
  const ReadResult r = ReadBytes(Start() + EventRecord(1) + Record(kEvent, p.SerializeAsString()));
  ASSERT_TRUE(r.open.ok());
  EXPECT_EQ(r.next.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.next.message()),
              HasSubstr("(record 4): event seq 2: exit.instruction_length 0 is not in 1..15"));
}

TEST(TraceFileTest, UnparseablePayloadWithAGoodChecksumIsDataLoss) {
  const ReadResult r = ReadBytes(Start() + Record(kEvent, "\xff\xff\xff"));
  ASSERT_TRUE(r.open.ok());
  EXPECT_EQ(r.next.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.next.message()), HasSubstr("event record does not parse"));
}

TEST(TraceFileTest, DuplicateSequenceNumber) {
  const std::string bytes = Start() + EventRecord(1) + EventRecord(2) + EventRecord(2);
  const ReadResult r = ReadBytes(bytes);
  ASSERT_TRUE(r.open.ok());
  EXPECT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.next.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(r.next.message(),
            absl::StrFormat("t.bin: byte %u (record 5): event seq 2 duplicates the previous seq 2",
                            Walk(bytes).starts[5]));
}

TEST(TraceFileTest, OutOfOrderSequenceNumber) {
  const ReadResult r = ReadBytes(Start() + EventRecord(5) + EventRecord(3));
  EXPECT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.next.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.next.message()),
              HasSubstr("event seq 3 is lower than the previous seq 5"));
}

TEST(TraceFileTest, FirstEventMayHaveSequenceNumberZero) {
  const ReadResult r = ReadBytes(Start() + EventRecord(0) + EventRecord(1) + TrailerRecord(2));
  ASSERT_TRUE(r.next.ok()) << r.next;
  EXPECT_EQ(r.events.size(), 2u);
}

TEST(TraceFileTest, TrailerCountMismatch) {
  const ReadResult r = ReadBytes(Start() + EventRecord(1) + EventRecord(2) + TrailerRecord(5));
  EXPECT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.next.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(r.next.message()), HasSubstr("trailer says 5 events, the trace has 2"));
}

TEST(TraceFileTest, DataAfterTrailer) {
  const std::string complete = Start() + EventRecord(1) + TrailerRecord(1);
  const ReadResult one_byte = ReadBytes(complete + "x");
  EXPECT_EQ(one_byte.next.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(one_byte.next.message(),
            absl::StrFormat("t.bin: byte %u (record 5): data after the trailer", complete.size()));
  const ReadResult event = ReadBytes(complete + EventRecord(2));
  EXPECT_THAT(std::string(event.next.message()), HasSubstr("data after the trailer"));
}

TEST(TraceFileTest, UnknownRecordType) {
  for (uint8_t type : {0, 6, 63}) {
    const ReadResult r = ReadBytes(Start() + EventRecord(1) + Record(type, "?"));
    EXPECT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.next.code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(r.next.message()),
                HasSubstr(absl::StrCat("(record 4): unknown record type ", type)));
  }
}

TEST(TraceFileTest, SkippableRecordTypesAreSkipped) {
  const ReadResult r =
      ReadBytes(Start() + Record(64, "a") + EventRecord(1) + Record(255, "") + TrailerRecord(1));
  ASSERT_TRUE(r.next.ok()) << r.next;
  EXPECT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.end, TraceEnd::kComplete);
}

// --- gzip ---

TEST(TraceFileTest, GzipTornTail) {
  const std::string plain = ReadFile(WriteSample(".bin", 50, 1));
  TraceWriterOptions options;
  options.gzip = true;
  const std::string gz = ReadFile(WriteSample(".gz", 50, 1, options));
  const ReadResult full = ReadBytes(gz);
  ExpectSampleTrace(full, 50);
  // Every cut of the compressed file: never a crash; complete events are a prefix; a trace cut
  // before its trailer ends as a torn tail.
  int torn = 0;
  for (size_t cut = 1; cut < gz.size(); ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at compressed byte ", cut));
    const ReadResult r = ReadBytes(gz.substr(0, cut));
    if (!r.open.ok()) {
      // One byte is not even the gzip magic; any longer cut is a truncated trace.
      EXPECT_EQ(r.open.code(),
                cut == 1 ? absl::StatusCode::kInvalidArgument : absl::StatusCode::kDataLoss)
          << r.open;
      continue;
    }
    ASSERT_TRUE(r.next.ok()) << r.next;
    for (size_t i = 0; i < r.events.size(); ++i) ExpectEventEq(r.events[i], SampleEvent(i + 1));
    // Even a cut inside the 8-byte gzip trailer (every record arrived) is a torn tail.
    EXPECT_EQ(r.end, TraceEnd::kTornTail);
    ++torn;
  }
  EXPECT_GT(torn, 0);
}

TEST(TraceFileTest, CorruptGzipDataIsAnErrorNotACrash) {
  TraceWriterOptions options;
  options.gzip = true;
  const std::string gz = ReadFile(WriteSample(".gz", 50, 1, options));
  int errors = 0;
  for (size_t pos = 10; pos < gz.size(); pos += 7) {
    std::string bad = gz;
    bad[pos] ^= 0x10;
    const ReadResult r = ReadBytes(bad);
    if (!r.open.ok() || !r.next.ok() || r.end != TraceEnd::kComplete) ++errors;
  }
  EXPECT_GT(errors, 0);
}

// --- Files, stdin, concurrent reading ---

TEST(TraceFileTest, OpenMissingFileNamesThePath) {
  auto r = TraceReader::Open(TempPath(".does-not-exist"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(".does-not-exist: cannot open"));
}

TEST(TraceFileTest, StdinReading) {
  TraceWriterOptions options;
  options.gzip = true;
  const std::string path = WriteSample(".gz", 4, 1, options);
  const int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const int saved = dup(0);
  ASSERT_EQ(dup2(fd, 0), 0);
  close(fd);
  const ReadResult r = Drain(TraceReader::Open("-"));
  dup2(saved, 0);
  close(saved);
  ExpectSampleTrace(r, 4);
}

TEST(TraceFileTest, StdinErrorsSayStdin) {
  const std::string path = TempPath(".txt");
  WriteFile(path, "not a trace at all");
  const int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const int saved = dup(0);
  ASSERT_EQ(dup2(fd, 0), 0);
  close(fd);
  const ReadResult r = Drain(TraceReader::Open("-"));
  dup2(saved, 0);
  close(saved);
  EXPECT_THAT(std::string(r.open.message()), StartsWith("<stdin>: byte 0: not a trace file"));
}

TEST(TraceFileTest, FlushEveryNMakesEventsVisibleToAConcurrentReader) {
  for (bool gzip : {false, true}) {
    SCOPED_TRACE(gzip ? "gzip" : "plain");
    const std::string path = TempPath(gzip ? ".gz" : ".bin");
    TraceWriterOptions options;
    options.flush_every = 2;
    options.atomic = false;  // Read while it is being written.
    auto writer = TraceWriter::Create(path, SampleHeader(), SampleSnapshot(1), options);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE((*writer)->Append(SampleEvent(i)).ok());
    // The writer is still open: events 1-4 were flushed, event 5 is in its buffer.
    ReadResult r = Drain(TraceReader::Open(path));
    ASSERT_TRUE(r.open.ok()) << r.open;
    ASSERT_TRUE(r.next.ok()) << r.next;
    EXPECT_EQ(r.events.size(), 4u);
    // A plain file stops at a record boundary; an unfinished gzip stream looks torn.
    EXPECT_EQ(r.end, gzip ? TraceEnd::kTornTail : TraceEnd::kNoTrailer);

    ASSERT_TRUE((*writer)->Flush().ok());
    r = Drain(TraceReader::Open(path));
    EXPECT_EQ(r.events.size(), 5u);

    ASSERT_TRUE((*writer)->Close(kDigest).ok());
    ExpectSampleTrace(Drain(TraceReader::Open(path)), 5);
  }
}

TEST(TraceFileTest, ReaderSeesTheSnapshotAsSoonAsCreateReturns) {
  const std::string path = TempPath(".bin");
  TraceWriterOptions in_place;
  in_place.atomic = false;
  auto writer = TraceWriter::Create(path, SampleHeader(), SampleSnapshot(2), in_place);
  ASSERT_TRUE(writer.ok());
  const ReadResult r = Drain(TraceReader::Open(path));
  ASSERT_TRUE(r.open.ok()) << r.open;
  EXPECT_EQ(r.events.size(), 0u);
  EXPECT_EQ(r.end, TraceEnd::kNoTrailer);
}

// --- Performance contract ---

TEST(TraceFileTest, NextDoesNotAllocateInTheSteadyState) {
  const std::string bytes = ReadFile(WriteSample(".bin", 200, 1));
  auto reader = TraceReader::FromBytes(bytes);
  ASSERT_TRUE(reader.ok());
  ExitEvent e;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(*(*reader)->Next(&e));  // Warm up the buffers.
  const uint64_t before = g_allocations.load();
  int n = 0;
  for (; n < 180; ++n) {
    absl::StatusOr<bool> more = (*reader)->Next(&e);
    if (!more.ok() || !*more) break;
  }
  const uint64_t allocations = g_allocations.load() - before;
  EXPECT_EQ(n, 180);
  EXPECT_EQ(allocations, 0u);
}

// --- Text and JSON forms ---

void ExpectSameTrace(const std::string& a_path, const std::string& b_path) {
  auto a = TraceReader::Open(a_path);
  auto b = TraceReader::Open(b_path);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ExpectHeaderEq((*a)->header(), (*b)->header());
  ExpectSnapshotEq((*a)->snapshot(), (*b)->snapshot());
  const ReadResult ra = Drain(std::move(a));
  const ReadResult rb = Drain(std::move(b));
  ASSERT_EQ(ra.events.size(), rb.events.size());
  for (size_t i = 0; i < ra.events.size(); ++i) ExpectEventEq(ra.events[i], rb.events[i]);
  EXPECT_EQ(ra.end, rb.end);
  EXPECT_EQ(ra.trailer.event_count, rb.trailer.event_count);
  EXPECT_EQ(ra.trailer.final_state_digest, rb.trailer.final_state_digest);
}

TEST(TraceFileTest, TextAndJsonRoundTrip) {
  const std::string bin = WriteSample(".bin", 5, 2);
  for (TraceTextFormat format : {TraceTextFormat::kTextProto, TraceTextFormat::kJson}) {
    const bool json = format == TraceTextFormat::kJson;
    SCOPED_TRACE(json ? "json" : "textproto");
    const std::string text = TempPath(json ? ".json" : ".textproto");
    const std::string back = TempPath(json ? ".json.bin" : ".textproto.bin");
    ASSERT_TRUE(WriteTraceText(bin, text, format).ok());
    const std::string content = ReadFile(text);
    if (json) {
      EXPECT_THAT(content, StartsWith("{\"header\": "));
      EXPECT_THAT(content, HasSubstr("\"unknown_msr_policy\":\"UNKNOWN_MSR_POLICY_IGNORE\""));
    } else {
      EXPECT_THAT(content, HasSubstr("unknown_msr_policy: UNKNOWN_MSR_POLICY_IGNORE"));
      EXPECT_THAT(content, HasSubstr("# End: complete."));
    }
    const absl::Status s = ReadTraceText(text, back);
    ASSERT_TRUE(s.ok()) << s;
    ExpectSameTrace(bin, back);
  }
}

TEST(TraceFileTest, TextOfATraceWithoutTrailerSaysSo) {
  const std::string path = TempPath(".bin");
  {
    TraceWriterOptions in_place;
    in_place.atomic = false;
    auto writer = TraceWriter::Create(path, SampleHeader(), SampleSnapshot(0), in_place);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append(SampleEvent(1)).ok());
  }
  const std::string text = TempPath(".textproto");
  ASSERT_TRUE(WriteTraceText(path, text, TraceTextFormat::kTextProto).ok());
  const std::string content = ReadFile(text);
  EXPECT_THAT(content, HasSubstr("# End: no trailer"));
  EXPECT_THAT(content, ::testing::Not(HasSubstr("trailer {")));
  // Converting back adds the trailer.
  const std::string back = TempPath(".back.bin");
  ASSERT_TRUE(ReadTraceText(text, back).ok());
  const ReadResult r = Drain(TraceReader::Open(back));
  EXPECT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.end, TraceEnd::kComplete);
}

// `known` is printed by name (known_fields) and names are accepted in text and JSON.
TEST(TraceFileTest, KnownFieldsArePrintedAndAcceptedByName) {
  const std::string path = TempPath(".bin");
  {
    auto writer = TraceWriter::Create(path, SampleHeader(), SampleSnapshot(0));
    ASSERT_TRUE(writer.ok());
    ExitEvent all = SampleEvent(1);
    ExitEvent some = SampleEvent(2);
    some.known = (kFieldAll & ~kFieldEnv) | (1u << 20);  // Bit 20 has no name.
    ASSERT_TRUE((*writer)->Append(all).ok());
    ASSERT_TRUE((*writer)->Append(some).ok());
    ASSERT_TRUE((*writer)->Close(kDigest).ok());
  }
  for (TraceTextFormat format : {TraceTextFormat::kTextProto, TraceTextFormat::kJson}) {
    const std::string text = TempPath(".text");
    ASSERT_TRUE(WriteTraceText(path, text, format).ok());
    const std::string content = ReadFile(text);
    if (format == TraceTextFormat::kJson) {
      EXPECT_THAT(content, HasSubstr("\"known_fields\":[\"FIELD_ALL\"]"));
      EXPECT_THAT(content, HasSubstr("\"FIELD_MODE\",\"FIELD_RAX_RDX_OUT\""));
      EXPECT_THAT(content, HasSubstr("\"known\":1048576"));
    } else {
      EXPECT_THAT(content, HasSubstr("known_fields: [FIELD_ALL]"));
      EXPECT_THAT(content, HasSubstr("FIELD_MODE, FIELD_RAX_RDX_OUT"));
      EXPECT_THAT(content, HasSubstr("known: 0x100000"));
    }
    const std::string back = TempPath(".back.bin");
    ASSERT_TRUE(ReadTraceText(text, back).ok());
    const ReadResult r = Drain(TraceReader::Open(back));
    ASSERT_EQ(r.events.size(), 2u);
    EXPECT_EQ(r.events[0].known, kFieldAll);
    EXPECT_EQ(r.events[1].known, (kFieldAll & ~kFieldEnv) | (1u << 20));
  }
}

TEST(TraceFileTest, TextToGzipOutputByName) {
  const std::string text = TempPath(".textproto");
  ASSERT_TRUE(WriteTraceText(WriteSample(".bin", 2), text, TraceTextFormat::kTextProto).ok());
  const std::string gz = TempPath(".out.gz");
  ASSERT_TRUE(ReadTraceText(text, gz).ok());
  EXPECT_EQ(static_cast<uint8_t>(ReadFile(gz)[0]), 0x1f);
  ExpectSampleTrace(Drain(TraceReader::Open(gz)), 2);
}

TEST(TraceFileTest, MalformedTextNamesFileLineAndColumn) {
  const std::string text = TempPath(".textproto");
  WriteFile(text, "header {\n  vcpu_count: 1\n  no_such_field: 3\n}\n");
  const absl::Status s = ReadTraceText(text, TempPath(".bin"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith(text + ":3:"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("no_such_field"));
}

TEST(TraceFileTest, MalformedJsonIsAnError) {
  const std::string text = TempPath(".json");
  WriteFile(text, "{\"header\": {\"vcpu_count\": \"many\"}}");
  const absl::Status s = ReadTraceText(text, TempPath(".bin"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), text +
                             ": invalid JSON trace: (header.vcpu_count): invalid value "
                             "\"many\" for type TYPE_UINT32");
  WriteFile(text, "{\"header\": {\n\"vcpu_count\": 1,\n\n }x}");
  const absl::Status syntax = ReadTraceText(text, TempPath(".bin"));
  EXPECT_EQ(syntax.message(), text +
                                  ": invalid JSON trace: Expected , or } after key:value pair. "
                                  "(near: \"vcpu_count\": 1, }x})");
}

TEST(TraceFileTest, InvalidTextContentNamesTheEvent) {
  const std::string text = TempPath(".textproto");
  ASSERT_TRUE(WriteTraceText(WriteSample(".bin", 3), text, TraceTextFormat::kTextProto).ok());
  std::string content = ReadFile(text);
  // Make the second event's instruction length 0.
  const size_t second = content.find("events {", content.find("events {") + 1);
  const size_t len = content.find("instruction_length: 3", second);
  ASSERT_NE(len, std::string::npos);
  content.replace(len, strlen("instruction_length: 3"), "instruction_length: 0");
  WriteFile(text, content);
  const absl::Status s = ReadTraceText(text, TempPath(".out.bin"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("events[1] (seq 2): exit.instruction_length 0 is not in 1..15"));
}

TEST(TraceFileTest, TextTrailerCountMustMatch) {
  const std::string text = TempPath(".textproto");
  WriteFile(text,
            "header { unknown_msr_policy: UNKNOWN_MSR_POLICY_INJECT_GP vcpu_count: 1 }\n"
            "trailer { event_count: 2 }\n");
  const absl::Status s = ReadTraceText(text, TempPath(".bin"));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("trailer.event_count is 2 but the trace has 0 events"));
}

TEST(TraceFileTest, TextInputTooLargeIsRejectedBeforeReading) {
  const std::string text = TempPath(".textproto");
  const int fd = open(text.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, (256ll << 20) + 1), 0);  // Sparse: no disk space used.
  close(fd);
  const absl::Status s = ReadTraceText(text, TempPath(".bin"));
  unlink(text.c_str());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), text + ": text trace is larger than the 256 MiB limit");
}

TEST(TraceFileTest, HandWrittenExampleParses) {
  const char* src = getenv("MSRTRACE_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "run through ctest (it sets MSRTRACE_SOURCE_DIR)";
  const std::string example = absl::StrCat(src, "/corpus/examples/hand_written.textproto");
  const std::string bin = TempPath(".bin");
  const absl::Status s = ReadTraceText(example, bin);
  ASSERT_TRUE(s.ok()) << s;
  auto reader = TraceReader::Open(bin);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->header().cpu_profile, "intel-icx");
  ASSERT_EQ((*reader)->snapshot().vcpus.size(), 1u);
  const ReadResult r = Drain(std::move(reader));
  ASSERT_TRUE(r.next.ok()) << r.next;
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.events[0].index(), 0x10u);    // RDMSR IA32_TIME_STAMP_COUNTER.
  EXPECT_EQ(r.events[1].known, kFieldAll);  // known_fields: [FIELD_ALL].
  EXPECT_EQ(r.events[2].kind, RecordedKind::kGpInjected);
  EXPECT_EQ(r.end, TraceEnd::kComplete);
}

TEST(TraceFileTest, DocExampleParses) {
  const char* src = getenv("MSRTRACE_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "run through ctest (it sets MSRTRACE_SOURCE_DIR)";
  const std::string doc = ReadFile(absl::StrCat(src, "/docs/trace-format.md"));
  const size_t begin = doc.find("```textproto\n");
  ASSERT_NE(begin, std::string::npos);
  const size_t body = begin + strlen("```textproto\n");
  const size_t end = doc.find("```", body);
  ASSERT_NE(end, std::string::npos);
  const std::string text = TempPath(".textproto");
  WriteFile(text, doc.substr(body, end - body));
  const std::string bin = TempPath(".bin");
  const absl::Status s = ReadTraceText(text, bin);
  ASSERT_TRUE(s.ok()) << s;
  const ReadResult r = Drain(TraceReader::Open(bin));
  ASSERT_TRUE(r.open.ok()) << r.open;
  EXPECT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.end, TraceEnd::kComplete);
}

}  // namespace
}  // namespace msrtrace
