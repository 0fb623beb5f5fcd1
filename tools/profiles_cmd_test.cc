#include "tools/profiles_cmd.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "handlers/cpu_profile.h"
#include "tools/command.h"

namespace msrtrace::cli {
namespace {

using ::testing::HasSubstr;

TEST(ProfilesCmdTest, TableListsEveryProfileWithFeatureUsers) {
  std::ostringstream out, err;
  ASSERT_EQ(RunProfiles("", "table", out, err), kExitOk) << err.str();
  for (const CpuProfile& p : BuiltinProfiles()) EXPECT_THAT(out.str(), HasSubstr(p.name + ":"));
  EXPECT_THAT(out.str(), HasSubstr("arch-capabilities  -> IA32_ARCH_CAPABILITIES"));
  EXPECT_THAT(out.str(), HasSubstr("MAXPHYADDR 52, canonical MSR addresses 57 bits"));
}

TEST(ProfilesCmdTest, JsonHasPmuAndFeatures) {
  std::ostringstream out, err;
  ASSERT_EQ(RunProfiles("amd-zen4", "json", out, err), kExitOk) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("{\"profiles\":[{\"name\":\"amd-zen4\""));
  EXPECT_THAT(out.str(), HasSubstr("\"pmu\":{\"version\":2,\"gp_counters\":6"));
  EXPECT_THAT(out.str(), HasSubstr("{\"name\":\"perfmon-v2\",\"msrs\":["));
}

TEST(ProfilesCmdTest, HypervProfileShowsHyperVCpuidAndGatedRows) {
  std::ostringstream out, err;
  ASSERT_EQ(RunProfiles("hyperv", "table", out, err), kExitOk) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("Hyper-V: HYPERV_CPUID_FEATURES EAX 0xaaff EDX 0x80500"));
  EXPECT_THAT(out.str(), HasSubstr("SynIC v2"));
  EXPECT_THAT(out.str(), HasSubstr("hyperv  -> HV_X64_MSR_GUEST_OS_ID"));
  std::ostringstream json;
  ASSERT_EQ(RunProfiles("hyperv", "json", json, err), kExitOk) << err.str();
  EXPECT_THAT(json.str(), HasSubstr("\"hyperv\":{\"features_eax\":\"0xaaff\""));
}

TEST(ProfilesCmdTest, UnknownProfileOrFormatIsBadInput) {
  std::ostringstream out, err;
  EXPECT_EQ(RunProfiles("nope", "table", out, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr("unknown profile 'nope'"));
  EXPECT_EQ(RunProfiles("", "csv", out, err), kExitBadInput);
}

}  // namespace
}  // namespace msrtrace::cli
