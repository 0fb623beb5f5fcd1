// Tests of the subcommands through their Run functions: output, formats and exit codes.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/core/test_tmpdir.h"
#include "harness/trace/trace_file.h"
#include "tools/command.h"

namespace msrtrace::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A path in this process's private temporary directory (removed at exit).
std::string Temp(const std::string& name) { return testing_util::TestTempPath(name); }

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void Spit(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f << data;
}

// Records a workload once per test binary run.
std::string Recorded(const std::string& workload, uint64_t events = 300) {
  std::string path = Temp(workload + "_" + std::to_string(events) + ".trace");
  if (access(path.c_str(), F_OK) == 0) return path;
  RecordOptions o;
  o.workload = workload;
  o.events = events;
  o.output = path;
  std::ostringstream out, err;
  EXPECT_EQ(RunRecord(o, out, err), kExitOk) << err.str();
  return path;
}

struct Result {
  int code;
  std::string out, err;
};

template <typename Options, typename F>
Result Call(F f, const Options& o) {
  std::ostringstream out, err;
  const int code = f(o, out, err);
  return {code, out.str(), err.str()};
}

// A trace whose third event has a wrong recorded value.
std::string DivergentTrace() {
  const std::string src = Recorded("linux-boot");
  std::string path = Temp("divergent.trace");
  auto r = TraceReader::Open(src);
  EXPECT_TRUE(r.ok());
  auto w = TraceWriter::Create(path, (*r)->header(), (*r)->snapshot());
  EXPECT_TRUE(w.ok());
  ExitEvent e;
  while (*(*r)->Next(&e)) {
    if (e.seq == 3) e.rax_out ^= 0x10;
    EXPECT_TRUE((*w)->Append(e).ok());
  }
  EXPECT_TRUE((*w)->Close((*r)->trailer().final_state_digest).ok());
  return path;
}

// --- exit codes -------------------------------------------------------------------------------

TEST(CommandsTest, CombineExitCodesPrecedence) {
  EXPECT_EQ(CombineExitCodes(kExitOk, kExitIncomplete), kExitIncomplete);
  EXPECT_EQ(CombineExitCodes(kExitIncomplete, kExitDivergence), kExitDivergence);
  EXPECT_EQ(CombineExitCodes(kExitBadInput, kExitDivergence), kExitBadInput);
  EXPECT_EQ(CombineExitCodes(kExitOk, kExitOk), kExitOk);
}

// --- record -----------------------------------------------------------------------------------

TEST(CommandsTest, RecordListShowsWorkloadsAndGoldenTraces) {
  RecordOptions o;
  o.list = true;
  Result r = Call(RunRecord, o);
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("linux-boot"));
  EXPECT_THAT(r.out, HasSubstr("random"));
  EXPECT_THAT(r.out, HasSubstr("incomplete-torn-tail"));
}

TEST(CommandsTest, RecordRejectsUnknownWorkloadProfileAndPolicy) {
  RecordOptions o;
  o.output = Temp("never.trace");
  o.workload = "nope";
  EXPECT_EQ(Call(RunRecord, o).code, kExitBadInput);
  o.workload = "random";
  o.profile = "pentium";
  Result r = Call(RunRecord, o);
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr("pentium"));
  o.profile = "";
  o.unknown_msr_policy = "explode";
  EXPECT_EQ(Call(RunRecord, o).code, kExitBadInput);
  o.unknown_msr_policy = "";
  o.output = "";
  EXPECT_EQ(Call(RunRecord, o).code, kExitBadInput);
}

TEST(CommandsTest, RecordGoldenByName) {
  RecordOptions o;
  o.golden = "faults";
  o.output = Temp("golden_faults.trace");
  Result r = Call(RunRecord, o);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("workload faults"));
  o.golden = "no-such-golden";
  EXPECT_EQ(Call(RunRecord, o).code, kExitBadInput);
}

// --- replay -----------------------------------------------------------------------------------

TEST(CommandsTest, ReplayCleanTraceExitsZeroWithSummary) {
  ReplayCommandOptions o;
  o.paths = {Recorded("linux-boot")};
  Result r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitOk) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(": clean"));
  EXPECT_THAT(r.out, HasSubstr("IA32_PAT"));
  EXPECT_THAT(r.out, HasSubstr("events/s"));
  EXPECT_THAT(r.out, HasSubstr("summary: 1 traces"));
}

