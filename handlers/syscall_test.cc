#include "handlers/syscall.h"

#include "gtest/gtest.h"
#include "handlers/handlers_test_util.h"

namespace msrtrace {
namespace {

using SyscallTest = testing_util::ReferenceTest;

TEST_F(SyscallTest, SysenterCsKeeps32BitsOnIntel) {
  Write(kMsrSysenterCs, 0x1234567800000010ull);
  EXPECT_EQ(Read(kMsrSysenterCs), 0x10u);
}

TEST_F(SyscallTest, SysenterCsKeeps64BitsOnAmd) {
  Boot("amd-zen3");
  Write(kMsrSysenterCs, 0x1234567800000010ull);
  EXPECT_EQ(Read(kMsrSysenterCs), 0x1234567800000010ull);
}

TEST_F(SyscallTest, SysenterEspIsCanonicalizedNotFaulted) {
  Write(kMsrSysenterEsp, 0x0000800000000000ull);
  EXPECT_EQ(Read(kMsrSysenterEsp), 0xffff800000000000ull);
  Write(kMsrSysenterEsp, 0xaaaaaaaaaaaaaaaaull);
  EXPECT_EQ(Read(kMsrSysenterEsp), 0xffffaaaaaaaaaaaaull);
}

TEST_F(SyscallTest, SysenterEipIsCanonicalizedNotFaulted) {
  Write(kMsrSysenterEip, 0x1234567812345678ull);
  EXPECT_EQ(Read(kMsrSysenterEip), 0x0000567812345678ull);
}

TEST_F(SyscallTest, SysenterEspAndEipTruncatedTo32BitsOnAmd) {
  Boot("amd-zen3");
  Write(kMsrSysenterEsp, 0xffff800012345678ull);
  Write(kMsrSysenterEip, 0x0000123487654321ull);
  EXPECT_EQ(Read(kMsrSysenterEsp), 0x12345678u);
  EXPECT_EQ(Read(kMsrSysenterEip), 0x87654321u);
}

TEST_F(SyscallTest, EferReadsVcpuRegsEfer) {
  EXPECT_EQ(Read(kMsrEfer), kEferSce | kEferLme | kEferLma | kEferNxe);
}

TEST_F(SyscallTest, EferLmaIsReadOnly) {
  // In long mode: a write with LMA clear keeps LMA set, without #GP.
  Write(kMsrEfer, kEferSce | kEferLme | kEferNxe);
  EXPECT_EQ(vcpu().regs.efer, kEferSce | kEferLme | kEferLma | kEferNxe);
  // Paging off, LMA clear: a write with LMA set does not set it.
  vcpu().regs.cr0 = kCr0Pe;
  vcpu().regs.efer = 0;
  vcpu().regs.cs_l = false;
  Write(kMsrEfer, kEferLme | kEferLma);
  EXPECT_EQ(Read(kMsrEfer), kEferLme);
}

TEST_F(SyscallTest, EferLmeChangeWhilePagingFaults) {
  EXPECT_TRUE(WriteFaults(kMsrEfer, kEferSce | kEferNxe));
  vcpu().regs.efer = 0;
  vcpu().regs.cs_l = false;
  EXPECT_TRUE(WriteFaults(kMsrEfer, kEferLme));
}

TEST_F(SyscallTest, EferLmeChangeWithoutPagingIsAllowed) {
  vcpu().regs.cr0 = kCr0Pe;
  vcpu().regs.efer = 0;
  vcpu().regs.cs_l = false;
  Write(kMsrEfer, kEferLme | kEferSce);
  EXPECT_EQ(vcpu().regs.efer, kEferLme | kEferSce);
}

TEST_F(SyscallTest, EferRejectsUnsupportedBits) {
  const uint64_t cur = vcpu().regs.efer;
  EXPECT_TRUE(WriteFaults(kMsrEfer, cur | (1ull << 1)));
  EXPECT_TRUE(WriteFaults(kMsrEfer, cur | kEferSvme));  // No SVM on Intel.
  EXPECT_TRUE(WriteFaults(kMsrEfer, cur | kEferFfxsr));
  EXPECT_TRUE(WriteFaults(kMsrEfer, cur | (1ull << 63)));
}

TEST_F(SyscallTest, EferLmeAndLmaNeedLongModeCpuid) {
  CpuProfile p = *FindProfile("intel-icx");
  p.features &= ~(1ull << static_cast<uint32_t>(Feature::kLm));
  Boot(p);
  vcpu().regs.cr0 = kCr0Pe;
  vcpu().regs.efer = 0;
  vcpu().regs.cs_l = false;
  EXPECT_TRUE(WriteFaults(kMsrEfer, kEferLme));
  EXPECT_TRUE(WriteFaults(kMsrEfer, kEferLma));
  Write(kMsrEfer, kEferSce | kEferNxe);
}

TEST_F(SyscallTest, EferAllowsSvmeAndFfxsrOnAmd) {
  Boot("amd-zen3");
  const uint64_t v = vcpu().regs.efer | kEferSvme | kEferFfxsr;
  Write(kMsrEfer, v);
  EXPECT_EQ(Read(kMsrEfer), v);
}

TEST_F(SyscallTest, EferHostWriteSkipsGuestChecks) {
  ASSERT_TRUE(HostWrite(kMsrEfer, kEferSce | kEferLma).ok());  // LME cleared under paging.
  EXPECT_EQ(vcpu().regs.efer, kEferSce | kEferLma);            // LMA kept as it was.
  EXPECT_FALSE(HostWrite(kMsrEfer, kEferSvme).ok());           // Not supported by the host.
}

TEST_F(SyscallTest, StarAcceptsAnyValue) {
  Write(kMsrStar, 0xffffffffffffffffull);
  EXPECT_EQ(Read(kMsrStar), 0xffffffffffffffffull);
}

TEST_F(SyscallTest, LstarRejectsNonCanonical) {
  Write(kMsrLstar, 0x0000123456789abcull);
  Write(kMsrLstar, 0xffffaaaaaaaaaaaaull);
  EXPECT_TRUE(WriteFaults(kMsrLstar, 0xaaaaaaaaaaaaaaaaull));
  EXPECT_TRUE(WriteFaults(kMsrLstar, 0xffaaaaaaaaaaaaaaull));  // Needs host LA57.
  EXPECT_EQ(Read(kMsrLstar), 0xffffaaaaaaaaaaaaull);
}

TEST_F(SyscallTest, CstarRejectsNonCanonical) {
  EXPECT_TRUE(WriteFaults(kMsrCstar, 0x0000800000000000ull));
}

TEST_F(SyscallTest, FsBaseRejectsNonCanonical) {
  EXPECT_TRUE(WriteFaults(kMsrFsBase, 0xaaaaaaaaaaaaaaaaull));
  Write(kMsrFsBase, 0x00007fffffffffffull);
}

TEST_F(SyscallTest, GsBaseRejectsNonCanonical) {
  EXPECT_TRUE(WriteFaults(kMsrGsBase, 0xaaaaaaaaaaaaaaaaull));
}

TEST_F(SyscallTest, KernelGsBaseRejectsNonCanonical) {
  EXPECT_TRUE(WriteFaults(kMsrKernelGsBase, 0xaaaaaaaaaaaaaaaaull));
  EXPECT_FALSE(HostWrite(kMsrKernelGsBase, 0xaaaaaaaaaaaaaaaaull).ok());
}

TEST_F(SyscallTest, CanonicalChecksUse57BitsWithHostLa57) {
  CpuProfile p = *FindProfile("intel-icx");
  p.host_la57 = true;
  Boot(p);
  Write(kMsrLstar, 0xffaaaaaaaaaaaaaaull);
  EXPECT_TRUE(WriteFaults(kMsrLstar, 0xaaaaaaaaaaaaaaaaull));
  Write(kMsrSysenterEsp, 0x0100000000000000ull);
  EXPECT_EQ(Read(kMsrSysenterEsp), 0xff00000000000000ull);
}

TEST_F(SyscallTest, SfmaskHighBitsFaultInLongModeOnIntel) {
  EXPECT_TRUE(WriteFaults(kMsrSfmask, 1ull << 32));
  Write(kMsrSfmask, 0xffffffffull);
  EXPECT_EQ(Read(kMsrSfmask), 0xffffffffull);
}

TEST_F(SyscallTest, SfmaskStoresAnyValueOnAmd) {
  Boot("amd-zen3");
  Write(kMsrSfmask, 1ull << 32);
  EXPECT_EQ(Read(kMsrSfmask), 1ull << 32);
}

TEST_F(SyscallTest, TscAuxHighBitsFaultOnIntel) {
  EXPECT_TRUE(WriteFaults(kMsrTscAux, 1ull << 32));
  EXPECT_FALSE(HostWrite(kMsrTscAux, 1ull << 32).ok());
  Write(kMsrTscAux, 0xffffffffull);
  EXPECT_EQ(Read(kMsrTscAux), 0xffffffffull);
}

TEST_F(SyscallTest, TscAuxTruncatedOnAmd) {
  Boot("amd-zen3");
  Write(kMsrTscAux, 0x1234567887654321ull);
  EXPECT_EQ(Read(kMsrTscAux), 0x87654321ull);
}

TEST_F(SyscallTest, TscAuxFaultsWithoutRdtscpOrRdpid) {
  Boot("intel-minimal");
  EXPECT_TRUE(ReadFaults(kMsrTscAux));
  EXPECT_TRUE(WriteFaults(kMsrTscAux, 0));
  EXPECT_TRUE(HostWrite(kMsrTscAux, 7).ok());
  EXPECT_EQ(*HostRead(kMsrTscAux), 7u);
}

TEST_F(SyscallTest, TscAuxNeedsOnlyRdpid) {
  CpuProfile p = *FindProfile("intel-icx");
  p.features &= ~(1ull << static_cast<uint32_t>(Feature::kRdtscp));
  Boot(p);
  Write(kMsrTscAux, 3);
  EXPECT_EQ(Read(kMsrTscAux), 3u);
}

}  // namespace
}  // namespace msrtrace
