// The CLI with a handler set other than the reference one: record --handler-set, msrs
// --handler-set, seeds, show --format=log names, and RunMsrtraceCli's defaults. Uses the built-in
// "reference+fifo" set (the reference set plus the FIFO device at 0xabc), which stands in for a
// team's set: the FIFO is outside the reference table.
#include <dirent.h>
#include <stdlib.h>

#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "handlers/cpu_profile.h"
#include "harness/trace/trace_file.h"
#include "tools/cli.h"
#include "tools/command.h"
#include "tools/set_rows.h"

namespace msrtrace::cli {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

class HandlerSetCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "handler_set_cli_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    const std::string cmd = "rm -rf '" + dir_ + "'";
    EXPECT_EQ(system(cmd.c_str()), 0);
  }
  std::string dir_;
};

std::string HeaderSet(const std::string& path) {
  absl::StatusOr<std::unique_ptr<TraceReader>> r = TraceReader::Open(path);
  if (!r.ok()) return absl::StrCat("error: ", r.status().message());
  return (*r)->header().handler_set;
}

std::set<std::string> Files(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") out.insert(n);
  }
  closedir(d);
  return out;
}

TEST(SetRowsTest, OwnIndicesBecomeRowsNamedByTheirHandlers) {
  absl::StatusOr<SetRows> rows = HandlerSetRows("reference+fifo", DefaultProfile());
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->own.size(), 1u);
  EXPECT_EQ(rows->own[0].first, 0xabcu);
  bool found = false;
  for (const MsrRow& r : rows->rows) {
    if (r.index != 0xabc) continue;
    found = true;
    EXPECT_STREQ(r.name, "FIFO_DEVICE");
    EXPECT_STREQ(r.family, "reference+fifo");
  }
  EXPECT_TRUE(found);
  for (size_t i = 1; i < rows->rows.size(); ++i) {
    EXPECT_LT(rows->rows[i - 1].index, rows->rows[i].index);
  }
}

TEST(SetRowsTest, ReferenceSetHasNoOwnIndices) {
  absl::StatusOr<SetRows> rows = HandlerSetRows("reference", DefaultProfile());
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_TRUE(rows->own.empty());
  EXPECT_FALSE(rows->registered.empty());
}

TEST(SetRowsTest, UnknownSetIsAnErrorListingTheKnownOnes) {
  absl::StatusOr<SetRows> rows = HandlerSetRows("no-such-set", DefaultProfile());
  ASSERT_FALSE(rows.ok());
  EXPECT_THAT(std::string(rows.status().message()), HasSubstr("reference+fifo"));
}

TEST_F(HandlerSetCliTest, RecordWritesTheHandlerSetIntoTheHeader) {
  RecordOptions o;
  o.golden = "faults";
  o.handler_set = "reference+fifo";
  o.output = dir_ + "/f.trace";
  std::ostringstream out, err;
  ASSERT_EQ(RunRecord(o, out, err), kExitOk) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("handler set reference+fifo"));
  EXPECT_EQ(HeaderSet(o.output), "reference+fifo");
}

TEST_F(HandlerSetCliTest, RecordRejectsAnUnknownHandlerSet) {
  RecordOptions o;
  o.workload = "linux-boot";
  o.handler_set = "no-such-set";
  o.output = dir_ + "/x.trace";
  std::ostringstream out, err;
  EXPECT_EQ(RunRecord(o, out, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr("unknown handler set 'no-such-set'"));
}

TEST_F(HandlerSetCliTest, MsrsPrintsTheSetsOwnRows) {
  MsrsOptions o;
  o.handler_set = "reference+fifo";
  std::ostringstream out, err;
  ASSERT_EQ(RunMsrs(o, out, err), kExitOk) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("handler set reference+fifo"));
  EXPECT_THAT(out.str(), HasSubstr("FIFO_DEVICE"));
  o.handler_set = "reference";
  std::ostringstream ref;
  ASSERT_EQ(RunMsrs(o, ref, err), kExitOk);
  EXPECT_THAT(ref.str(), Not(HasSubstr("FIFO_DEVICE")));
}

TEST_F(HandlerSetCliTest, SeedsRecordGoldenWorkloadsAndSweepsOnTheSet) {
  SeedsOptions o;
  o.dir = dir_ + "/seeds";
  o.handler_set = "reference+fifo";
  o.dict = dir_ + "/seeds.dict";
  std::ostringstream out, err;
  ASSERT_EQ(RunSeeds(o, out, err), kExitOk) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("for handler set reference+fifo (1 own index ranges)"));
  const std::set<std::string> files = Files(o.dir);
  EXPECT_THAT(files, Contains("sweep-abc.trace"));
  EXPECT_THAT(files, Contains("sweep-own.trace"));
  EXPECT_THAT(files, Contains("linux-boot-intel-icx.trace"));
  EXPECT_THAT(files, Not(Contains("incomplete-torn-tail.trace")));
  for (const std::string& f : files) EXPECT_EQ(HeaderSet(o.dir + "/" + f), "reference+fifo") << f;
  // Every seed replays clean on the set, twice and resumed.
  ReplayCommandOptions ro;
  ro.paths = {o.dir};
  ro.repeat = 2;
  ro.resume_after = 3;
  std::ostringstream rout, rerr;
  EXPECT_EQ(RunReplay(ro, rout, rerr), kExitOk) << rout.str() << rerr.str();
  // The sweep names the FIFO in the log view; the dictionary has its index and name.
  ShowOptions so;
  so.path = o.dir + "/sweep-abc.trace";
  so.format = Format::kLog;
  std::ostringstream sout;
  ASSERT_EQ(RunShow(so, sout, err), kExitOk) << err.str();
  EXPECT_THAT(sout.str(), HasSubstr("wrmsr FIFO_DEVICE (0xabc) <- 0x1: retired"));
  std::ostringstream dict;
  dict << std::ifstream(o.dict).rdbuf();
  EXPECT_THAT(dict.str(), HasSubstr("own_abc=\"\\xBC\\x15\""));
  EXPECT_THAT(dict.str(), HasSubstr("name_FIFO_DEVICE=\"FIFO_DEVICE\""));
}

TEST_F(HandlerSetCliTest, CliConfigSetsTheDefaultHandlerSet) {
  const std::string path = dir_ + "/d.trace";
  std::vector<std::string> args = {"team_msrtrace", "record", "--golden=faults", "-o", path};
  std::vector<char*> argv;
  argv.reserve(args.size());
  for (std::string& a : args) argv.push_back(a.data());
  CliConfig config;
  config.default_handler_set = "reference+fifo";
  testing::internal::CaptureStdout();
  const int code = RunMsrtraceCli(static_cast<int>(argv.size()), argv.data(), config);
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(code, kExitOk) << out;
  EXPECT_EQ(HeaderSet(path), "reference+fifo");
  // Without a config the built-in default is the reference set.
  std::vector<char*> argv2 = argv;
  testing::internal::CaptureStdout();
  EXPECT_EQ(RunMsrtraceCli(static_cast<int>(argv2.size()), argv2.data()), kExitOk);
  testing::internal::GetCapturedStdout();
  EXPECT_EQ(HeaderSet(path), "reference");
}

}  // namespace
}  // namespace msrtrace::cli