TEST(CommandsTest, ReplayDivergenceExitsOneAndNamesSeqVcpuMsr) {
  ReplayCommandOptions o;
  o.paths = {DivergentTrace()};
  Result r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitDivergence);
  EXPECT_THAT(r.out, HasSubstr("divergence 1: seq 3 vCPU 0 wrmsr IA32_EFER (0xc0000080): value"));
  EXPECT_THAT(r.out, HasSubstr("registers: rax: expected"));
}

TEST(CommandsTest, ReplayJsonHasDocumentedKeys) {
  ReplayCommandOptions o;
  o.paths = {DivergentTrace()};
  o.format = Format::kJson;
  Result r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitDivergence);
  for (const char* key :
       {"\"traces\":", "\"path\":", "\"status\":\"divergent\"", "\"exit_code\":1", "\"events\":",
        "\"faults\":", "\"divergence_count\":", "\"divergences\":[{\"kind\":\"value\"",
        "\"seq\":\"3\"", "\"vcpu\":0", "\"msr\":", "\"expected\":", "\"actual\":", "\"reg_diff\":",
        "\"per_msr\":", "\"end\":\"complete\"",
        "\"final_digest\":", "\"events_per_second\":", "\"summary\":"}) {
    EXPECT_THAT(r.out, HasSubstr(key));
  }
}

// docs/cli.md: a trailer without a digest prints recorded_final_digest as 0x0000000000000000
// (printf's "%#x" would drop the 0x of a zero).
TEST(CommandsTest, ReplayJsonPrintsMissingDigestAsDocumented) {
  const std::string src = Recorded("linux-boot");
  const std::string path = Temp("no-digest.trace");
  auto r = TraceReader::Open(src);
  ASSERT_TRUE(r.ok());
  auto w = TraceWriter::Create(path, (*r)->header(), (*r)->snapshot());
  ASSERT_TRUE(w.ok());
  ExitEvent e;
  while (*(*r)->Next(&e)) ASSERT_TRUE((*w)->Append(e).ok());
  ASSERT_TRUE((*w)->Close(0).ok());
  ReplayCommandOptions o;
  o.paths = {path};
  o.format = Format::kJson;
  Result res = Call(RunReplay, o);
  EXPECT_EQ(res.code, kExitOk) << res.out << res.err;
  EXPECT_THAT(res.out, HasSubstr("\"recorded_final_digest\":\"0x0000000000000000\""));
  EXPECT_THAT(res.out, HasSubstr("\"final_digest\":\"0x"));
}

TEST(CommandsTest, ReplayWritesJunitWithFailuresPerDivergence) {
  ReplayCommandOptions o;
  o.paths = {DivergentTrace(), Recorded("linux-boot")};
  o.junit = Temp("junit.xml");
  Result r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitDivergence);
  const std::string xml = Slurp(o.junit);
  EXPECT_THAT(xml, HasSubstr("<testsuites"));
  EXPECT_THAT(xml, HasSubstr("<failure message=\"seq 3 vCPU 0"));
  EXPECT_THAT(xml, HasSubstr("name=\"replay\""));
}

TEST(CommandsTest, ReplayDirectoryAndShards) {
  const std::string dir = Temp("dir");
  ASSERT_EQ(system(("mkdir -p " + dir + "/sub").c_str()), 0);
  ASSERT_EQ(
      system(("cp " + Recorded("linux-boot") + " " + dir + "/a.trace && cp " + Recorded("smp-ipi") +
              " " + dir + "/sub/b.trace && echo x > " + dir + "/ignored.txt")
                 .c_str()),
      0);
  ReplayCommandOptions o;
  o.paths = {dir};
  Result all = Call(RunReplay, o);
  EXPECT_EQ(all.code, kExitOk) << all.err;
  EXPECT_THAT(all.out, HasSubstr("summary: 2 traces"));
  o.shard_index = 1;
  o.shard_count = 2;
  Result shard = Call(RunReplay, o);
  EXPECT_THAT(shard.out, HasSubstr("summary: 1 traces"));
  EXPECT_THAT(shard.out, HasSubstr("b.trace"));
  o.shard_index = 2;
  EXPECT_EQ(Call(RunReplay, o).code, kExitBadInput);
}

TEST(CommandsTest, ReplayIncompleteTraceExitsThree) {
  ReplayCommandOptions o;
  o.paths = {Recorded("torn-tail")};
  Result r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitIncomplete) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("torn-tail"));
  o.paths = {Recorded("no-trailer")};
  r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitIncomplete);
  EXPECT_THAT(r.out, HasSubstr("no-trailer"));
}

