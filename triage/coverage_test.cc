// Tests of the coverage map: case applicability and #GP classification from the table, counting
// from traces, JSON, HTML (structure, and a headless-Chromium screenshot when Chromium is
// installed) and the baseline comparison.
#include "triage/coverage.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "triage/reduce.h"
#include "workloads/record.h"

namespace msrtrace::triage {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

const MsrRow& Row(const std::vector<MsrRow>& rows, const char* name) {
  for (const MsrRow& r : rows) {
    if (std::string(r.name) == name) return r;
  }
  ADD_FAILURE() << "no row " << name;
  return rows.front();
}

bool Has(uint32_t applicable, CoverageCase c) {
  return ((applicable >> static_cast<int>(c)) & 1) != 0;
}

TEST(CoverageCasesTest, ApplicabilityFollowsTheRowsMasksAndChecks) {
  const std::vector<MsrRow> rows = MsrTable(DefaultProfile());
  const uint32_t lstar = ApplicableCases(Row(rows, "MSR_LSTAR"), true);
  EXPECT_TRUE(Has(lstar, CoverageCase::kGpCanonical));
  EXPECT_TRUE(Has(lstar, CoverageCase::kReadOk));
  EXPECT_TRUE(Has(lstar, CoverageCase::kWriteOk));
  EXPECT_FALSE(Has(lstar, CoverageCase::kGpLock));
  EXPECT_TRUE(Has(ApplicableCases(Row(rows, "IA32_FEATURE_CONTROL"), true), CoverageCase::kGpLock));
  EXPECT_TRUE(Has(ApplicableCases(Row(rows, "IA32_PAT"), true), CoverageCase::kGpReserved));
  const uint32_t platform_id = ApplicableCases(Row(rows, "IA32_PLATFORM_ID"), true);
  EXPECT_TRUE(Has(platform_id, CoverageCase::kGpReadOnly));
  EXPECT_FALSE(Has(platform_id, CoverageCase::kWriteOk));
  EXPECT_TRUE(Has(ApplicableCases(Row(rows, "X2APIC_APICID"), true), CoverageCase::kGpMode));
  // Guest writes to BIOS_SIGN_ID are dropped, not refused.
  const uint32_t sign_id = ApplicableCases(Row(rows, "IA32_BIOS_SIGN_ID"), true);
  EXPECT_TRUE(Has(sign_id, CoverageCase::kWriteOk));
  EXPECT_FALSE(Has(sign_id, CoverageCase::kGpReadOnly));
  EXPECT_EQ(ApplicableCases(Row(rows, "IA32_PAT"), false),
            1u << static_cast<int>(CoverageCase::kGpFeatureAbsent));
}

TEST(CoverageCasesTest, GpReasonFromTheRowAndTheValueWritten) {
  const CpuProfile& p = DefaultProfile();
  const std::vector<MsrRow> rows = MsrTable(p);
  // PAT type 2 is a reserved encoding.
  EXPECT_EQ(ClassifyGp(Row(rows, "IA32_PAT"), p, Access::kWrite, 0x0007040600070402ull),
            CoverageCase::kGpReserved);
  EXPECT_EQ(ClassifyGp(Row(rows, "MSR_LSTAR"), p, Access::kWrite, 0x0000800000000000ull),
            CoverageCase::kGpCanonical);
  EXPECT_EQ(ClassifyGp(Row(rows, "IA32_PLATFORM_ID"), p, Access::kWrite, 0),
            CoverageCase::kGpReadOnly);
  EXPECT_EQ(ClassifyGp(Row(rows, "IA32_FEATURE_CONTROL"), p, Access::kWrite, 1),
            CoverageCase::kGpLock);
  EXPECT_EQ(ClassifyGp(Row(rows, "X2APIC_APICID"), p, Access::kRead, absl::nullopt),
            CoverageCase::kGpMode);
  // Without the value, a value-dependent reason cannot be told.
  EXPECT_EQ(ClassifyGp(Row(rows, "MSR_LSTAR"), p, Access::kWrite, absl::nullopt),
            CoverageCase::kGpOther);
}

class CoverageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "coverage_test_XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    const std::string cmd = "rm -rf '" + dir_ + "'";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "cannot remove %s\n", dir_.c_str());
  }

  // A trace of the default profile with exactly `events` (header and snapshot from a recording).
  std::string Trace(const std::string& name, std::vector<ExitEvent> events) {
    workloads::RecordRequest o;
    o.workload = "random";
    o.events = 1;
    o.output = dir_ + "/" + name;
    const absl::StatusOr<workloads::RecordSummary> s = workloads::RecordWorkload(o);
    EXPECT_TRUE(s.ok()) << s.status();
    absl::StatusOr<TraceModel> t = LoadTrace(o.output);
    EXPECT_TRUE(t.ok()) << t.status();
    for (size_t i = 0; i < events.size(); ++i) events[i].seq = i + 1;
    t->events = std::move(events);
    t->trailer = TraceTrailer{};
    EXPECT_TRUE(WriteTraceAtomically(*t, o.output).ok());
    return o.output;
  }

  static ExitEvent Event(Access a, uint32_t index, uint64_t value, RecordedKind kind) {
    ExitEvent e;
    e.exit = a == Access::kRead ? Exit::Rdmsr() : Exit::Wrmsr();
    e.rcx = index;
    e.rax = value & 0xffffffffull;
    e.rdx = value >> 32;
    e.kind = kind;
    e.known = kFieldRaxRdxIn | kFieldRip | kFieldInstrLength;
    return e;
  }

  const RowCoverage& Find(const CoverageReport& r, uint32_t index) {
    for (const RowCoverage& row : r.profiles.at(0).rows) {
      if (row.row.index == index) return row;
    }
    ADD_FAILURE() << "no row " << index;
    return r.profiles.at(0).rows.at(0);
  }

  std::string dir_;
};

