// Importer behaviour for the tolerated line shapes, lost-events gaps and truncated captures
// (docs/import.md "Accepted line shapes", "Gaps", "Truncated captures").
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/trace/trace_file.h"
#include "importers/kvm_trace_importer.h"

namespace msrtrace {
namespace importers {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Key;
using ::testing::Not;

// A unique temporary directory, removed with its files.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "kvm_trace_shapes_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    char* d = mkdtemp(buf.data());
    if (d != nullptr) path_ = d;
  }
  ~TempDir() {
    for (const std::string& f : files_) remove(f.c_str());
    if (!path_.empty()) rmdir(path_.c_str());
  }
  std::string File(absl::string_view name) {
    files_.push_back(absl::StrCat(path_, "/", name));
    return files_.back();
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

// Two vCPUs, four accesses: vCPU 0 reads 0x1b (2-byte RDMSR), vCPU 1 writes 0x277 with #GP,
// vCPU 0 writes 0x277 (retired, 2 bytes), vCPU 1 reads 0x10.
// `prefix(tid, cpu)` renders the line prefix of the shape under test.
template <typename Prefix>
std::string Capture(Prefix prefix, absl::string_view trailer = "") {
  struct L {
    int tid, cpu;
    const char* payload;
  } lines[] = {
      {100, 0, "kvm_exit: vcpu 0 reason MSR_READ rip 0xffffffff81000000 info 0 0"},
      {100, 0, "kvm_msr: msr_read 1b = 0xfee00900"},
      {101, 1, "kvm_exit: vcpu 1 reason MSR_WRITE rip 0x2000 info 0 0"},
      {101, 1, "kvm_msr: msr_write 277 = 0x8000000000000000 (#GP)"},
      {101, 1, "kvm_inj_exception: #GP (0x0)"},
      {101, 1, "kvm_entry: vcpu 1, rip 0x2000"},
      {100, 0, "kvm_entry: vcpu 0, rip 0xffffffff81000002"},
      {100, 0, "kvm_exit: vcpu 0 reason MSR_WRITE rip 0xffffffff81000010 info 0 0"},
      {100, 0, "kvm_msr: msr_write 277 = 0x7"},
      {100, 0, "kvm_entry: vcpu 0, rip 0xffffffff81000012"},
      {101, 1, "kvm_exit: vcpu 1 reason MSR_READ rip 0x2004 info 0 0"},
      {101, 1, "kvm_msr: msr_read 10 = 0x1234"},
      {101, 1, "kvm_entry: vcpu 1, rip 0x2006"},
  };
  std::string out;
  for (const L& l : lines) absl::StrAppend(&out, prefix(l.tid, l.cpu), l.payload, trailer, "\n");
  return out;
}

absl::StatusOr<ImportSummary> Import(const std::string& text, const ImportConfig& config = {}) {
  return ImportFromBuffer(text, config, "cap.txt");
}

void ExpectTheFourAccesses(const ImportSummary& s, absl::string_view shape) {
  EXPECT_EQ(s.events, 4u) << shape;
  EXPECT_EQ(s.bad_lines, 0u) << shape;
  ASSERT_EQ(s.per_vcpu.size(), 2u) << shape;
  EXPECT_EQ(s.per_vcpu[0].reads, 1u) << shape;
  EXPECT_EQ(s.per_vcpu[0].writes, 1u) << shape;
  EXPECT_EQ(s.per_vcpu[1].faults, 1u) << shape;
  EXPECT_EQ(s.per_vcpu[1].reads, 1u) << shape;
  // Lengths from kvm_entry: vCPU 0's two retired accesses and vCPU 1's read (the #GP has none).
  EXPECT_EQ(s.assembler.instr_length_known, 3u) << shape;
}

TEST(ImportShapesTest, EveryShapeImportsTheSameAccesses) {
  struct Shape {
    const char* name;
    std::string text;
    uint16_t shape_bit;
  };
  auto ftrace_flags = [](absl::string_view flags) {
    return [flags](int tid, int cpu) {
      return absl::StrCat("qemu-system-x86-", tid, " [00", cpu, "] ", flags, " 10.000100: ");
    };
  };
  std::vector<Shape> shapes = {
      {"flags width 3", Capture(ftrace_flags("d.h")), kShapeFlagsWidth},
      {"flags width 8", Capture(ftrace_flags("dNh21.3f")), kShapeFlagsWidth},
      {"flags width 1", Capture(ftrace_flags("d")), kShapeFlagsWidth},
      {"no cpu column, flags",
       Capture([](int tid, int) { return absl::StrCat("qemu-", tid, " d.... 10.000100: "); }),
       kShapeNoCpuColumn},
      {"no cpu column, no flags",
       Capture([](int tid, int) { return absl::StrCat("qemu-", tid, "  10.000100: "); }),
       kShapeNoCpuColumn},
      {"<...> comm", Capture([](int tid, int cpu) {
         return absl::StrCat("<...>-", tid, " [00", cpu, "] 10.5: ");
       }),
       kShapeUnknownComm},
      {"comm with spaces and brackets", Capture([](int tid, int cpu) {
         return absl::StrCat("CPU ", tid - 100, "/KVM [vm 7]-", tid, " [00", cpu, "] d.... 10.5: ");
       }),
       kShapeSpacedComm},
      {"tgid column", Capture([](int tid, int cpu) {
         return absl::StrCat("qemu-", tid, " (   99) [00", cpu, "] d.... 10.5: ");
       }),
       kShapeTgid},
      {"trailing text", Capture(ftrace_flags("d...."), "   <-- annotated"), kShapeTrailingText},
  };
  for (const Shape& sh : shapes) {
    absl::StatusOr<ImportSummary> s = Import(sh.text);
    ASSERT_TRUE(s.ok()) << sh.name << ": " << s.status();
    ExpectTheFourAccesses(*s, sh.name);
    int bit = 0;
    while ((1u << bit) != sh.shape_bit) ++bit;
    EXPECT_EQ(s->lines_by_shape[bit], 13u) << sh.name;
    EXPECT_THAT(FormatSummaryText(*s), HasSubstr(ShapeName(sh.shape_bit))) << sh.name;
  }
}

TEST(ImportShapesTest, BareLinesGoToOneVcpuUnlessExitOrEntryNamesOne) {
  // No vCPU named: every access is vCPU 0, in order.
  absl::StatusOr<ImportSummary> s = Import(
      "kvm_msr: msr_read 1a0 = 0x1800\n"
      "kvm_msr: msr_write 1a0 = 0x1801\n"
      "kvm_msr: msr_write 277 = 0x1 (#GP)\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->events, 3u);
  EXPECT_EQ(s->vcpu_count, 1u);
  EXPECT_EQ(s->per_vcpu[0].faults, 1u);
  EXPECT_EQ(s->lines_by_rendering[static_cast<int>(Rendering::kBare)], 3u);
  EXPECT_THAT(FormatSummaryText(*s), HasSubstr("bare 3"));
  // kvm_exit/kvm_entry name the vCPU: the accesses follow them; lengths come from kvm_entry.
  s = Import(
      "kvm_exit: vcpu 2 reason MSR_READ rip 0x1000 info 0 0\n"
      "kvm_msr: msr_read 1a0 = 0x1800\n"
      "kvm_entry: vcpu 2, rip 0x1002\n"
      "kvm_exit: vcpu 3 reason MSR_WRITE rip 0x3000 info 0 0\n"
      "kvm_msr: msr_write 1a0 = 0x1\n"
      "kvm_entry: vcpu 3, rip 0x3003\n");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->per_vcpu.size(), 4u);
  EXPECT_EQ(s->per_vcpu[2].reads, 1u);
  EXPECT_EQ(s->per_vcpu[3].writes, 1u);
  EXPECT_EQ(s->assembler.instr_length_known, 2u);
}

TEST(ImportShapesTest, StrictRejectsEachToleratedShapeNamingTheLine) {
  const char* tolerated[] = {
      "qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\nkvm_msr: msr_read 1b = 0x1\n",
      "qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\nqemu-1 d.... 1.0: kvm_msr: msr_read "
      "1b = 0x1\n",
      "qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\nqemu-1 [000] d.h 1.0: kvm_msr: "
      "msr_read 1b = 0x1\n",
      "qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\nqemu-1 [000] d.... 1.0: kvm_msr: "
      "msr_read 1b = 0x1 note\n",
  };
  for (const char* text : tolerated) {
    ImportConfig config;
    ASSERT_TRUE(Import(text, config).ok()) << text;
    config.strict = true;
    absl::StatusOr<ImportSummary> s = Import(text, config);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("cap.txt:2: --strict")) << text;
  }
}

TEST(ImportShapesTest, MixedShapesImportAndTheSummaryNamesWhereTheFormatChanges) {
  std::string text =
      "qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\n"
      "qemu-1 [000] d.... 1.1: kvm_msr: msr_read 1b = 0x1\n"
      "kvm_msr: msr_read 1b = 0x1\n"
      "CPU 0/KVM 1 [000] 1.2: kvm:kvm_msr: msr_read 1b = 0x1\n";
  absl::StatusOr<ImportSummary> s = Import(text);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->events, 4u);
  EXPECT_EQ(s->format_changes, 2u);
  EXPECT_EQ(s->first_format_change, "cap.txt:3: ftrace-5col -> bare");
  EXPECT_THAT(FormatSummaryText(*s), HasSubstr("format changes: 2 (first at cap.txt:3"));
}