TEST(CommandsTest, ReplayGarbageIsOneLineErrorExitTwo) {
  const std::string junk = Temp("junk.trace");
  Spit(junk, "this is not a trace at all");
  ReplayCommandOptions o;
  o.paths = {junk};
  Result r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr(junk));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  o.paths = {Temp("missing.trace")};
  EXPECT_EQ(Call(RunReplay, o).code, kExitBadInput);
  const std::string empty_dir = Temp("empty_dir");
  ASSERT_EQ(system(("mkdir -p " + empty_dir).c_str()), 0);
  o.paths = {empty_dir};
  r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr("no *.trace files found"));
}

TEST(CommandsTest, ReplayTruncatedEverywhereNeverCrashes) {
  const std::string good = Slurp(Recorded("kvm-clock"));
  const std::string cut = Temp("cut.trace");
  for (size_t n = 0; n < good.size(); n += 7) {
    Spit(cut, good.substr(0, n));
    ReplayCommandOptions o;
    o.paths = {cut};
    const int code = Call(RunReplay, o).code;
    EXPECT_TRUE(code == kExitBadInput || code == kExitIncomplete || code == kExitOk)
        << "cut at " << n << ": " << code;
  }
}

TEST(CommandsTest, ReplayBadOptionsAreUsageErrors) {
  ReplayCommandOptions o;
  o.paths = {Recorded("linux-boot")};
  o.volatile_policy = "fuzzy";
  EXPECT_EQ(Call(RunReplay, o).code, kExitBadInput);
  o.volatile_policy = "kind-only";
  o.repeat = 0;
  EXPECT_EQ(Call(RunReplay, o).code, kExitBadInput);
  o.repeat = 3;
  o.resume_after = 100;
  EXPECT_EQ(Call(RunReplay, o).code, kExitOk);
  o.paths.clear();
  EXPECT_EQ(Call(RunReplay, o).code, kExitBadInput);
}

// --- show / convert / diff / stats ------------------------------------------------------------

TEST(CommandsTest, ShowTextProtoHasAllSectionsAndHeadLimits) {
  ShowOptions o;
  o.path = Recorded("kvm-clock");
  Result r = Call(RunShow, o);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("header {"));
  EXPECT_THAT(r.out, HasSubstr("snapshot {"));
  EXPECT_THAT(r.out, HasSubstr("events {"));
  EXPECT_THAT(r.out, HasSubstr("trailer {"));
  o.head = 2;
  o.events_only = true;
  r = Call(RunShow, o);
  size_t events = 0;
  for (size_t p = r.out.find("events {"); p != std::string::npos;
       p = r.out.find("events {", p + 1)) {
    ++events;
  }
  EXPECT_EQ(events, 2u);
  EXPECT_THAT(r.out, Not(HasSubstr("header {")));
}

// `show` prints with the text printer `convert` uses (harness/trace/trace_text.h): 64-bit values in
// hex, counters in decimal.
TEST(CommandsTest, ShowTextProtoPrintsValuesInHexLikeConvert) {
  ShowOptions o;
  o.path = Recorded("kvm-clock");
  o.head = 1;
  o.events_only = true;
  Result r = Call(RunShow, o);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("rcx: 0x"));
  EXPECT_THAT(r.out, HasSubstr("seq: 1\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("rcx: 1")));
}

TEST(CommandsTest, ShowLogPrintsOneLinePerExitWithMsrNamesAndOutcomes) {
  ShowOptions o;
  o.path = Recorded("kvm-clock");
  o.format = Format::kLog;
  Result r = Call(RunShow, o);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("# "));
  EXPECT_THAT(r.out, HasSubstr("wrmsr MSR_KVM_SYSTEM_TIME_NEW (0x4b564d01) <- "));
  EXPECT_THAT(r.out, HasSubstr("guest-memory write(s)"));
  EXPECT_THAT(r.out, HasSubstr(": retired"));
  EXPECT_THAT(r.out, HasSubstr("# end: complete"));
  o.head = 3;
  o.events_only = true;
  r = Call(RunShow, o);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3);
  o.head = 0;
  o.tail = 2;
  EXPECT_EQ(Call(RunShow, o).code, kExitBadInput);
}

TEST(CommandsTest, ShowJsonTailPrintsLastEvents) {
  ShowOptions o;
  o.path = Recorded("linux-boot");
  o.format = Format::kJson;
  o.tail = 1;
  Result r = Call(RunShow, o);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"header\": "));
  EXPECT_THAT(r.out, HasSubstr("\"events\": ["));
  EXPECT_THAT(r.out, HasSubstr("\"trailer\": "));
  // The last of the intel-icx linux-boot recording's 696 exits.
  EXPECT_THAT(r.out, HasSubstr("\"seq\":\"696\""));
}