TEST_F(CoverageTest, CountsEachCasePerRowAndUnknownMsrsApart) {
  const std::string path =
      Trace("cases.trace",
            {Event(Access::kRead, 0x277, 0, RecordedKind::kRetired),
             Event(Access::kWrite, 0x277, 0x0007040600070406ull, RecordedKind::kRetired),
             Event(Access::kWrite, 0x277, 0x0007040600070402ull, RecordedKind::kGpInjected),
             Event(Access::kWrite, 0xc0000082, 1ull << 47, RecordedKind::kGpInjected),
             Event(Access::kRead, 0x12345678, 0, RecordedKind::kGpInjected),
             Event(Access::kRead, 0x12345679, 0, RecordedKind::kGpInjected),
             Event(Access::kRead, 0x277, 0, RecordedKind::kUnspecified)});
  absl::StatusOr<CoverageBuilder> b = CoverageBuilder::Create();
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->AddFile(path).ok());
  const CoverageReport r = b->Finish();
  ASSERT_EQ(r.profiles.size(), 1u);
  EXPECT_EQ(r.profiles[0].profile, DefaultProfile().name);
  const RowCoverage& pat = Find(r, 0x277);
  EXPECT_EQ(pat.counts[static_cast<int>(CoverageCase::kReadOk)], 1u);
  EXPECT_EQ(pat.counts[static_cast<int>(CoverageCase::kWriteOk)], 1u);
  EXPECT_EQ(pat.counts[static_cast<int>(CoverageCase::kGpReserved)], 1u);
  EXPECT_EQ(Find(r, 0xc0000082).counts[static_cast<int>(CoverageCase::kGpCanonical)], 1u);
  EXPECT_EQ(r.profiles[0].unknown_gp, 2u);
  EXPECT_EQ(r.profiles[0].unknown_indices, 2u);
  EXPECT_EQ(r.profiles[0].no_outcome, 1u);
  EXPECT_EQ(r.profiles[0].events, 7u);
  EXPECT_THAT(CoverageSummary(r), HasSubstr("coverage " + DefaultProfile().name));
}

