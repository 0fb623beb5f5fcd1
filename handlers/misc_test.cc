#include "handlers/misc.h"

#include "gtest/gtest.h"
#include "handlers/handlers_test_util.h"

namespace msrtrace {
namespace {

using MiscTest = testing_util::ReferenceTest;

TEST_F(MiscTest, FeatureControlResetsToZero) { EXPECT_EQ(Read(kMsrFeatureControl), 0u); }

TEST_F(MiscTest, FeatureControlLockedWriteFaults) {
  Write(kMsrFeatureControl, kFeatCtlLocked);
  EXPECT_TRUE(WriteFaults(kMsrFeatureControl, kFeatCtlLocked));
  EXPECT_TRUE(WriteFaults(kMsrFeatureControl, 0));
  EXPECT_EQ(Read(kMsrFeatureControl), kFeatCtlLocked);
}

TEST_F(MiscTest, FeatureControlRejectsVmxBitsWithoutNestedVmx) {
  EXPECT_TRUE(WriteFaults(kMsrFeatureControl, kFeatCtlVmxOutsideSmx));
  EXPECT_TRUE(WriteFaults(kMsrFeatureControl, kFeatCtlVmxInsideSmx));
}

TEST_F(MiscTest, FeatureControlAllowsLmceOnlyWithLmceP) {
  Write(kMsrFeatureControl, kFeatCtlLmce | kFeatCtlLocked);  // intel-icx has MCG_LMCE_P.
  Boot("intel-minimal");
  EXPECT_TRUE(WriteFaults(kMsrFeatureControl, kFeatCtlLmce));
}

TEST_F(MiscTest, FeatureControlRejectsSgxWithoutSgx) {
  EXPECT_TRUE(WriteFaults(kMsrFeatureControl, kFeatCtlSgx));
  EXPECT_TRUE(WriteFaults(kMsrFeatureControl, kFeatCtlSgxLc));
}

TEST_F(MiscTest, FeatureControlHostMayWriteSupportedBitsWhileLocked) {
  Write(kMsrFeatureControl, kFeatCtlLocked);
  EXPECT_TRUE(HostWrite(kMsrFeatureControl, kKvmSupportedFeatureControl).ok());
  EXPECT_EQ(Read(kMsrFeatureControl), kKvmSupportedFeatureControl);
  EXPECT_FALSE(HostWrite(kMsrFeatureControl, 1ull << 3).ok());
}

TEST_F(MiscTest, FeatureControlIsVmxOnly) {
  Boot("amd-zen3");
  EXPECT_TRUE(ReadUnsupported(kMsrFeatureControl));
  EXPECT_TRUE(WriteUnsupported(kMsrFeatureControl, 0));
}

TEST_F(MiscTest, SpecCtrlFaultsWithoutFeature) {
  Boot("intel-minimal");
  EXPECT_TRUE(ReadFaults(kMsrSpecCtrl));
  EXPECT_TRUE(WriteFaults(kMsrSpecCtrl, 0));
}

TEST_F(MiscTest, SpecCtrlHostAccessWorksWithoutFeature) {
  Boot("intel-minimal");
  EXPECT_TRUE(HostWrite(kMsrSpecCtrl, 1).ok());
  EXPECT_EQ(*HostRead(kMsrSpecCtrl), 1u);
}

TEST_F(MiscTest, SpecCtrlStoresHostSupportedBits) {
  Write(kMsrSpecCtrl, 0x7);
  EXPECT_EQ(Read(kMsrSpecCtrl), 0x7u);
}

TEST_F(MiscTest, SpecCtrlRejectsBitsTheHostRejects) {
  EXPECT_TRUE(WriteFaults(kMsrSpecCtrl, 1ull << 7));  // PSFD: not on the Intel profile.
  EXPECT_TRUE(WriteFaults(kMsrSpecCtrl, 1ull << 63));
  Boot("amd-zen3");
  Write(kMsrSpecCtrl, 1ull << 7);
}

TEST_F(MiscTest, PredCmdReadIsUnsupported) { EXPECT_TRUE(ReadUnsupported(kMsrPredCmd)); }

TEST_F(MiscTest, PredCmdAcceptsIbpbAndZero) {
  Write(kMsrPredCmd, 1);
  Write(kMsrPredCmd, 0);
}

TEST_F(MiscTest, PredCmdRejectsSbpbWithoutFeature) {
  EXPECT_TRUE(WriteFaults(kMsrPredCmd, 1ull << 7));
  EXPECT_TRUE(WriteFaults(kMsrPredCmd, 2));
}

TEST_F(MiscTest, PredCmdFaultsWithoutSpecCtrlOrIbpb) {
  Boot("intel-minimal");
  EXPECT_TRUE(WriteFaults(kMsrPredCmd, 0));
}

TEST_F(MiscTest, FlushCmdAllowsOnlyL1dFlush) {
  Write(kMsrFlushCmd, 1);
  EXPECT_TRUE(WriteFaults(kMsrFlushCmd, 2));
  EXPECT_TRUE(ReadUnsupported(kMsrFlushCmd));
}

TEST_F(MiscTest, FlushCmdFaultsWithoutFlushL1d) {
  Boot("amd-zen3");
  EXPECT_TRUE(WriteFaults(kMsrFlushCmd, 1));
}

TEST_F(MiscTest, FlushCmdHostWriteFaultsWithoutFlushL1d) {
  Boot("amd-zen3");
  EXPECT_FALSE(HostWrite(kMsrFlushCmd, 0).ok());
}

TEST_F(MiscTest, BiosSignIdGuestWritesIgnored) {
  Write(kMsrBiosSignId, 0x1234);
  EXPECT_EQ(Read(kMsrBiosSignId), 0x100000000ull);
}

TEST_F(MiscTest, BiosSignIdHostWriteSets) {
  ASSERT_TRUE(HostWrite(kMsrBiosSignId, 0x2200000000ull).ok());
  EXPECT_EQ(Read(kMsrBiosSignId), 0x2200000000ull);
}

TEST_F(MiscTest, BiosSignIdResetIsPerVendor) {
  Boot("amd-zen3");
  EXPECT_EQ(Read(kMsrBiosSignId), 0x01000065ull);
}

TEST_F(MiscTest, MiscEnableResetsTo0x1800) { EXPECT_EQ(Read(kMsrMiscEnable), 0x1800u); }

TEST_F(MiscTest, MiscEnableRoBitsFault) {
  EXPECT_TRUE(WriteFaults(kMsrMiscEnable, 0));
  EXPECT_TRUE(WriteFaults(kMsrMiscEnable, 0x800));
  EXPECT_TRUE(WriteFaults(kMsrMiscEnable, 0x1000));
}

TEST_F(MiscTest, MiscEnableEmonWritesIgnored) {
  Write(kMsrMiscEnable, 0x1800 | kMiscEnableEmon);
  EXPECT_EQ(Read(kMsrMiscEnable), 0x1800u);
}

TEST_F(MiscTest, MiscEnableHasNoOtherReservedBits) {
  Write(kMsrMiscEnable, 0x1800 | (1ull << 63) | 1);
  EXPECT_EQ(Read(kMsrMiscEnable), 0x1800 | (1ull << 63) | 1);
}

TEST_F(MiscTest, MiscEnableMwaitToggleAllowedUnderDefaultQuirk) {
  Boot("intel-minimal");  // No SSE3.
  Write(kMsrMiscEnable, 0x1800 | kMiscEnableMwait);
  EXPECT_EQ(Read(kMsrMiscEnable), 0x1800 | kMiscEnableMwait);
}

TEST_F(MiscTest, MiscEnableHostMayChangeRoBits) {
  ASSERT_TRUE(HostWrite(kMsrMiscEnable, kMiscEnableEmon).ok());
  EXPECT_EQ(Read(kMsrMiscEnable), kMiscEnableEmon);
}

TEST_F(MiscTest, PlatformIdReadsZero) { EXPECT_EQ(Read(kMsrPlatformId), 0u); }

TEST_F(MiscTest, PlatformIdWriteIsUnsupported) { EXPECT_TRUE(WriteUnsupported(kMsrPlatformId, 0)); }

TEST_F(MiscTest, FixedValueMsrsReadKvmValues) {
  EXPECT_EQ(Read(0xcd), 3u);
  EXPECT_EQ(Read(0x2c), 1ull << 24);
  EXPECT_EQ(Read(0x198), 1000ull | (4ull << 40));
  EXPECT_EQ(Read(0xc001001b), 0x20000000u);
  EXPECT_EQ(Read(0x2a), 0u);
  EXPECT_TRUE(WriteUnsupported(0x198, 0));
}

TEST_F(MiscTest, BblCrCtl3WritesDropped) {
  Write(kMsrBblCrCtl3, 0);
  EXPECT_EQ(Read(kMsrBblCrCtl3), 0xbe702111u);
}

TEST_F(MiscTest, PlatformInfoResetHasCpuidFault) {
  EXPECT_EQ(Read(kMsrPlatformInfo), kPlatformInfoCpuidFault);
}

TEST_F(MiscTest, PlatformInfoGuestWriteFaults) {
  EXPECT_TRUE(WriteFaults(kMsrPlatformInfo, kPlatformInfoCpuidFault));
}

TEST_F(MiscTest, PlatformInfoHostWriteSets) {
  ASSERT_TRUE(HostWrite(kMsrPlatformInfo, 0).ok());
  EXPECT_EQ(Read(kMsrPlatformInfo), 0u);
}

TEST_F(MiscTest, PlatformInfoHostCannotClearCpuidFaultWhileEnabled) {
  Write(kMsrMiscFeaturesEnables, kMiscFeaturesCpuidFault);
  EXPECT_FALSE(HostWrite(kMsrPlatformInfo, 0).ok());
}

TEST_F(MiscTest, MiscFeaturesEnablesCpuidFaultNeedsPlatformInfo) {
  ASSERT_TRUE(HostWrite(kMsrPlatformInfo, 0).ok());
  EXPECT_TRUE(WriteFaults(kMsrMiscFeaturesEnables, kMiscFeaturesCpuidFault));
  EXPECT_TRUE(WriteFaults(kMsrMiscFeaturesEnables, 2));
}

TEST_F(MiscTest, HwcrAcceptsMcStatusWrEnAndTscFreqSel) {
  Write(kMsrHwcr, kHwcrMcStatusWrEn | kHwcrTscFreqSel);
  EXPECT_EQ(Read(kMsrHwcr), kHwcrMcStatusWrEn | kHwcrTscFreqSel);
  EXPECT_TRUE(WriteFaults(kMsrHwcr, 1));
}

TEST_F(MiscTest, HwcrSilentlyClearsBits3And6And8) {
  Write(kMsrHwcr, 0x148);
  EXPECT_EQ(Read(kMsrHwcr), 0u);
}

TEST_F(MiscTest, PowerCtlStoresAnyValue) {
  Write(0x1fc, 0xffffffffffffffffull);
  EXPECT_EQ(Read(0x1fc), 0xffffffffffffffffull);
}

}  // namespace
}  // namespace msrtrace
