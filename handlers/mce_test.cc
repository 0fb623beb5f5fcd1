#include "handlers/mce.h"

#include "gtest/gtest.h"
#include "handlers/handlers_test_util.h"
#include "handlers/misc.h"

namespace msrtrace {
namespace {

using MceTest = testing_util::ReferenceTest;

constexpr uint32_t McCtl(uint32_t bank) { return kMsrMc0Ctl + 4 * bank; }
constexpr uint32_t McStatus(uint32_t bank) { return kMsrMc0Ctl + 4 * bank + 1; }
constexpr uint32_t McAddr(uint32_t bank) { return kMsrMc0Ctl + 4 * bank + 2; }
constexpr uint32_t McMisc(uint32_t bank) { return kMsrMc0Ctl + 4 * bank + 3; }

TEST_F(MceTest, McgCapReportsProfileBanksAndCapabilities) {
  EXPECT_EQ(Read(kMsrMcgCap), 10u | kMcgCtlP | kMcgSerP | kMcgLmceP);
  Boot("intel-minimal");
  EXPECT_EQ(Read(kMsrMcgCap), 4u);
}

TEST_F(MceTest, McgCapIsReadOnly) { EXPECT_TRUE(WriteUnsupported(kMsrMcgCap, 10)); }

TEST_F(MceTest, McgStatusAcceptsAnyValue) {
  Write(kMsrMcgStatus, 0xffffffffffffffffull);
  EXPECT_EQ(Read(kMsrMcgStatus), 0xffffffffffffffffull);
}

TEST_F(MceTest, McgCtlResetsToAllOnesWithMcgCtlP) { EXPECT_EQ(Read(kMsrMcgCtl), ~0ull); }

TEST_F(MceTest, McgCtlOnlyZeroOrAllOnes) {
  Write(kMsrMcgCtl, 0);
  Write(kMsrMcgCtl, ~0ull);
  EXPECT_TRUE(WriteFaults(kMsrMcgCtl, 1));
}

TEST_F(MceTest, McgCtlFaultsWithoutMcgCtlP) {
  Boot("intel-minimal");
  EXPECT_TRUE(ReadFaults(kMsrMcgCtl));
  EXPECT_TRUE(WriteFaults(kMsrMcgCtl, 0));
  EXPECT_TRUE(HostWrite(kMsrMcgCtl, 0).ok());
  EXPECT_FALSE(HostWrite(kMsrMcgCtl, ~0ull).ok());
}

TEST_F(MceTest, MciCtlResetsToAllOnesForPresentBanks) {
  EXPECT_EQ(Read(McCtl(0)), ~0ull);
  EXPECT_EQ(Read(McCtl(9)), ~0ull);
}

TEST_F(MceTest, MciCtlOnlyZeroOrAllOnesWithBits10And0Clearable) {
  Write(McCtl(4), 0);
  Write(McCtl(4), ~0ull & ~(1ull << 10));
  Write(McCtl(1), ~0ull & ~1ull);
  EXPECT_TRUE(WriteFaults(McCtl(4), 0xff));
  EXPECT_TRUE(WriteFaults(McCtl(4), ~0ull & ~2ull));
  EXPECT_FALSE(HostWrite(McCtl(4), 0xff).ok());
}

TEST_F(MceTest, MciStatusGuestWritesOnlyZero) {
  Write(McStatus(2), 0);
  EXPECT_TRUE(WriteFaults(McStatus(2), 1ull << 63));
}

TEST_F(MceTest, MciStatusHostMayWriteAnyValue) {
  ASSERT_TRUE(HostWrite(McStatus(2), 0xb200000000000001ull).ok());
  EXPECT_EQ(Read(McStatus(2)), 0xb200000000000001ull);
}

TEST_F(MceTest, MciStatusAmdGuestMayWriteWithMcStatusWrEn) {
  Boot("amd-zen3");
  EXPECT_TRUE(WriteFaults(McStatus(0), 5));
  Write(kMsrHwcr, kHwcrMcStatusWrEn);
  Write(McStatus(0), 5);
  EXPECT_EQ(Read(McStatus(0)), 5u);
}

TEST_F(MceTest, MciStatusIntelIgnoresMcStatusWrEn) {
  Write(kMsrHwcr, kHwcrMcStatusWrEn);
  EXPECT_TRUE(WriteFaults(McStatus(0), 5));
}

TEST_F(MceTest, MciAddrAndMiscAcceptAnyValue) {
  Write(McAddr(3), 0x123456789abcdef0ull);
  Write(McMisc(3), 0xfedcba9876543210ull);
  EXPECT_EQ(Read(McAddr(3)), 0x123456789abcdef0ull);
  EXPECT_EQ(Read(McMisc(3)), 0xfedcba9876543210ull);
}

TEST_F(MceTest, BanksAtOrBeyondMcgCapCountFault) {
  EXPECT_TRUE(ReadFaults(McCtl(10)));
  EXPECT_TRUE(WriteFaults(McStatus(10), 0));
  EXPECT_TRUE(ReadFaults(McMisc(31)));
  EXPECT_FALSE(HostRead(McAddr(10)).ok());
  Boot("intel-minimal");
  EXPECT_TRUE(ReadFaults(McCtl(4)));
  Read(McMisc(3));
}

TEST_F(MceTest, MciCtl2FaultsWithoutCmci) {
  EXPECT_TRUE(ReadFaults(kMsrMc0Ctl2));
  EXPECT_TRUE(WriteFaults(kMsrMc0Ctl2, 0));
  EXPECT_TRUE(HostWrite(kMsrMc0Ctl2, 0).ok());
  EXPECT_FALSE(HostWrite(kMsrMc0Ctl2 + 10, 0).ok());  // Bank 10 of 10.
}

TEST_F(MceTest, McgExtCtlNeedsLmceEnabledInFeatureControl) {
  EXPECT_TRUE(ReadFaults(kMsrMcgExtCtl));
  EXPECT_TRUE(WriteFaults(kMsrMcgExtCtl, kMcgExtCtlLmceEn));
  Write(kMsrFeatureControl, kFeatCtlLocked | kFeatCtlLmce);
  Write(kMsrMcgExtCtl, kMcgExtCtlLmceEn);
  EXPECT_EQ(Read(kMsrMcgExtCtl), kMcgExtCtlLmceEn);
  EXPECT_TRUE(WriteFaults(kMsrMcgExtCtl, 2));
}

TEST_F(MceTest, P5McMsrsReadZero) {
  EXPECT_EQ(Read(0x0), 0u);
  EXPECT_EQ(Read(0x1), 0u);
  EXPECT_TRUE(WriteUnsupported(0x0, 0));
}

TEST_F(MceTest, BankNamesFollowTheSdm) {
  EXPECT_EQ(ctl_->MsrName(McStatus(3)), "IA32_MC3_STATUS");
  EXPECT_EQ(ctl_->MsrName(kMsrMc0Ctl2 + 5), "IA32_MC5_CTL2");
}

}  // namespace
}  // namespace msrtrace