// Fuzz corpora have events without recorded outcomes: replaying them classifies them.
TEST_F(CoverageTest, ReplayClassifiesEventsWithoutRecordedOutcome) {
  ExitEvent read = Event(Access::kRead, 0x277, 0, RecordedKind::kUnspecified);
  ExitEvent bad = Event(Access::kWrite, 0x277, 0x0007040600070402ull, RecordedKind::kUnspecified);
  const std::string path = Trace("u.trace", {read, bad});
  CoverageBuilder plain = *CoverageBuilder::Create();
  ASSERT_TRUE(plain.AddFile(path).ok());
  EXPECT_EQ(plain.Finish().profiles[0].no_outcome, 2u);
  CoverageBuilder replayed = *CoverageBuilder::Create("", /*replay_unrecorded=*/true);
  ASSERT_TRUE(replayed.AddFile(path).ok());
  const CoverageReport r = replayed.Finish();
  EXPECT_EQ(r.profiles[0].no_outcome, 0u);
  const RowCoverage& pat = Find(r, 0x277);
  EXPECT_EQ(pat.counts[static_cast<int>(CoverageCase::kReadOk)], 1u);
  EXPECT_EQ(pat.counts[static_cast<int>(CoverageCase::kGpReserved)], 1u);
}

TEST_F(CoverageTest, ProfileFilterSkipsOtherProfilesAndUnknownProfileIsAnError) {
  const std::string path =
      Trace("p.trace", {Event(Access::kRead, 0x277, 0, RecordedKind::kRetired)});
  std::string other;
  for (const CpuProfile& p : BuiltinProfiles()) {
    if (p.name != DefaultProfile().name) other = p.name;
  }
  ASSERT_FALSE(other.empty());
  absl::StatusOr<CoverageBuilder> b = CoverageBuilder::Create(other);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->AddFile(path).ok());
  const CoverageReport r = b->Finish();
  EXPECT_EQ(r.skipped_traces, 1u);
  ASSERT_EQ(r.profiles.size(), 1u);  // Reported even without traces.
  EXPECT_EQ(r.profiles[0].covered_count(), 0);
  EXPECT_FALSE(CoverageBuilder::Create("no-such-cpu").ok());
}

TEST_F(CoverageTest, CorruptTraceNamesTheFile) {
  const std::string path = dir_ + "/bad.trace";
  std::ofstream(path) << "not a trace";
  absl::StatusOr<CoverageBuilder> b = CoverageBuilder::Create();
  ASSERT_TRUE(b.ok());
  absl::Status st = b->AddFile(path);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("bad.trace"));
}

TEST_F(CoverageTest, BaselineDetectsDroppedCasesAndAcceptsEqualOrMore) {
  const std::string full =
      Trace("full.trace",
            {Event(Access::kRead, 0x277, 0, RecordedKind::kRetired),
             Event(Access::kWrite, 0x277, 0x0007040600070402ull, RecordedKind::kGpInjected)});
  const std::string less =
      Trace("less.trace", {Event(Access::kRead, 0x277, 0, RecordedKind::kRetired)});
  auto report = [](const std::string& path) {
    CoverageBuilder b = *CoverageBuilder::Create();
    EXPECT_TRUE(b.AddFile(path).ok());
    return b.Finish();
  };
  const CoverageReport r_full = report(full), r_less = report(less);
  const std::string baseline = CoverageJson(r_full);
  absl::StatusOr<std::vector<std::string>> same = CoverageDrops(r_full, baseline);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_THAT(*same, IsEmpty());
  absl::StatusOr<std::vector<std::string>> drops = CoverageDrops(r_less, baseline);
  ASSERT_TRUE(drops.ok());
  ASSERT_EQ(drops->size(), 1u);
  EXPECT_THAT((*drops)[0], HasSubstr("IA32_PAT (0x277) gp-reserved"));
  EXPECT_THAT(*CoverageDrops(r_full, CoverageJson(r_less)), IsEmpty());
  EXPECT_FALSE(CoverageDrops(r_full, "{\"profiles\": []}").ok());
  EXPECT_FALSE(CoverageDrops(r_full, "not json").ok());
}