TEST(ImportShapesTest, CutTracepointLinesAreBadLines) {
  std::string text =
      "q-1 [000] d.... 1.0: kvm_exit: vcpu 0 reason MSR_READ rip 0x10 info 0 0\n"
      "q-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\n"
      "q-1 [000] d.... 1.0: kvm_entry: vcpu 0,\n"
      "q-1 [000] d.... 1.0: kvm_entry: vcpu 0, ri\n";
  absl::StatusOr<ImportSummary> s = Import(text);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->bad_lines, 2u);
  ASSERT_EQ(s->first_bad_lines.size(), 2u);
  EXPECT_EQ(s->first_bad_lines[0].line, 3u);
  EXPECT_THAT(s->first_bad_lines[0].what, HasSubstr("cut"));
  EXPECT_EQ(s->first_bad_lines[1].line, 4u);
  EXPECT_EQ(s->assembler.instr_length_known, 0u);  // No RIP was taken from a cut line.
}

// --- Gaps ---------------------------------------------------------------------------------

TEST(ImportGapsTest, LostEventsMarkerIsAGapNeverABadLine) {
  TempDir dir;
  std::string text =
      "qemu-100 [000] d.... 1.0: kvm_exit: vcpu 0 reason MSR_READ rip 0x10 info 0 0\n"
      "qemu-100 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\n"
      "qemu-100 [000] d.... 1.0: kvm_entry: vcpu 0, rip 0x12\n"
      "qemu-101 [001] d.... 1.0: kvm_msr: msr_read 1b = 0x2\n"
      "qemu-101 [001] d.... 1.0: kvm_entry: vcpu 1, rip 0x22\n"
      "CPU:0 [LOST 57 EVENTS]\n"
      "qemu-100 [000] d.... 2.0: kvm_msr: msr_write 1b = 0x3\n"
      "qemu-101 [001] d.... 2.0: kvm_msr: msr_read 1b = 0x2\n"
      "qemu-100 [000] d.... 2.0: kvm_msr: msr_write 1b = 0x4\n"
      "CPU:1 [EVENTS DROPPED]\n"
      "qemu-101 [001] d.... 3.0: kvm_msr: msr_read 1b = 0x2\n";
  ImportConfig config;
  config.output = dir.File("gap.trace");
  absl::StatusOr<ImportSummary> s = Import(text, config);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->bad_lines, 0u);
  EXPECT_EQ(s->gap_markers, 2u);
  EXPECT_EQ(s->assembler.gaps, 2u);
  EXPECT_EQ(s->assembler.gaps_unknown, 1u);
  EXPECT_EQ(s->assembler.events_lost, 57u);
  EXPECT_EQ(s->assembler.events_after_gap, 2u);
  std::string text_summary = FormatSummaryText(*s);
  EXPECT_THAT(text_summary, HasSubstr("gaps: 2 lost-events markers, 57 events lost"));
  EXPECT_THAT(text_summary, HasSubstr("cap.txt:6: CPU 0 lost 57 events"));
  EXPECT_EQ(SummaryReport(*s).gaps().markers(), 2u);
  EXPECT_EQ(SummaryReport(*s).gaps().events_lost(), 57u);

  absl::StatusOr<std::unique_ptr<TraceReader>> r = TraceReader::Open(config.output);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT((*r)->header().labels, Contains(Key("import.gaps")));
  std::vector<ExitEvent> events;
  ExitEvent e;
  while (*(*r)->Next(&e)) events.push_back(e);
  ASSERT_EQ(events.size(), 6u);
  // CPU 0 ran only vCPU 0's thread: its first event after the marker carries the count.
  EXPECT_EQ(events[0].lost_before, 0u);
  EXPECT_EQ(events[1].lost_before, 0u);
  EXPECT_EQ(events[2].vcpu_id, 0u);
  EXPECT_EQ(events[2].lost_before, 57u);
  EXPECT_EQ(events[3].vcpu_id, 1u);
  EXPECT_EQ(events[3].lost_before, 0u);  // vCPU 1 ran on CPU 1: not affected by CPU 0's gap.
  EXPECT_EQ(events[4].lost_before, 0u);  // Only the first event after the gap.
  EXPECT_EQ(events[5].vcpu_id, 1u);
  EXPECT_EQ(events[5].lost_before, UINT64_MAX);  // "[EVENTS DROPPED]": unknown count.
}

