#include "importers/kvm_trace_importer.h"

#include <zlib.h>

#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/core/controller.h"
#include "harness/core/msr_handler.h"
#include "harness/core/test_handlers.h"
#include "harness/core/test_tmpdir.h"
#include "harness/trace/trace_file.h"

namespace msrtrace {
namespace importers {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;
using testing_util::RegisterMsr;

// A stub handler set (the importer must not depend on the reference set): a plain register
// per vCPU that faults on bit 63 (testing_util::RegisterMsr), and a read-only MSR.
class ReadOnlyMsr : public MsrHandler {
 public:
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext&) override { return MsrResult::Ok(0x1234); }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t, ExitContext&) override {
    return MsrResult::Gp();
  }
};

absl::Status InstallStub(Controller& c) {
  for (uint32_t index : {0x10u, 0x1bu, 0x277u}) {
    SlotId slot = c.layout().AddVcpuSlot(absl::StrCat("reg_", index));
    if (!c.Insert(index, std::make_unique<RegisterMsr>(slot))) {
      return absl::InternalError("insert");
    }
  }
  if (!c.Insert(0xce, std::make_unique<ReadOnlyMsr>())) return absl::InternalError("insert");
  return absl::OkStatus();
}

ImportConfig StubConfig() {
  ImportConfig c;
  c.profile_name = "stub";
  c.handler_set_name = "stub";
  c.install = &InstallStub;
  return c;
}

std::string Line(absl::string_view payload, int tid = 10) {
  return absl::StrCat("qemu-", tid, " [000] d.... 1.000000: ", payload, "\n");
}

const MsrSummary* FindMsr(const ImportSummary& s, uint32_t index) {
  for (const MsrSummary& m : s.per_msr) {
    if (m.index == index) return &m;
  }
  return nullptr;
}

TEST(KvmTraceImporterTest, FirstReadBeforeWriteIsInferredAndApplied) {
  std::string text = Line("kvm_msr: msr_read 277 = 0x5") + Line("kvm_msr: msr_write 277 = 0x6") +
                     Line("kvm_msr: msr_read 277 = 0x6");
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, StubConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->inferred.size(), 1u);
  EXPECT_EQ(s->inferred[0].index, 0x277u);
  EXPECT_EQ(s->inferred[0].value, 0x5u);
  EXPECT_EQ(s->inferred[0].line, 1u);
  EXPECT_EQ(s->inferred[0].status, InferredValue::Status::kApplied);
  // With the inferred value in the snapshot, the handler agrees with production.
  EXPECT_TRUE(s->compared);
  EXPECT_EQ(s->events_disagree, 0u);
  EXPECT_EQ(s->msrs_handled, 1u);
  EXPECT_EQ(s->msrs_total, 1u);
}

TEST(KvmTraceImporterTest, ReadAfterWriteIsNotInferred) {
  std::string text = Line("kvm_msr: msr_write 277 = 0x6") + Line("kvm_msr: msr_read 277 = 0x6");
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, StubConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->inferred.empty());
}

TEST(KvmTraceImporterTest, InferenceIsPerVcpu) {
  std::string text =
      Line("kvm_entry: vcpu 0, rip 0x0", 10) + Line("kvm_entry: vcpu 1, rip 0x0", 11) +
      Line("kvm_msr: msr_read 277 = 0x5", 10) + Line("kvm_msr: msr_read 277 = 0x9", 11);
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, StubConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->inferred.size(), 2u);
  EXPECT_EQ(s->vcpu_count, 2u);
  EXPECT_EQ(s->events_disagree, 0u);
  ASSERT_EQ(s->per_vcpu.size(), 2u);
  EXPECT_EQ(s->per_vcpu[1].reads, 1u);
}

TEST(KvmTraceImporterTest, VolatileMsrIsMarkedAndNotComparedByValue) {
  std::string text =
      Line("kvm_msr: msr_read 10 = 0x123456") + Line("kvm_msr: msr_read 10 = 0x223456");
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, StubConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->inferred.size(), 1u);
  EXPECT_EQ(s->inferred[0].status, InferredValue::Status::kVolatile);
  const MsrSummary* m = FindMsr(*s, 0x10);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->volatile_value);
  EXPECT_EQ(m->disagreements(), 0u);
}