// The HTML is one self-contained page: no scripts, no external resources, one section per
// profile, one table row per MSR-table row and family, balanced table tags.
TEST_F(CoverageTest, HtmlIsSelfContainedAndWellFormed) {
  const std::string path =
      Trace("h.trace", {Event(Access::kRead, 0x277, 0, RecordedKind::kRetired)});
  CoverageBuilder b = *CoverageBuilder::Create();
  ASSERT_TRUE(b.AddFile(path).ok());
  const CoverageReport r = b.Finish();
  const std::string html = CoverageHtml(r);
  EXPECT_TRUE(absl::StartsWith(html, "<!DOCTYPE html>"));
  EXPECT_TRUE(absl::EndsWith(html, "</html>\n"));
  for (const char* banned :
       {"<script", "http://", "https://", " src=", "<link", "@import", "url("}) {
    EXPECT_THAT(html, Not(HasSubstr(banned))) << banned;
  }
  auto count = [&](const std::string& s) {
    size_t n = 0;
    for (size_t at = html.find(s); at != std::string::npos; at = html.find(s, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<section"), r.profiles.size());
  EXPECT_EQ(count("<tr"), count("</tr>"));
  EXPECT_EQ(count("<td"), count("</td>"));
  EXPECT_EQ(count("<table"), count("</table>"));
  std::vector<std::string> families;
  for (const RowCoverage& row : r.profiles[0].rows) {
    if (std::find(families.begin(), families.end(), row.row.family) == families.end()) {
      families.emplace_back(row.row.family);
    }
  }
  // Header row + one per family + one per MSR-table row.
  EXPECT_EQ(count("<tr"), 1 + families.size() + r.profiles[0].rows.size());
  EXPECT_EQ(count("class=\"sq\""), r.profiles[0].rows.size());
  EXPECT_THAT(html, HasSubstr("IA32_PAT"));
}

// With Chromium installed, the page renders headless to a PNG of a plausible size.
TEST_F(CoverageTest, HtmlRendersInHeadlessChromium) {
  const char* chromium = nullptr;
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (access(c, X_OK) == 0) chromium = c;
  }
  if (chromium == nullptr) GTEST_SKIP() << "Chromium is not installed (scripts/deps.sh)";
  const std::string path =
      Trace("c.trace", {Event(Access::kRead, 0x277, 0, RecordedKind::kRetired)});
  CoverageBuilder b = *CoverageBuilder::Create();
  ASSERT_TRUE(b.AddFile(path).ok());
  const std::string html = dir_ + "/map.html", png = dir_ + "/map.png";
  std::ofstream(html) << CoverageHtml(b.Finish());
  const std::string cmd = absl::StrCat(
      "timeout 60 ", chromium, " --headless --no-sandbox --disable-gpu --hide-scrollbars ",
      "--user-data-dir='", dir_, "/profile' --window-size=1200,900 --screenshot='", png,
      "' 'file://", html, "' >/dev/null 2>&1");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream f(png, std::ios::binary);
  const std::string bytes(std::istreambuf_iterator<char>(f), {});
  ASSERT_GT(bytes.size(), 10000u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

// The golden corpus covers something in every profile it records.
TEST(CoverageCorpusTest, GoldenCorpusCoversCases) {
  const char* src = std::getenv("MSRTRACE_SOURCE_DIR");
  if (src == nullptr) GTEST_SKIP() << "MSRTRACE_SOURCE_DIR not set";
  const std::string dir = std::string(src) + "/corpus/golden";
  DIR* d = opendir(dir.c_str());
  ASSERT_NE(d, nullptr) << dir;
  CoverageBuilder b = *CoverageBuilder::Create();
  int traces = 0;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (!absl::EndsWith(name, ".trace")) continue;
    ASSERT_TRUE(b.AddFile(absl::StrCat(dir, "/", name)).ok()) << name;
    ++traces;
  }
  closedir(d);
  ASSERT_GT(traces, 0);
  const CoverageReport r = b.Finish();
  ASSERT_FALSE(r.profiles.empty());
  for (const ProfileCoverage& p : r.profiles) EXPECT_GT(p.covered_count(), 0) << p.profile;
}

}  // namespace
}  // namespace msrtrace::triage