TEST(ImportGapsTest, GapOnACpuSharedByTwoThreadsHasUnknownCountAndFlushesPendingAccess) {
  std::string text =
      "qemu-100 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\n"  // Pending: entry not seen.
      "qemu-101 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x2\n"
      "qemu-101 [000] d.... 1.0: kvm_entry: vcpu 1, rip 0x22\n"
      "CPU:0 [LOST 3 EVENTS]\n"
      "qemu-100 [000] d.... 1.0: kvm_entry: vcpu 0, rip 0x12\n"  // Not the pending read's.
      "qemu-100 [000] d.... 2.0: kvm_msr: msr_write 1b = 0x3\n"
      "qemu-101 [000] d.... 2.0: kvm_msr: msr_write 1b = 0x4\n";
  absl::StatusOr<ImportSummary> s = Import(text);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->events, 4u);
  EXPECT_EQ(s->assembler.events_after_gap, 2u);
  EXPECT_EQ(s->assembler.instr_length_known, 0u);
}

// --- Truncation ---------------------------------------------------------------------------

TEST(ImportTruncationTest, CutFinalLineIsAnErrorUnlessAccepted) {
  std::string text =
      "qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\n"
      "qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x18";  // Cut mid-value.
  absl::StatusOr<ImportSummary> s = Import(text);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("cap.txt: truncated capture: line 2, the last, has no newline"));
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("--accept-truncated"));

  TempDir dir;
  ImportConfig config;
  config.accept_truncated = true;
  config.output = dir.File("t.trace");
  s = Import(text, config);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->truncated);
  EXPECT_EQ(s->events, 1u);  // The cut line is dropped.
  EXPECT_THAT(FormatSummaryText(*s), HasSubstr("truncated: cap.txt: line 2"));
  EXPECT_TRUE(SummaryReport(*s).truncated());
  absl::StatusOr<std::unique_ptr<TraceReader>> r = TraceReader::Open(config.output);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT((*r)->header().labels, Contains(Key("import.truncated")));
}

