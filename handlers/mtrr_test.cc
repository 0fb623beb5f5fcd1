#include "handlers/mtrr.h"

#include "gtest/gtest.h"
#include "handlers/handlers_test_util.h"

namespace msrtrace {
namespace {

using MtrrTest = testing_util::ReferenceTest;

TEST_F(MtrrTest, MtrrCapReads0x508) { EXPECT_EQ(Read(kMsrMtrrCap), 0x508u); }

TEST_F(MtrrTest, MtrrCapIsReadOnly) {
  EXPECT_TRUE(WriteUnsupported(kMsrMtrrCap, 0x508));
  EXPECT_TRUE(WriteUnsupported(kMsrMtrrCap, 0));
}

TEST_F(MtrrTest, MtrrDefTypeAcceptsMask0xcff) {
  Write(kMsrMtrrDefType, 0xc06);
  EXPECT_EQ(Read(kMsrMtrrDefType), 0xc06u);
  EXPECT_TRUE(WriteFaults(kMsrMtrrDefType, 0x100));
  EXPECT_TRUE(WriteFaults(kMsrMtrrDefType, 0x1006));
}

TEST_F(MtrrTest, MtrrDefTypeRejectsInvalidTypes) {
  EXPECT_TRUE(WriteFaults(kMsrMtrrDefType, 2));
  EXPECT_TRUE(WriteFaults(kMsrMtrrDefType, 3));
  EXPECT_TRUE(WriteFaults(kMsrMtrrDefType, 7));
}

TEST_F(MtrrTest, VariableMtrrBaseRejectsInvalidType) {
  EXPECT_TRUE(WriteFaults(kMsrMtrrPhysBase0, 0x100000007ull));
  EXPECT_TRUE(WriteFaults(kMsrMtrrPhysBase0 + 2, 2));
  Write(kMsrMtrrPhysBase0, 0x100000006ull);
  EXPECT_EQ(Read(kMsrMtrrPhysBase0), 0x100000006ull);
}

TEST_F(MtrrTest, VariableMtrrBaseRejectsBits11To8) {
  EXPECT_TRUE(WriteFaults(kMsrMtrrPhysBase0, 0x106));
  EXPECT_TRUE(WriteFaults(kMsrMtrrPhysBase0, 0x806));
}

TEST_F(MtrrTest, VariableMtrrMaskRejectsBits10To0) {
  EXPECT_TRUE(WriteFaults(kMsrMtrrPhysBase0 + 1, 0x7ff));
  Write(kMsrMtrrPhysBase0 + 1, 0x3ffff0000800ull);  // MAXPHYADDR 46.
  EXPECT_TRUE(WriteFaults(kMsrMtrrPhysMask7, 1));
}

TEST_F(MtrrTest, VariableMtrrRejectsBitsAtOrAboveMaxPhyAddr) {
  Write(kMsrMtrrPhysBase0, 1ull << 45);  // intel-icx: MAXPHYADDR 46.
  EXPECT_TRUE(WriteFaults(kMsrMtrrPhysBase0, 1ull << 46));
  EXPECT_TRUE(WriteFaults(kMsrMtrrPhysMask7, (1ull << 46) | 0x800));
  Boot("intel-minimal");  // MAXPHYADDR 36.
  EXPECT_TRUE(WriteFaults(kMsrMtrrPhysBase0, 1ull << 36));
  Write(kMsrMtrrPhysBase0, 1ull << 35);
}

TEST_F(MtrrTest, VariableMtrrChecksApplyToHostWrites) {
  EXPECT_FALSE(HostWrite(kMsrMtrrPhysBase0, 2).ok());
}

TEST_F(MtrrTest, VariableMtrrsBeyond8AreNotImplemented) {
  for (uint32_t i : {0x210u, 0x211u, 0x230u, 0x24fu}) {
    EXPECT_TRUE(ReadFaults(i));
    EXPECT_TRUE(WriteFaults(i, 0));
  }
}

TEST_F(MtrrTest, FixedMtrrRequiresEveryByteValid) {
  for (uint32_t i : {0x250u, 0x258u, 0x259u, 0x268u, 0x26cu, 0x26fu}) {
    Write(i, 0x0001040506000106ull);
    EXPECT_EQ(Read(i), 0x0001040506000106ull);
    EXPECT_TRUE(WriteFaults(i, 0x0206060606060606ull));
    EXPECT_TRUE(WriteFaults(i, 0x0606060606060607ull));
  }
}

TEST_F(MtrrTest, GapsBetweenFixedMtrrsFault) {
  for (uint32_t i :
       {0x251u, 0x257u, 0x25au, 0x267u, 0x270u, 0x276u, 0x278u, 0x27fu, 0x2a0u, 0x2feu}) {
    EXPECT_TRUE(ReadFaults(i)) << i;
    EXPECT_TRUE(WriteFaults(i, 0)) << i;
  }
}

TEST_F(MtrrTest, PatResetsTo0x0007040600070406) { EXPECT_EQ(Read(kMsrPat), kPatReset); }

TEST_F(MtrrTest, PatAcceptsTypes0145And67) {
  Write(kMsrPat, 0x0007060504010000ull);
  EXPECT_EQ(Read(kMsrPat), 0x0007060504010000ull);
}

TEST_F(MtrrTest, PatRejectsMemoryType2) {
  EXPECT_TRUE(WriteFaults(kMsrPat, 0x0000000000000200ull));
}

TEST_F(MtrrTest, PatRejectsMemoryType3) {
  EXPECT_TRUE(WriteFaults(kMsrPat, 0x0300000000000000ull));
}

TEST_F(MtrrTest, PatRejectsBytesAbove7) {
  EXPECT_TRUE(WriteFaults(kMsrPat, 0x0000000000000008ull));
  EXPECT_TRUE(WriteFaults(kMsrPat, 0x8000000000000000ull));
}

TEST_F(MtrrTest, PatChecksApplyToHostWrites) { EXPECT_FALSE(HostWrite(kMsrPat, 2).ok()); }

}  // namespace
}  // namespace msrtrace
