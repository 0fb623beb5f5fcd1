// Per-fact tests of the KVM-breadth families (feature, debug, pmu, nested). Each test names the
// KVM function whose behaviour it pins.
#include "handlers/breadth.h"

#include "gtest/gtest.h"
#include "handlers/handlers_test_util.h"
#include "harness/core/vcpu.h"

namespace msrtrace {
namespace {

using BreadthTest = testing_util::ReferenceTest;

// --- feature family ---

// x86.c kvm_get_msr_common MSR_IA32_ARCH_CAPABILITIES: the profile's value.
TEST_F(BreadthTest, ArchCapabilitiesReadsProfileValue) {
  EXPECT_EQ(Read(kMsrArchCapabilities), profile_.arch_capabilities);
  EXPECT_NE(profile_.arch_capabilities, 0u);
}

// x86.c kvm_set_msr_common: guest writes fault, host writes set the value.
TEST_F(BreadthTest, ArchCapabilitiesIsHostWriteOnly) {
  EXPECT_TRUE(WriteFaults(kMsrArchCapabilities, 0));
  EXPECT_TRUE(HostWrite(kMsrArchCapabilities, 0x1).ok());
  EXPECT_EQ(Read(kMsrArchCapabilities), 0x1u);
}

// x86.c: no ARCH_CAPABILITIES CPUID -> guest #GP.
TEST_F(BreadthTest, ArchCapabilitiesFaultsWithoutCpuid) {
  Boot("intel-minimal");
  EXPECT_TRUE(ReadFaults(kMsrArchCapabilities));
}

// x86.c kvm_{get,set}_msr_common MSR_IA32_PERF_CAPABILITIES.
TEST_F(BreadthTest, PerfCapabilitiesGuestReadHostWriteSubset) {
  EXPECT_EQ(Read(kMsrPerfCapabilities), kPerfCapFwWrites);
  EXPECT_TRUE(WriteFaults(kMsrPerfCapabilities, 0));
  EXPECT_TRUE(HostWrite(kMsrPerfCapabilities, 0).ok());
  EXPECT_FALSE(HostWrite(kMsrPerfCapabilities, 1ull << 15).ok());
}

// x86.c: SMBASE is host-only for reads and writes; reset 0x30000.
TEST_F(BreadthTest, SmbaseIsHostOnly) {
  EXPECT_TRUE(ReadFaults(kMsrSmbase));
  EXPECT_TRUE(WriteFaults(kMsrSmbase, 0x40000));
  EXPECT_EQ(*HostRead(kMsrSmbase), kSmbaseReset);
  EXPECT_TRUE(HostWrite(kMsrSmbase, 0x40000).ok());
  EXPECT_EQ(*HostRead(kMsrSmbase), 0x40000u);
}

// x86.c: SMI_COUNT readable by the guest, writable by the host only.
TEST_F(BreadthTest, SmiCountGuestReadsHostWrites) {
  EXPECT_EQ(Read(kMsrSmiCount), 0u);
  EXPECT_TRUE(WriteFaults(kMsrSmiCount, 1));
  EXPECT_TRUE(HostWrite(kMsrSmiCount, 5).ok());
  EXPECT_EQ(Read(kMsrSmiCount), 5u);
}

// vmx.c vmx_set_msr MSR_IA32_TSX_CTRL: needs ARCH_CAP.TSX_CTRL_MSR; bits 1:0 only.
TEST_F(BreadthTest, TsxCtrlGatedAndMasked) {
  EXPECT_TRUE(ReadFaults(kMsrTsxCtrl));
  Boot("intel-spr-cet");
  Write(kMsrTsxCtrl, 0x3);
  EXPECT_EQ(Read(kMsrTsxCtrl), 0x3u);
  EXPECT_TRUE(WriteFaults(kMsrTsxCtrl, 0x4));
}

// vmx.c MSR_IA32_UMWAIT_CONTROL: bit 1 and 63:32 reserved; needs WAITPKG.
TEST_F(BreadthTest, UmwaitControlReservedBits) {
  EXPECT_TRUE(WriteFaults(kMsrUmwaitControl, 0));
  Boot("intel-spr-cet");
  Write(kMsrUmwaitControl, 0x186a0);
  EXPECT_TRUE(WriteFaults(kMsrUmwaitControl, 0x2));
  EXPECT_TRUE(WriteFaults(kMsrUmwaitControl, 1ull << 32));
}

// x86.c MSR_IA32_XSS: only guest_supported_xss bits (none without CET).
TEST_F(BreadthTest, XssAllowsOnlySupportedBits) {
  Write(kMsrXss, 0);
  EXPECT_TRUE(WriteFaults(kMsrXss, 1ull << 11));
  Boot("intel-spr-cet");
  Write(kMsrXss, (1ull << 11) | (1ull << 12));
  EXPECT_TRUE(WriteFaults(kMsrXss, 1ull << 8));
  Boot("intel-minimal");
  EXPECT_TRUE(ReadFaults(kMsrXss));
}

// x86.c MSR_IA32_XFD / XFD_ERR: only XFEATURE_MASK_USER_DYNAMIC bits, needs XFD.
TEST_F(BreadthTest, XfdAllowsTileDataOnly) {
  EXPECT_TRUE(ReadFaults(kMsrXfd));
  Boot("intel-spr-cet");
  Write(kMsrXfd, 1ull << 18);
  Write(kMsrXfdErr, 1ull << 18);
  EXPECT_TRUE(WriteFaults(kMsrXfd, 1ull << 17));
  EXPECT_TRUE(WriteFaults(kMsrXfdErr, 1));
}

// x86.c: CET MSRs without SHSTK/IBT are KVM_MSR_RET_UNSUPPORTED.
TEST_F(BreadthTest, CetMsrsUnsupportedWithoutCet) {
  EXPECT_TRUE(ReadUnsupported(kMsrUCet));
  EXPECT_TRUE(WriteUnsupported(kMsrPl0Ssp, 0));
  EXPECT_TRUE(ReadUnsupported(kMsrIntSspTab));
}

// x86.c kvm_is_valid_u_s_cet: reserved 9:6; SUPPRESS with WAIT_ENDBR invalid.
TEST_F(BreadthTest, CetUsChecks) {
  Boot("intel-spr-cet");
  Write(kMsrUCet, 0x1 | 0x4);
  Write(kMsrSCet, 0x1);
  EXPECT_TRUE(WriteFaults(kMsrUCet, 1ull << 6));
  EXPECT_TRUE(WriteFaults(kMsrSCet, kCetSuppress | kCetWaitEndbr));
}

// x86.c __kvm_set_msr: SSP MSRs canonical and 4-byte aligned; INT_SSP_TAB only canonical.
TEST_F(BreadthTest, SspCanonicalAndAligned) {
  Boot("intel-spr-cet");
  Write(kMsrPl0Ssp, 0xffff800000001000ull);
  Write(kMsrPl3Ssp, 0x00007ffffffff000ull);
  EXPECT_TRUE(WriteFaults(kMsrPl0Ssp + 1, 0x1002));
  EXPECT_TRUE(WriteFaults(kMsrPl0Ssp + 2, 0x8000000000000000ull));
  Write(kMsrIntSspTab, 0x1002);
  EXPECT_TRUE(WriteFaults(kMsrIntSspTab, 0xaaaaaaaaaaaaaaaaull));
}

// vmx.c vmx_set_msr MSR_IA32_BNDCFGS: without (host) MPX every access faults, host included.
TEST_F(BreadthTest, BndcfgsFaultsWithoutMpx) {
  EXPECT_TRUE(ReadFaults(0xd90));
  EXPECT_FALSE(HostWrite(0xd90, 0).ok());
}

// vmx.c: RTIT MSRs fault unless kvm_intel.pt_mode=host_guest (host too).
TEST_F(BreadthTest, RtitFaultsInSystemPtMode) {
  EXPECT_TRUE(WriteFaults(0x570, 0));
  EXPECT_FALSE(HostRead(0x580).ok());
}

// pmu_intel.c: PEBS MSRs without PEBS in PERF_CAPABILITIES are not PMU MSRs.
TEST_F(BreadthTest, PebsMsrsUnsupportedWithoutPebs) {
  EXPECT_TRUE(ReadUnsupported(0x3f1));
  EXPECT_TRUE(WriteUnsupported(0x600, 0));
}

// vmx.c MSR_IA32_SGXLEPUBKEYHASHn: guests need SGX_LC; the host may always access them.
TEST_F(BreadthTest, SgxLePubKeyHashNeedsSgxLc) {
  EXPECT_TRUE(ReadFaults(0x8c));
  EXPECT_TRUE(HostWrite(0x8f, 0x1234).ok());
  EXPECT_EQ(*HostRead(0x8f), 0x1234u);
}

// --- debug family ---

// vmx.c vmx_set_msr DEBUGCTL: unsupported BTF/LBR dropped, other bits #GP.
TEST_F(BreadthTest, VmxDebugCtlDropsBtfAndLbr) {
  Write(kMsrDebugCtl, kDebugCtlBtf | kDebugCtlLbr);
  EXPECT_EQ(Read(kMsrDebugCtl), 0u);
  EXPECT_TRUE(WriteFaults(kMsrDebugCtl, 1ull << 6));
}

// vmx.c vmx_get_supported_debugctl: LBR and FREEZE_LBRS_ON_PMI with guest LBR.
TEST_F(BreadthTest, VmxDebugCtlKeepsLbrWithGuestLbr) {
  Boot("intel-nested-vmx");
  Write(kMsrDebugCtl, kDebugCtlLbr | kDebugCtlFreezeLbrsOnPmi | kDebugCtlBtf);
  EXPECT_EQ(Read(kMsrDebugCtl), kDebugCtlLbr | kDebugCtlFreezeLbrsOnPmi);
  Write(kMsrLbrSelect, 0x1);
  EXPECT_EQ(Read(0x680 + 31), 0u);
}

// pmu_intel.c: LBR MSRs without guest LBR are not PMU MSRs (unsupported).
TEST_F(BreadthTest, LbrMsrsUnsupportedWithoutLbr) {
  EXPECT_TRUE(ReadUnsupported(kMsrLbrTos));
  EXPECT_TRUE(WriteUnsupported(0x6c0, 0));
}

// svm.c svm_set_msr DEBUGCTL: bits 5:0 stored, others #GP.
TEST_F(BreadthTest, SvmDebugCtlReservedBits) {
  Boot("amd-zen3");
  Write(kMsrDebugCtl, 0x3f);
  EXPECT_EQ(Read(kMsrDebugCtl), 0x3fu);
  EXPECT_TRUE(WriteFaults(kMsrDebugCtl, 1ull << 6));
}

// x86.c kvm_get_msr_common: LASTBRANCH*/LASTINT* read 0, writes unsupported.
TEST_F(BreadthTest, LastBranchReadsZero) {
  EXPECT_EQ(Read(kMsrLastBranchFromIp + 3), 0u);
  EXPECT_TRUE(WriteUnsupported(kMsrLastBranchFromIp, 0));
}

// --- pmu family ---

// pmu_intel.c intel_pmu_set_msr: guest writes to IA32_PMCx sign-extend from bit 31, then the
// counter is truncated to the CPUID 0xA width (48).
TEST_F(BreadthTest, IntelPmcSignExtendsAndTruncates) {
  Write(kMsrPmc0, 0xfffffff0ull);
  EXPECT_EQ(Read(kMsrPmc0), 0xfffffffffff0ull);
  ASSERT_TRUE(HostWrite(kMsrPmc0 + 7, 0x7fffffffull | (1ull << 40)).ok());
  EXPECT_EQ(Read(kMsrPmc0 + 7), 0x7fffffffull | (1ull << 40));
}

// pmu_intel.c: the full-width alias needs FW_WRITE, shares the counter and #GPs above the width.
TEST_F(BreadthTest, IntelFullWidthAlias) {
  Write(kMsrAPmc0 + 1, 0x123456789aull);
  EXPECT_EQ(Read(kMsrPmc0 + 1), 0x123456789aull);
  EXPECT_EQ(Read(kMsrAPmc0 + 1), 0x123456789aull);
  EXPECT_TRUE(WriteFaults(kMsrAPmc0, 1ull << 48));
}

// pmu_intel.c: PERFEVTSEL reserved bits 63:32 and 21 #GP.
TEST_F(BreadthTest, IntelEventSelectReservedBits) {
  Write(kMsrPerfEvtSel0, 0x4300c0);
  EXPECT_EQ(Read(kMsrPerfEvtSel0), 0x4300c0u);
  EXPECT_TRUE(WriteFaults(kMsrPerfEvtSel0, 1ull << 21));
  EXPECT_TRUE(WriteFaults(kMsrPerfEvtSel0 + 3, 1ull << 32));
}

// pmu.c kvm_pmu_set_msr GLOBAL_CTRL: only the counters' enable bits.
TEST_F(BreadthTest, IntelGlobalCtrlValidBits) {
  Write(kMsrPerfGlobalCtrl, 0x7000000ffull);
  EXPECT_EQ(Read(kMsrPerfGlobalCtrl), 0x7000000ffull);
  EXPECT_TRUE(WriteFaults(kMsrPerfGlobalCtrl, 1ull << 8));
  EXPECT_TRUE(WriteFaults(kMsrPerfGlobalCtrl, 1ull << 35));
}

// pmu.c: GLOBAL_STATUS read-only for the guest; OVF_CTRL clears it; reads 0.
TEST_F(BreadthTest, IntelGlobalStatusAndOvfCtrl) {
  EXPECT_TRUE(WriteFaults(kMsrPerfGlobalStatus, 1));
  ASSERT_TRUE(HostWrite(kMsrPerfGlobalStatus, 0x3).ok());
  Write(kMsrPerfGlobalOvfCtrl, 0x1);
  EXPECT_EQ(Read(kMsrPerfGlobalStatus), 0x2u);
  EXPECT_EQ(Read(kMsrPerfGlobalOvfCtrl), 0u);
  EXPECT_TRUE(WriteFaults(kMsrPerfGlobalOvfCtrl, 1ull << 20));
  Write(kMsrPerfGlobalOvfCtrl, kGlobalCondChgd);
}

// pmu_intel.c intel_pmu_refresh: FIXED_CTR_CTRL allows 0xb per fixed counter.
TEST_F(BreadthTest, IntelFixedCtrCtrlMask) {
  Write(kMsrFixedCtrCtrl, 0xbbb);
  EXPECT_TRUE(WriteFaults(kMsrFixedCtrCtrl, 0x4));
  EXPECT_TRUE(WriteFaults(kMsrFixedCtrCtrl, 0xb000));
  Write(kMsrFixedCtr0 + 2, ~0ull);
  EXPECT_EQ(Read(kMsrFixedCtr0 + 2), (1ull << 48) - 1);
}

// x86.c kvm_{get,set}_msr_common: without a vPMU the P6 counters read 0 and drop writes; the
// architectural global MSRs do not exist.
TEST_F(BreadthTest, IntelNoPmuFallbacks) {
  Boot("intel-minimal");
  Write(kMsrPmc0, 5);
  EXPECT_EQ(Read(kMsrPmc0), 0u);
  Write(kMsrPerfEvtSel0 + 1, 5);
  EXPECT_EQ(Read(kMsrPerfEvtSel0 + 1), 0u);
  EXPECT_TRUE(ReadUnsupported(kMsrPmc0 + 2));
  EXPECT_TRUE(ReadUnsupported(kMsrPerfGlobalCtrl));
  EXPECT_TRUE(ReadUnsupported(kMsrFixedCtr0));
}

// pmu_amd.c amd_pmu_set_msr: reserved event-select bits are dropped; K7 MSRs alias F15H.
TEST_F(BreadthTest, AmdEventSelectDropsReservedAndAliases) {
  Boot("amd-zen3");
  Write(kMsrK7EvntSel0 + 1, 0x4300c0 | (1ull << 19) | (1ull << 40));
  EXPECT_EQ(Read(kMsrK7EvntSel0 + 1), 0x4300c0u);
  EXPECT_EQ(Read(kMsrF15hPerfCtl0 + 2), 0x4300c0u);
  Write(kMsrF15hPerfCtl0 + 11, ~0ull);
  EXPECT_EQ(Read(kMsrF15hPerfCtl0 + 11), (1ull << 48) - 1);
  Write(kMsrK7PerfCtr0 + 3, ~0ull);
  EXPECT_EQ(Read(kMsrF15hPerfCtl0 + 7), (1ull << 48) - 1);
  EXPECT_TRUE(ReadUnsupported(kMsrAmdGlobalCtl));  // PerfMonV2 absent on Zen 3.
}

// pmu.c kvm_pmu_set_msr PerfMonV2: GLOBAL_CTL drops reserved bits, STATUS ignores guest writes,
// STATUS_CLR clears.
TEST_F(BreadthTest, AmdPerfMonV2Globals) {
  Boot("amd-zen4");
  Write(kMsrAmdGlobalCtl, ~0ull);
  EXPECT_EQ(Read(kMsrAmdGlobalCtl), 0x3fu);
  Write(kMsrAmdGlobalStatus, 0x1);
  EXPECT_EQ(Read(kMsrAmdGlobalStatus), 0u);
  ASSERT_TRUE(HostWrite(kMsrAmdGlobalStatus, 0x5).ok());
  EXPECT_FALSE(HostWrite(kMsrAmdGlobalStatus, 1ull << 6).ok());
  Write(kMsrAmdGlobalStatusClr, 0x4);
  EXPECT_EQ(Read(kMsrAmdGlobalStatus), 0x1u);
  EXPECT_EQ(Read(kMsrAmdGlobalStatusClr), 0u);
}

// x86.c: P6 counters on AMD read 0 and drop writes; K7 MSRs on Intel too.
TEST_F(BreadthTest, CrossVendorLegacyCountersReadZero) {
  Write(kMsrK7PerfCtr0, 7);
  EXPECT_EQ(Read(kMsrK7PerfCtr0), 0u);
  Boot("amd-zen3");
  Write(kMsrPmc0 + 1, 7);
  EXPECT_EQ(Read(kMsrPmc0 + 1), 0u);
}

// --- nested family ---

// vmx.c vmx_get_msr: VMX capability MSRs need nested VMX, host included.
TEST_F(BreadthTest, VmxMsrsNeedNestedVmx) {
  EXPECT_TRUE(ReadFaults(kMsrVmxBasic));
  EXPECT_FALSE(HostRead(kMsrVmxBasic).ok());
  Boot("intel-nested-vmx");
  EXPECT_EQ(Read(kMsrVmxBasic), 0x00d8100011e57ed0ull);
  EXPECT_EQ(Read(kMsrVmxVmfunc), 1u);
}

// vmx.c vmx_set_msr: VMX MSRs are read-only for the guest.
TEST_F(BreadthTest, VmxMsrsReadOnlyForGuest) {
  Boot("intel-nested-vmx");
  EXPECT_TRUE(WriteFaults(kMsrVmxBasic + 1, 0));
  EXPECT_TRUE(HostWrite(kMsrVmxBasic, 0x00d8100011e57ed0ull).ok());
  EXPECT_FALSE(HostWrite(kMsrVmxBasic, 0).ok());
}

// svm.c svm_set_vm_cr: bits 4:0; LOCK/SVMDIS frozen once SVMDIS set; SVMDIS with EFER.SVME #GP.
TEST_F(BreadthTest, VmCrRules) {
  Boot("amd-nested-svm");
  EXPECT_TRUE(WriteFaults(kMsrVmCr, 1ull << 5));
  Write(kMsrVmCr, kVmCrSvmDis | kVmCrSvmLock);
  Write(kMsrVmCr, 0);
  EXPECT_EQ(Read(kMsrVmCr), kVmCrSvmDis | kVmCrSvmLock);
  Boot("amd-nested-svm");
  vcpu().regs.efer |= kEferSvme;
  EXPECT_TRUE(WriteFaults(kMsrVmCr, kVmCrSvmDis));
}

// svm.c MSR_VM_HSAVE_PA: guests need a page-aligned GPA below MAXPHYADDR; the host does not.
TEST_F(BreadthTest, VmHsavePaChecks) {
  Boot("amd-nested-svm");
  Write(kMsrVmHsavePa, 0x1000);
  EXPECT_TRUE(WriteFaults(kMsrVmHsavePa, 0x1008));
  EXPECT_TRUE(WriteFaults(kMsrVmHsavePa, 1ull << 48));
  ASSERT_TRUE(HostWrite(kMsrVmHsavePa, 0x1008).ok());
  EXPECT_EQ(Read(kMsrVmHsavePa), 0x1000u);
}

// svm.c MSR_AMD64_TSC_RATIO: default 1.0, bits 63:40 reserved, needs TSCRATEMSR.
TEST_F(BreadthTest, TscRatioRules) {
  Boot("amd-zen3");
  EXPECT_TRUE(ReadFaults(kMsrTscRatio));
  EXPECT_TRUE(HostWrite(kMsrTscRatio, kTscRatioDefault).ok());
  EXPECT_FALSE(HostWrite(kMsrTscRatio, 2 * kTscRatioDefault).ok());
  Boot("amd-nested-svm");
  EXPECT_EQ(Read(kMsrTscRatio), kTscRatioDefault);
  Write(kMsrTscRatio, 0x180000000ull);
  EXPECT_TRUE(WriteFaults(kMsrTscRatio, 1ull << 40));
}

// svm.c: VIRT_SPEC_CTRL needs VIRT_SSBD and accepts only SSBD.
TEST_F(BreadthTest, VirtSpecCtrl) {
  Boot("amd-zen3");
  EXPECT_TRUE(ReadFaults(kMsrVirtSpecCtrl));
  Boot("amd-nested-svm");
  Write(kMsrVirtSpecCtrl, 1ull << 2);
  EXPECT_TRUE(WriteFaults(kMsrVirtSpecCtrl, 1));
}

// svm.c: DE_CFG accepts the supported feature bits (LFENCE_SERIALIZE).
TEST_F(BreadthTest, DeCfgSupportedBits) {
  Boot("amd-zen3");
  Write(kMsrDeCfg, 1ull << 1);
  EXPECT_EQ(Read(kMsrDeCfg), 2u);
  EXPECT_TRUE(WriteFaults(kMsrDeCfg, 1));
  Boot("intel-icx");
  EXPECT_TRUE(ReadUnsupported(kMsrDeCfg));
}

// x86.c: OSVW MSRs need OSVW CPUID, host included.
TEST_F(BreadthTest, OsvwGatedForHostToo) {
  EXPECT_TRUE(ReadFaults(kMsrOsvwIdLength));
  EXPECT_FALSE(HostRead(kMsrOsvwStatus).ok());
  Boot("amd-zen3");
  EXPECT_EQ(Read(kMsrOsvwIdLength), 3u);
  Write(kMsrOsvwStatus, 0x1);
}

// x86.c kvm_get_msr_common: SYSCFG/TSEG read 0 with no set case; NB_CFG drops writes;
// MMIO_CONF_BASE accepts only 0.
TEST_F(BreadthTest, AmdLegacyMsrs) {
  EXPECT_EQ(Read(kMsrAmdSyscfg), 0u);
  EXPECT_TRUE(WriteUnsupported(kMsrAmdSyscfg, 0));
  Write(0xc001001f, 0x1234);
  EXPECT_EQ(Read(0xc001001f), 0u);
  Write(kMsrMmioConfBase, 0);
  EXPECT_TRUE(WriteFaults(kMsrMmioConfBase, 1));
  EXPECT_TRUE(ReadUnsupported(0x79));
  Write(0x79, 0);
}

// --- profiles ---

// The 32-bit profile has no long mode: EFER.LME is reserved (x86.c __kvm_valid_efer).
TEST_F(BreadthTest, ThirtyTwoBitProfileRejectsLme) {
  Boot("intel-32bit");
  vcpu().regs.efer = 0;
  vcpu().regs.cr0 = kCr0Pe;
  vcpu().regs.cs_l = false;
  EXPECT_TRUE(WriteFaults(0xc0000080, kEferLme));
}

// LA57 hosts check MSR canonicality against 57 bits (x86.h is_noncanonical_address).
TEST_F(BreadthTest, La57ProfileUses57BitCanonical) {
  EXPECT_TRUE(WriteFaults(0xc0000082, 0xffaaaaaaaaaaaaaaull));
  Boot("intel-la57");
  Write(0xc0000082, 0xffaaaaaaaaaaaaaaull);
}

}  // namespace
}  // namespace msrtrace