std::string Gzip(const std::string& text) {
  uLongf n = compressBound(text.size()) + 64;
  std::string out(n, '\0');
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(&out[0]);
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  FILE* f = fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  fwrite(bytes.data(), 1, bytes.size(), f);
  fclose(f);
}

TEST(ImportTruncationTest, TruncatedGzipCaptureIsAnErrorUnlessAccepted) {
  std::string text;
  for (int i = 0; i < 2000; ++i) {
    absl::StrAppend(&text, "qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x", i, "\n");
  }
  std::string gz = Gzip(text);
  TempDir dir;
  // Cut in the trailer, and in the middle of the deflate data.
  for (size_t cut : {gz.size() - 4, gz.size() / 2}) {
    std::string path = dir.File(absl::StrCat("cut", cut, ".txt.gz"));
    WriteFile(path, gz.substr(0, cut));
    ImportConfig config;
    config.inputs = {path};
    absl::StatusOr<ImportSummary> s = ImportCapture(config);
    ASSERT_FALSE(s.ok()) << cut;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("the gzip stream is cut")) << cut;
    config.accept_truncated = true;
    s = ImportCapture(config);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE(s->truncated);
    EXPECT_LE(s->events, 2000u);
    EXPECT_THAT(FormatSummaryText(*s), HasSubstr("gzip stream is cut"));
  }
}

TEST(ImportTruncationTest, CorruptGzipNamesTheFileOnceAndNoReadErrorAtByteZero) {
  TempDir dir;
  std::string path = dir.File("bad.txt.gz");
  // A gzip header followed by garbage.
  WriteFile(path, std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff\xff\xff junk", 19));
  ImportConfig config;
  config.inputs = {path};
  absl::StatusOr<ImportSummary> s = ImportCapture(config);
  ASSERT_FALSE(s.ok());
  std::string msg(s.status().message());
  EXPECT_THAT(msg, HasSubstr("corrupt gzip data"));
  EXPECT_THAT(msg, Not(HasSubstr("read error at byte 0")));
  EXPECT_EQ(msg.find(path), 0u);
  EXPECT_EQ(msg.find(path, 1), std::string::npos) << msg;
}

TEST(ImportLimitsTest, SnapshotFailureNamesTheHighestVcpuAndItsLine) {
  TempDir dir;
  ImportConfig config;
  config.output = dir.File("big.trace");
  std::string text = "qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\n";
  for (int v = 1; v <= 16; ++v) {
    absl::StrAppend(&text, "qemu-", v + 1, " [000] d.... 1.0: kvm_entry: vcpu ", v * 1000,
                    ", rip 0x10\n");
    absl::StrAppend(&text, "qemu-", v + 1, " [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\n");
  }
  absl::StatusOr<ImportSummary> s = Import(text, config);
  if (!s.ok()) {
    // The trace writer refused the snapshot: the message must say which vCPU and where.
    EXPECT_THAT(std::string(s.status().message()),
                HasSubstr("highest vCPU id 16000, first seen at cap.txt:33"));
  } else {
    EXPECT_EQ(s->max_vcpu_id, 16000u);
    EXPECT_EQ(s->max_vcpu_where, "cap.txt:33");
  }
}

}  // namespace
}  // namespace importers
}  // namespace msrtrace