TEST(KvmTraceImporterTest, UnknownMsrIsListedAsNotHandled) {
  std::string text = Line("kvm_msr: msr_read 277 = 0x0") + Line("kvm_msr: msr_read 4b564dfe = 0x7");
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, StubConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->msrs_total, 2u);
  EXPECT_EQ(s->msrs_handled, 1u);
  const MsrSummary* m = FindMsr(*s, 0x4b564dfe);
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->handled);
  EXPECT_EQ(m->gp_here_only, 1u);  // Unknown MSR policy inject-gp: #GP here, ok in production.
  EXPECT_EQ(s->inferred[1].status, InferredValue::Status::kUnknownMsr);
  EXPECT_EQ(s->msrs_disagree, 0u);  // Counts handled MSRs only.
  EXPECT_THAT(FormatSummaryText(*s),
              HasSubstr("coverage: 1 of 2 production MSRs handled, 0 disagree"));
}

TEST(KvmTraceImporterTest, GpInProductionButNotHereIsReported) {
  std::string text = Line("kvm_msr: msr_write 277 = 0x6 (#GP)");
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, StubConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(FindMsr(*s, 0x277)->gp_production_only, 1u);
  EXPECT_EQ(s->msrs_disagree, 1u);
  ASSERT_EQ(s->disagreements.size(), 1u);
  EXPECT_THAT(s->disagreements[0].what, HasSubstr("#GP in production, not here"));
}

TEST(KvmTraceImporterTest, GpHereButNotInProductionIsReported) {
  std::string text = Line("kvm_msr: msr_write 277 = 0x8000000000000000");
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, StubConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(FindMsr(*s, 0x277)->gp_here_only, 1u);
}

TEST(KvmTraceImporterTest, DifferentValueReadBackAfterWriteIsReported) {
  std::string text = Line("kvm_msr: msr_write 1b = 0x6") + Line("kvm_msr: msr_read 1b = 0x7");
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, StubConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(FindMsr(*s, 0x1b)->value_differs, 1u);
  ASSERT_EQ(s->disagreements.size(), 1u);
  EXPECT_EQ(s->disagreements[0].line, 2u);
  EXPECT_THAT(s->disagreements[0].what, HasSubstr("production read 0x7, here 0x6"));
}

TEST(KvmTraceImporterTest, RejectedInferenceIsRecorded) {
  // 0xce is read-only: HostWrite of the inferred value is refused and noted; the read-back
  // value then disagrees.
  std::string text = Line("kvm_msr: msr_read ce = 0x99");
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, StubConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->inferred.size(), 1u);
  EXPECT_EQ(s->inferred[0].status, InferredValue::Status::kRejected);
  EXPECT_EQ(FindMsr(*s, 0xce)->value_differs, 1u);
}

TEST(KvmTraceImporterTest, BadLinesAreReportedWithLineNumbersAndSkipped) {
  std::string text = Line("kvm_msr: msr_read 277 = 0x5") + "garbage line\n" +
                     Line("kvm_msr: msr_read 277 =") + Line("kvm_msr: msr_read 277 = 0x5");
  std::ostringstream diag;
  ImportConfig config = StubConfig();
  config.diagnostics = &diag;
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, config, "cap.txt");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->bad_lines, 2u);
  EXPECT_EQ(s->events, 2u);
  ASSERT_EQ(s->first_bad_lines.size(), 2u);
  EXPECT_EQ(s->first_bad_lines[0].line, 2u);
  EXPECT_EQ(s->first_bad_lines[1].line, 3u);
  EXPECT_THAT(diag.str(), HasSubstr("cap.txt:2:1: skipped bad line"));
  EXPECT_THAT(diag.str(), HasSubstr("cap.txt:3:"));
}

TEST(KvmTraceImporterTest, StrictModeFailsOnTheFirstBadLine) {
  std::string text = Line("kvm_msr: msr_read 277 = 0x5") + "garbage line\n";
  ImportConfig config = StubConfig();
  config.strict = true;
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, config, "cap.txt");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()), StartsWith("cap.txt:2:1: "));
}

TEST(KvmTraceImporterTest, OtherEventsAreSkippedAndCountedByName) {
  std::string text = Line("kvm_pio: pio_read at 0x70 size 1 count 1") +
                     Line("kvm_pio: pio_read at 0x71 size 1 count 1") +
                     Line("kvm_msr: msr_read 277 = 0x5");
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, StubConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->other_events, 2u);
  EXPECT_THAT(s->other_event_names, Contains(Pair("kvm_pio", 2u)));
}

