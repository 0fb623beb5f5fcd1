// Per-fact tests of the Hyper-V family (hyperv.h). Each test names the KVM function whose
// behaviour it pins (arch/x86/kvm/hyperv.c unless said otherwise).
#include "handlers/hyperv.h"

#include <cstring>

#include "gtest/gtest.h"
#include "handlers/handlers_test_util.h"
#include "handlers/lapic.h"
#include "handlers/tsc.h"

namespace msrtrace {
namespace {

class HypervTest : public testing_util::ReferenceTest {
 protected:
  void SetUp() override { Boot("hyperv"); }

  uint32_t Peek32(uint64_t gpa) {
    uint32_t v = 0;
    EXPECT_TRUE(mem_.Read(gpa, &v, sizeof(v)));
    return v;
  }
  uint64_t Peek64(uint64_t gpa) {
    uint64_t v = 0;
    EXPECT_TRUE(mem_.Read(gpa, &v, sizeof(v)));
    return v;
  }
  // The hyperv profile with some change.
  CpuProfile Variant() const { return *FindProfile("hyperv"); }
};

constexpr uint64_t kUnbacked = 8ull << 30;  // Above the fixture's 4 GiB of guest memory.

// kvm_hv_{get,set}_msr_common: without hyperv_enabled guest accesses return 1 (#GP, not
// KVM_MSR_RET_UNSUPPORTED); host accesses work.
TEST_F(HypervTest, WithoutHyperVCpuidGuestFaultsHostWorks) {
  Boot("intel-icx");
  EXPECT_TRUE(ReadFaults(kHvMsrGuestOsId));
  EXPECT_TRUE(WriteFaults(kHvMsrGuestOsId, 1));
  EXPECT_TRUE(HostWrite(kHvMsrGuestOsId, 0x1040a00003839ull).ok());
  EXPECT_EQ(*HostRead(kHvMsrGuestOsId), 0x1040a00003839ull);
}

// The rows exist (msrtrace msrs) only on profiles with Hyper-V.
TEST_F(HypervTest, RowsListedOnlyWithHyperV) {
  bool found = false;
  for (const MsrRow& r : MsrTable(*FindProfile("hyperv"))) found |= r.index == kHvMsrHypercall;
  EXPECT_TRUE(found);
  for (const MsrRow& r : MsrTable(*FindProfile("intel-icx"))) {
    EXPECT_NE(std::string(r.family), "hyperv") << r.name;
  }
}

// kvm_hv_set_msr_pw HV_X64_MSR_HYPERCALL: ignored while GUEST_OS_ID is 0.
TEST_F(HypervTest, HypercallIgnoredWithoutGuestOsId) {
  Write(kHvMsrHypercall, 0x5000 | kHvHypercallEnable);
  EXPECT_EQ(Read(kHvMsrHypercall), 0u);
  EXPECT_TRUE(ctl_->last_writes().empty());
}

// kvm_hv_set_msr_pw: enabling writes vmcall; ret at the page; the MSR keeps the value.
TEST_F(HypervTest, HypercallPageWrittenOnEnable) {
  Write(kHvMsrGuestOsId, 0x1040a00003839ull);
  Write(kHvMsrHypercall, 0x5123 | kHvHypercallEnable);
  EXPECT_EQ(Read(kHvMsrHypercall), 0x5123u | kHvHypercallEnable);
  EXPECT_EQ(Peek32(0x5000), 0xc3c1010fu);  // 0f 01 c1 c3 (vmx_patch_hypercall).
}

// svm_patch_hypercall: vmmcall on AMD.
TEST_F(HypervTest, HypercallPageUsesVmmcallOnAmd) {
  CpuProfile p = *FindProfile("amd-zen3");
  p.features |= 1ull << static_cast<uint32_t>(Feature::kHyperV);
  Boot(p);
  Write(kHvMsrGuestOsId, 1);
  Write(kHvMsrHypercall, 0x6000 | kHvHypercallEnable);
  EXPECT_EQ(Peek32(0x6000), 0xc3d9010fu);
}

// kvm_hv_set_msr_pw: kvm_vcpu_write_guest failure returns 1, nothing stored.
TEST_F(HypervTest, HypercallPageOutsideMemoryFaults) {
  Write(kHvMsrGuestOsId, 1);
  EXPECT_TRUE(WriteFaults(kHvMsrHypercall, kUnbacked | kHvHypercallEnable));
}

// kvm_hv_set_msr_pw HV_X64_MSR_GUEST_OS_ID: writing 0 disables the hypercall page.
TEST_F(HypervTest, ZeroGuestOsIdClearsHypercallEnable) {
  Write(kHvMsrGuestOsId, 1);
  Write(kHvMsrHypercall, 0x5000 | kHvHypercallEnable);
  Write(kHvMsrGuestOsId, 0);
  EXPECT_EQ(Read(kHvMsrHypercall), 0x5000u);
}

// hv_check_msr_access: with ENFORCE_CPUID a missing HYPERV_CPUID_FEATURES bit #GPs the guest.
TEST_F(HypervTest, EnforcedCpuidGatesEachMsr) {
  CpuProfile p = Variant();
  p.hv_features_eax &= ~(kHvHypercallAvailable | kHvAccessFrequencyMsrs);
  Boot(p);
  EXPECT_TRUE(ReadFaults(kHvMsrGuestOsId));
  EXPECT_TRUE(ReadFaults(kHvMsrTscFrequency));
  EXPECT_EQ(Read(kHvMsrVpIndex), 0u);
  EXPECT_TRUE(HostWrite(kHvMsrGuestOsId, 1).ok());
  p.features &= ~(1ull << static_cast<uint32_t>(Feature::kHvEnforceCpuid));
  Boot(p);
  EXPECT_EQ(Read(kHvMsrGuestOsId), 0u);  // Not enforced: every MSR accessible.
}

// kvm_hv_vcpu_init: vp_index = vcpu_idx; kvm_hv_set_msr: guest writes #GP, host < 1024.
TEST_F(HypervTest, VpIndexResetAndHostOnlyWrite) {
  EXPECT_EQ(Read(kHvMsrVpIndex), 0u);
  Vcpu v1 = ctl_->CreateVcpu(3);
  EXPECT_EQ(v1.slots[static_cast<size_t>(ctl_->layout().FindVcpuSlot("HV_X64_MSR_VP_INDEX"))], 3u);
  EXPECT_TRUE(WriteFaults(kHvMsrVpIndex, 1));
  EXPECT_TRUE(HostWrite(kHvMsrVpIndex, 0xabc0000000000005ull).ok());
  EXPECT_EQ(Read(kHvMsrVpIndex), 5u);  // (u32)data.
  EXPECT_FALSE(HostWrite(kHvMsrVpIndex, kHvMaxVpIndex).ok());
}

// Undefined indices of the routed range: default case, 1 for guest and host.
TEST_F(HypervTest, UndefinedIndicesFaultForHostToo) {
  EXPECT_TRUE(ReadFaults(0x40000004));
  EXPECT_TRUE(WriteFaults(0x40000050, 0));
  EXPECT_FALSE(HostRead(0x40000085).ok());
  EXPECT_TRUE(ReadUnsupported(0x400000a0));  // Not routed to hyperv.c at all.
}

// get_time_ref_counter without a TSC page: kvm-clock ns / 100.
TEST_F(HypervTest, TimeRefCountIsKvmclockIn100ns) {
  EXPECT_EQ(Read(kHvMsrTimeRefCount), 0u);  // host_tsc 0 in the fixture.
  EXPECT_TRUE(WriteFaults(kHvMsrTimeRefCount, 5));
  EXPECT_TRUE(HostWrite(kHvMsrTimeRefCount, 5).ok());  // Ignored.
}

// kvm_hv_setup_tsc_page / compute_tsc_page_parameters: {seq 1, 0, scale, offset}.
TEST_F(HypervTest, ReferenceTscPageWritten) {
  Write(kHvMsrReferenceTsc, 0x7000 | kHvReferenceTscEnable);
  EXPECT_EQ(Read(kHvMsrReferenceTsc), 0x7001u);
  EXPECT_EQ(Peek32(0x7000), 1u);
  const uint64_t scale = Peek64(0x7008);
  // 2 GHz: 200 ticks per 100 ns, scale = 2^64 / 200 (rounded down by the pvclock scale).
  EXPECT_NEAR(static_cast<double>(scale), 18446744073709551616.0 / 200, 1e9);
  EXPECT_EQ(Peek64(0x7010), 0u);  // system_time 0, tsc_timestamp 0.
  // Rewriting bumps the sequence.
  Write(kHvMsrReferenceTsc, 0x7000 | kHvReferenceTscEnable);
  EXPECT_EQ(Peek32(0x7000), 2u);
}

// compute_tsc_page_parameters: no master clock (no stable kvm-clock) -> page broken, seq 0.
TEST_F(HypervTest, TscPageBrokenWithoutMasterClock) {
  CpuProfile p = Variant();
  p.features &= ~(1ull << static_cast<uint32_t>(Feature::kPvClocksourceStable));
  Boot(p);
  ASSERT_TRUE(mem_.Write(0x7000, "\x05\x00\x00\x00", 4));
  Write(kHvMsrReferenceTsc, 0x7001);
  EXPECT_EQ(Peek32(0x7000), 0u);
  EXPECT_EQ(Peek64(0x7008), 0u);
}

// kvm_hv_set_msr_pw TIME_REF_COUNT / TSC_FREQUENCY / APIC_FREQUENCY: read-only.
TEST_F(HypervTest, FrequencyMsrs) {
  EXPECT_EQ(Read(kHvMsrTscFrequency), kModelTscKhz * 1000);
  EXPECT_EQ(Read(kHvMsrApicFrequency), 1000000000u);
  EXPECT_TRUE(WriteFaults(kHvMsrTscFrequency, 1));
  EXPECT_TRUE(HostWrite(kHvMsrApicFrequency, 1).ok());
  EXPECT_EQ(Read(kHvMsrApicFrequency), 1000000000u);
}

// kvm_hv_set_msr VP_RUNTIME: host writes set the offset.
TEST_F(HypervTest, VpRuntimeHostWritesOffset) {
  EXPECT_EQ(Read(kHvMsrVpRuntime), 0u);
  EXPECT_TRUE(WriteFaults(kHvMsrVpRuntime, 1));
  EXPECT_TRUE(HostWrite(kHvMsrVpRuntime, 12345).ok());
  EXPECT_EQ(Read(kHvMsrVpRuntime), 12345u);
}

// synic_init / kvm_hv_activate_synic: SCONTROL=ENABLE, SVERSION=1, SINTx masked.
TEST_F(HypervTest, SynicResetValues) {
  EXPECT_EQ(Read(kHvMsrScontrol), 1u);
  EXPECT_EQ(Read(kHvMsrSversion), 1u);
  EXPECT_EQ(Read(kHvMsrSint0 + 7), kHvSintMasked);
  EXPECT_EQ(Read(kHvMsrEom), 0u);
  EXPECT_TRUE(WriteFaults(kHvMsrSversion, 2));
}

// synic_set_sint: unmasked vectors below 16 #GP for the guest only.
TEST_F(HypervTest, SintVectorCheck) {
  Write(kHvMsrSint0 + 2, 0x30);
  EXPECT_EQ(Read(kHvMsrSint0 + 2), 0x30u);
  EXPECT_TRUE(WriteFaults(kHvMsrSint0, 0x0f));
  Write(kHvMsrSint0, 0x0f | kHvSintMasked);
  EXPECT_TRUE(HostWrite(kHvMsrSint0 + 1, 0).ok());
}

// synic_{get,set}_msr: an inactive SynIC faults guest accesses; the host may write only 0.
TEST_F(HypervTest, InactiveSynicRejectsGuest) {
  CpuProfile p = Variant();
  p.hv_synic = 0;
  Boot(p);
  EXPECT_TRUE(ReadFaults(kHvMsrScontrol));
  EXPECT_TRUE(WriteFaults(kHvMsrStimer0Config, 0));
  EXPECT_TRUE(HostWrite(kHvMsrSimp, 0).ok());
  EXPECT_FALSE(HostWrite(kHvMsrSimp, 0x1000).ok());
  EXPECT_EQ(*HostRead(kHvMsrScontrol), 0u);
}

// synic_set_msr SIMP/SIEFP: KVM_CAP_HYPERV_SYNIC (not SYNIC2) zeroes the page on enable.
TEST_F(HypervTest, SynicV1ZeroesMessagePage) {
  CpuProfile p = Variant();
  p.hv_synic = 1;
  Boot(p);
  ASSERT_TRUE(mem_.Write(0x9010, "\xff\xff\xff\xff", 4));
  Write(kHvMsrSimp, 0x9000 | kHvSynicPageEnable);
  EXPECT_EQ(Peek32(0x9010), 0u);
  EXPECT_TRUE(WriteFaults(kHvMsrSiefp, kUnbacked | kHvSynicPageEnable));
  Boot("hyperv");  // SYNIC2: pages left alone.
  ASSERT_TRUE(mem_.Write(0x9010, "\xff\xff\xff\xff", 4));
  Write(kHvMsrSimp, 0x9001);
  EXPECT_EQ(Peek32(0x9010), 0xffffffffu);
}

// stimer_set_config / stimer_set_count rules.
TEST_F(HypervTest, StimerConfigAndCount) {
  const uint32_t config = kHvMsrStimer0Config + 2;  // STIMER1.
  const uint32_t count = config + 1;
  Write(config, kHvStimerAutoEnable | (2ull << 16));
  Write(count, 10000);  // Auto-enable.
  EXPECT_EQ(Read(config) & kHvStimerEnable, kHvStimerEnable);
  Write(count, 0);  // Count 0 disables.
  EXPECT_EQ(Read(config) & kHvStimerEnable, 0u);
  Write(config, kHvStimerEnable | (2ull << 16));
  Write(config, kHvStimerEnable);  // Enabled, SINTx 0, not direct: disabled.
  EXPECT_EQ(Read(config), 0u);
  CpuProfile p = Variant();
  p.hv_features_edx &= ~kHvStimerDirectModeAvailable;
  Boot(p);
  EXPECT_TRUE(WriteFaults(config, kHvStimerDirectMode));
}

// crash MSRs: P0-4 stored; CRASH_CTL host-written (bit 63 only), guest writes change nothing.
TEST_F(HypervTest, CrashMsrs) {
  Write(kHvMsrCrashP0 + 4, 0xdead);
  EXPECT_EQ(Read(kHvMsrCrashP0 + 4), 0xdeadu);
  EXPECT_TRUE(HostWrite(kHvMsrCrashCtl, ~0ull).ok());
  EXPECT_EQ(Read(kHvMsrCrashCtl), kHvCrashCtlNotify);
  Write(kHvMsrCrashCtl, 0);
  EXPECT_EQ(Read(kHvMsrCrashCtl), kHvCrashCtlNotify);
}

// Reenlightenment: stored; TSC_EMULATION_STATUS non-zero guest writes #GP.
TEST_F(HypervTest, ReenlightenmentMsrs) {
  Write(kHvMsrReenlightenmentControl, 0x10030);
  EXPECT_EQ(Read(kHvMsrReenlightenmentControl), 0x10030u);
  Write(kHvMsrTscEmulationControl, 1);
  EXPECT_TRUE(WriteFaults(kHvMsrTscEmulationStatus, 1));
  EXPECT_TRUE(HostWrite(kHvMsrTscEmulationStatus, 1).ok());
  Write(kHvMsrTscEmulationStatus, 0);
}

// TSC_INVARIANT_CONTROL: bit 0 only; the guest cannot clear it.
TEST_F(HypervTest, TscInvariantControl) {
  EXPECT_TRUE(WriteFaults(kHvMsrTscInvariantControl, 2));
  Write(kHvMsrTscInvariantControl, 1);
  EXPECT_TRUE(WriteFaults(kHvMsrTscInvariantControl, 0));
  EXPECT_TRUE(HostWrite(kHvMsrTscInvariantControl, 0).ok());
}

// lapic.c kvm_hv_vapic_msr_*: TPR/ICR/EOI in xAPIC mode; EOI not readable.
TEST_F(HypervTest, VapicMsrs) {
  Write(kHvMsrTpr, 0x20);
  EXPECT_EQ(Read(kHvMsrTpr), 0x20u);
  EXPECT_TRUE(WriteFaults(kHvMsrTpr, 1ull << 32));
  Write(kHvMsrIcr, (2ull << 32) | 0x40fd | kApicIcrBusy);
  EXPECT_EQ(Read(kHvMsrIcr), (2ull << 32) | 0x40fdu);
  EXPECT_TRUE(WriteFaults(kHvMsrIcr, 1ull << 13));
  Write(kHvMsrEoi, 0);
  EXPECT_TRUE(ReadFaults(kHvMsrEoi));
}

// kvm_hv_set_msr VP_ASSIST_PAGE: zeroes apic_assist, points PV EOI at the page.
TEST_F(HypervTest, VpAssistPageEnablesPvEoi) {
  ASSERT_TRUE(mem_.Write(0xa000, "\x11\x22\x33\x44", 4));
  Write(kHvMsrVpAssistPage, 0xa001);
  EXPECT_EQ(Peek32(0xa000), 0u);
  EXPECT_EQ(Read(kHvMsrVpAssistPage), 0xa001u);
  EXPECT_EQ(Read(0x4b564d04), 0xa001u);  // MSR_KVM_PV_EOI_EN.
  Write(kHvMsrVpAssistPage, 0);
  EXPECT_EQ(Read(0x4b564d04), 0u);
  EXPECT_TRUE(WriteFaults(kHvMsrVpAssistPage, kUnbacked | 1));
}

// syndbg_{get,set}_msr: without kernel debugging in CPUID 0x40000080 the guest #GPs.
TEST_F(HypervTest, SyndbgNeedsDebugCpuid) {
  EXPECT_TRUE(ReadFaults(kHvMsrSyndbgOptions));
  EXPECT_TRUE(HostWrite(kHvMsrSyndbgControl, 5).ok());
  EXPECT_EQ(*HostRead(kHvMsrSyndbgControl), 5u);
}

}  // namespace
}  // namespace msrtrace