TEST(CommandsTest, ConvertRoundTripBinaryTextJsonBinary) {
  const std::string bin = Recorded("kvm-clock");
  const std::string txt = Temp("rt.textproto"), json = Temp("rt.json");
  const std::string bin2 = Temp("rt2.trace"), bin3 = Temp("rt3.trace"), json2 = Temp("rt2.json");
  ConvertOptions c;
  c.input = bin;
  c.output = txt;
  ASSERT_EQ(Call(RunConvert, c).code, kExitOk);
  c.input = txt;
  c.output = json;  // Text to JSON (through a temporary binary trace).
  ASSERT_EQ(Call(RunConvert, c).code, kExitOk);
  c.input = json;
  c.output = bin2;
  ASSERT_EQ(Call(RunConvert, c).code, kExitOk);
  c.input = txt;
  c.output = bin3;
  ASSERT_EQ(Call(RunConvert, c).code, kExitOk);
  c.input = bin2;
  c.output = json2;
  ASSERT_EQ(Call(RunConvert, c).code, kExitOk);
  EXPECT_EQ(Slurp(json), Slurp(json2));
  for (const std::string& b : {bin2, bin3}) {
    DiffOptions d;
    d.a = bin;
    d.b = b;
    Result r = Call(RunDiff, d);
    EXPECT_EQ(r.code, kExitOk) << r.out;
    ReplayCommandOptions o;
    o.paths = {b};
    EXPECT_EQ(Call(RunReplay, o).code, kExitOk);
  }
}

TEST(CommandsTest, ConvertRejectsBadInputAndTarget) {
  const std::string junk = Temp("junk.textproto");
  Spit(junk, "header { this is not { valid");
  ConvertOptions c;
  c.input = junk;
  c.output = Temp("never.trace");
  Result r = Call(RunConvert, c);
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  c.input = Recorded("kvm-clock");
  c.to = "yaml";
  EXPECT_EQ(Call(RunConvert, c).code, kExitBadInput);
  c.to = "binary";
  EXPECT_EQ(Call(RunConvert, c).code, kExitBadInput);  // Already binary.
}

TEST(CommandsTest, DiffReportsFirstDifferentEvent) {
  DiffOptions d;
  d.a = Recorded("linux-boot");
  d.b = DivergentTrace();
  Result r = Call(RunDiff, d);
  EXPECT_EQ(r.code, kExitDivergence);
  EXPECT_THAT(r.out, HasSubstr("event #3"));
  EXPECT_THAT(r.out, HasSubstr("rax_out"));
  d.b = Recorded("smp-ipi");
  EXPECT_EQ(Call(RunDiff, d).code, kExitDivergence);
  d.b = Temp("missing.trace");
  EXPECT_EQ(Call(RunDiff, d).code, kExitBadInput);
}

TEST(CommandsTest, StatsTextAndJson) {
  StatsOptions s;
  s.paths = {Recorded("kvm-clock")};
  Result r = Call(RunStats, s);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("25 events, complete"));
  EXPECT_THAT(r.out, HasSubstr("MSR_KVM_SYSTEM_TIME_NEW"));
  s.format = Format::kJson;
  r = Call(RunStats, s);
  for (const char* key : {"\"traces\":[", "\"events\":\"25\"",
                          "\"retired\":", "\"gp\":", "\"memory_writes\":", "\"per_vcpu\":{",
                          "\"per_msr\":[", "\"end\":\"complete\""}) {
    EXPECT_THAT(r.out, HasSubstr(key));
  }
}

// --- msrs -------------------------------------------------------------------------------------

TEST(CommandsTest, MsrsTableCsvJsonPerProfile) {
  MsrsOptions m;
  Result r = Call(RunMsrs, m);
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("IA32_PAT"));
  m.profile = "all";
  m.format = Format::kCsv;
  r = Call(RunMsrs, m);
  EXPECT_THAT(r.out, HasSubstr("profile,index"));
  EXPECT_THAT(r.out, HasSubstr("amd-zen3,"));
  EXPECT_THAT(r.out, HasSubstr("intel-minimal,"));
  m.format = Format::kJson;
  m.profile = "amd-zen3";
  r = Call(RunMsrs, m);
  EXPECT_THAT(r.out, HasSubstr("{\"profiles\":["));
  EXPECT_THAT(r.out, HasSubstr("\"profile\":\"amd-zen3\""));
  EXPECT_THAT(r.out, HasSubstr("\"msrs\":["));
  m.profile = "pentium";
  r = Call(RunMsrs, m);
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr("intel-icx"));
}

}  // namespace
}  // namespace msrtrace::cli