TEST(KvmTraceImporterTest, RenderingIsTheMajorityOfEventLines) {
  std::string text =
      "qemu-1 [000] 1.0: kvm_msr:    msr_read 277 = 0x5\n"
      "qemu-1 [000] 1.0: kvm_msr:    msr_read 277 = 0x5\n";
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, StubConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->rendering, Rendering::kTraceCmd);
}

TEST(KvmTraceImporterTest, WithoutHandlersNothingIsComparedOrApplied) {
  ImportConfig config;
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(Line("kvm_msr: msr_read 277 = 0x5"), config);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->compared);
  EXPECT_EQ(s->inferred[0].status, InferredValue::Status::kNoHandlers);
}

TEST(KvmTraceImporterTest, JsonSummaryHasCoverageAndPerMsrRows) {
  absl::StatusOr<ImportSummary> s =
      ImportFromBuffer(Line("kvm_msr: msr_read 277 = 0x5"), StubConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  const report::ImportReport r = SummaryReport(*s);
  EXPECT_EQ(r.coverage().msrs_total(), 1u);
  EXPECT_EQ(r.coverage().msrs_handled(), 1u);
  ASSERT_EQ(r.per_msr_size(), 1);
  EXPECT_EQ(r.per_msr(0).index(), "0x277");
  EXPECT_TRUE(r.per_msr(0).has_handled());
}

// A path in this process's private temporary directory (removed at exit).
std::string TempPath(absl::string_view name) {
  return testing_util::TestTempPath(static_cast<std::string>(name));
}

TEST(KvmTraceImporterTest, WritesTraceWithInferredSnapshotAndLabels) {
  std::string text =
      Line(
          "kvm_exit: vcpu 0 reason MSR_READ rip 0x1000 info1 0x0 info2 0x0 intr_info 0x0 "
          "error_code 0x0") +
      Line("kvm_msr: msr_read 277 = 0x5") + Line("kvm_entry: vcpu 0, rip 0x1002") +
      Line("kvm_msr: msr_write 277 = 0x6");
  ImportConfig config = StubConfig();
  config.output = TempPath("out.trace");
  absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, config);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->events_written, 2u);

  absl::StatusOr<std::unique_ptr<TraceReader>> r = TraceReader::Open(config.output);
  ASSERT_TRUE(r.ok()) << r.status();
  const TraceHeader& h = (*r)->header();
  EXPECT_EQ(h.handler_set, "stub");
  EXPECT_EQ(h.vcpu_count, 1u);
  EXPECT_THAT(h.producer, HasSubstr("ftrace-5col"));
  EXPECT_THAT(h.labels, Contains(Pair("inferred.msr.0.0x277", StartsWith("0x5 "))));
  // The snapshot holds the inferred value in the register's slot.
  const Snapshot& snap = (*r)->snapshot();
  ASSERT_EQ(snap.vcpus.size(), 1u);
  bool found = false;
  for (size_t i = 0; i < snap.vcpu_slot_names.size(); ++i) {
    if (snap.vcpu_slot_names[i] == "reg_631") {
      EXPECT_EQ(snap.vcpus[0].slots[i], 5u);
      found = true;
    }
  }
  EXPECT_TRUE(found);
  ExitEvent e;
  ASSERT_TRUE(*(*r)->Next(&e));
  EXPECT_EQ(e.exit.instruction_length, 2);
  EXPECT_EQ(e.known, kFieldRip | kFieldRipOut | kFieldInstrLength | kFieldRaxRdxOut);
  ASSERT_TRUE(*(*r)->Next(&e));
  EXPECT_EQ(e.known, kFieldRaxRdxIn);
  EXPECT_FALSE(*(*r)->Next(&e));
  EXPECT_EQ((*r)->end(), TraceEnd::kComplete);
  remove(config.output.c_str());
}

