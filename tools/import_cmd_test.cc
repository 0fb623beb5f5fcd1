#include "tools/import_cmd.h"

#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/core/test_tmpdir.h"
#include "harness/trace/trace_file.h"
#include "tools/command.h"

namespace msrtrace::cli {
namespace {

using ::testing::HasSubstr;

std::string WriteCapture(absl::string_view name, absl::string_view text) {
  std::string path = testing_util::TestTempPath(static_cast<std::string>(name));
  FILE* f = fopen(path.c_str(), "w");
  EXPECT_NE(f, nullptr);
  fwrite(text.data(), 1, text.size(), f);
  fclose(f);
  return path;
}

constexpr absl::string_view kCapture =
    "q-1 [000] d.... 1.0: kvm_exit: vcpu 0 reason MSR_READ rip 0xffffffff81000000 info1 0x0 "
    "info2 0x0 intr_info 0x0 error_code 0x0\n"
    "q-1 [000] d.... 1.0: kvm_msr: msr_read 277 = 0x7040600070406\n"
    "q-1 [000] d.... 1.0: kvm_entry: vcpu 0, rip 0xffffffff81000002\n"
    "q-1 [000] d.... 1.0: kvm_msr: msr_write 277 = 0x2 (#GP)\n"
    "q-1 [000] d.... 1.0: kvm_msr: msr_read 1a2 = 0x0 (#GP)\n";

TEST(ImportCmdTest, ImportsAndPrintsCoverageAgainstTheReferenceSet) {
  ImportOptions o;
  o.inputs = {WriteCapture("a.txt", kCapture)};
  o.output = o.inputs[0] + ".trace";
  std::ostringstream out, err;
  EXPECT_EQ(RunImport(o, out, err), kExitOk) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("coverage: 1 of 2 production MSRs handled, 0 disagree"));
  EXPECT_THAT(out.str(), HasSubstr("IA32_PAT"));
  absl::StatusOr<std::unique_ptr<TraceReader>> r = TraceReader::Open(o.output);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->header().handler_set, "reference");
  remove(o.inputs[0].c_str());
  remove(o.output.c_str());
}

TEST(ImportCmdTest, JsonFormatPrintsOneObject) {
  ImportOptions o;
  o.inputs = {WriteCapture("b.txt", kCapture)};
  o.format = "json";
  std::ostringstream out, err;
  EXPECT_EQ(RunImport(o, out, err), kExitOk) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("\"coverage\":{\"msrs_total\":\"2\",\"msrs_handled\":\"1\""));
  remove(o.inputs[0].c_str());
}

TEST(ImportCmdTest, UnknownProfileIsAUsageError) {
  ImportOptions o;
  o.inputs = {"x"};
  o.profile = "no-such-cpu";
  std::ostringstream out, err;
  EXPECT_EQ(RunImport(o, out, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr("unknown CPU profile 'no-such-cpu'"));
}

TEST(ImportCmdTest, UnknownHandlerSetIsAUsageError) {
  ImportOptions o;
  o.inputs = {"x"};
  o.handler_set = "nope";
  std::ostringstream out, err;
  EXPECT_EQ(RunImport(o, out, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr("unknown handler set 'nope'"));
}

TEST(ImportCmdTest, UnknownPolicyIsAUsageError) {
  ImportOptions o;
  o.inputs = {"x"};
  o.unknown_msr_policy = "explode";
  std::ostringstream out, err;
  EXPECT_EQ(RunImport(o, out, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr("--unknown-msr-policy"));
}

TEST(ImportCmdTest, NoInputIsAUsageError) {
  ImportOptions o;
  std::ostringstream out, err;
  EXPECT_EQ(RunImport(o, out, err), kExitBadInput);
}

TEST(ImportCmdTest, MissingFileIsBadInputNamingIt) {
  ImportOptions o;
  o.inputs = {"/nonexistent/cap.txt"};
  std::ostringstream out, err;
  EXPECT_EQ(RunImport(o, out, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr("/nonexistent/cap.txt"));
}

TEST(ImportCmdTest, StrictFailsOnABadLine) {
  ImportOptions o;
  o.inputs = {WriteCapture("c.txt", absl::StrCat(kCapture, "junk\n"))};
  o.strict = true;
  std::ostringstream out, err;
  EXPECT_EQ(RunImport(o, out, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr("c.txt:6:1:"));
  remove(o.inputs[0].c_str());
}

TEST(ImportCmdTest, FailOnDisagreementExitsOne) {
  // Production says PAT read a value the reference reset does not explain after a write.
  ImportOptions o;
  o.inputs = {WriteCapture("d.txt",
                           "q-1 [000] d.... 1.0: kvm_msr: msr_write 277 = 0x7040600070406\n"
                           "q-1 [000] d.... 1.0: kvm_msr: msr_read 277 = 0x7\n")};
  o.fail_on_disagreement = true;
  std::ostringstream out, err;
  EXPECT_EQ(RunImport(o, out, err), kExitDivergence);
  EXPECT_THAT(out.str(), HasSubstr("production read 0x7, here 0x7040600070406"));
  remove(o.inputs[0].c_str());
}

}  // namespace
}  // namespace msrtrace::cli