TEST(KvmTraceImporterTest, NoEventsWithOutputIsAnError) {
  ImportConfig config = StubConfig();
  config.output = TempPath("empty.trace");
  absl::StatusOr<ImportSummary> s = ImportFromBuffer("# tracer: nop\n", config);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KvmTraceImporterTest, ReadsGzipAndPlainFilesAsOneCapture) {
  std::string plain = TempPath("a.txt");
  std::string gz = TempPath("b.txt.gz");
  {
    FILE* f = fopen(plain.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::string t = Line("kvm_msr: msr_read 277 = 0x5");
    fwrite(t.data(), 1, t.size(), f);
    fclose(f);
    gzFile g = gzopen(gz.c_str(), "wb");
    ASSERT_NE(g, nullptr);
    std::string u = Line("kvm_msr: msr_write 277 = 0x6") + Line("kvm_msr: msr_read 277 = 0x6");
    gzwrite(g, u.data(), u.size());
    gzclose(g);
  }
  ImportConfig config = StubConfig();
  config.inputs = {plain, gz};
  absl::StatusOr<ImportSummary> s = ImportCapture(config);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->events, 3u);
  EXPECT_EQ(s->events_disagree, 0u);
  remove(plain.c_str());
  remove(gz.c_str());
}

TEST(KvmTraceImporterTest, MissingInputFileIsAnError) {
  ImportConfig config = StubConfig();
  config.inputs = {"/nonexistent/capture.txt"};
  absl::StatusOr<ImportSummary> s = ImportCapture(config);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("/nonexistent/capture.txt"));
}

TEST(KvmTraceImporterTest, OverlongLineIsBadNotFatal) {
  std::string path = TempPath("long.txt");
  {
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::string big(3 << 20, 'x');
    big += "\n";
    std::string t = Line("kvm_msr: msr_read 277 = 0x5");
    fwrite(big.data(), 1, big.size(), f);
    fwrite(t.data(), 1, t.size(), f);
    fclose(f);
  }
  ImportConfig config = StubConfig();
  config.inputs = {path};
  absl::StatusOr<ImportSummary> s = ImportCapture(config);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->bad_lines, 1u);
  EXPECT_EQ(s->events, 1u);
  EXPECT_EQ(s->lines, 2u);
  remove(path.c_str());
}

// Deterministic garbage built from trace fragments and random bytes: every line is accounted
// for exactly once and nothing crashes (ASan/UBSan builds check the memory side).
TEST(KvmTraceImporterTest, RandomFragmentsAreAccountedLineByLine) {
  static constexpr const char* kPieces[] = {"qemu-1 [000] d.... 1.0: ",
                                            "kvm_msr: ",
                                            "msr_read ",
                                            "msr_write ",
                                            "1b",
                                            " = 0x",
                                            "ffffffffffffffff",
                                            " (#GP)",
                                            "kvm_exit: ",
                                            "vcpu 3 ",
                                            "reason MSR_READ ",
                                            "rip 0x1000 ",
                                            "info1 0x1 ",
                                            "info 0 0",
                                            "kvm_entry: ",
                                            "vcpu 16383, rip 0x1002",
                                            "\n",
                                            "\n",
                                            "\r\n",
                                            "kvm:",
                                            "<...>-5 [001] 2.0: ",
                                            "a 7 [002] 3.0: ",
                                            "#GP (0x0)",
                                            "kvm_inj_exception: ",
                                            "reason msr ",
                                            "reason EXIT_MSR ",
                                            " ",
                                            "-",
                                            "[",
                                            "]",
                                            ":",
                                            "x",
                                            "# c\n"};
  std::mt19937_64 rng(1);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text;
    const int n = static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) {
      if (rng() % 10 == 0) {
        text.push_back(static_cast<char>(rng()));
      } else {
        text += kPieces[rng() % (sizeof(kPieces) / sizeof(kPieces[0]))];
      }
    }
    ImportConfig config = StubConfig();
    config.accept_truncated = true;  // Fragments rarely end with a newline.
    absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, config);
    ASSERT_TRUE(s.ok()) << s.status() << "\ninput: " << text;
    EXPECT_EQ(s->lines,
              s->kvm_lines + s->other_events + s->skipped_lines + s->bad_lines + s->gap_markers)
        << text;
    uint64_t per_vcpu = 0;
    for (const VcpuSummary& v : s->per_vcpu) per_vcpu += v.reads + v.writes;
    EXPECT_EQ(per_vcpu, s->events) << text;
    SummaryReport(*s);
    FormatSummaryText(*s);
  }
}

}  // namespace
}  // namespace importers
}  // namespace msrtrace
