// The "hyperv" family: KVM's Hyper-V synthetic MSRs (hyperv.c kvm_hv_{get,set}_msr_common,
// kvm_hv_{get,set}_msr_pw, kvm_hv_{get,set}_msr, hv_check_msr_access, synic_{get,set}_msr,
// stimer_set_{config,count}, kvm_hv_setup_tsc_page; lapic.c kvm_hv_vapic_msr_{read,write}).
//
// Opt-in per profile: KVM routes 0x40000000-0x4000009f, the stimers, crash, reenlightenment,
// TSC_INVARIANT_CONTROL and SYNDBG MSRs to hyperv.c on every VM, so the family is installed on
// every profile, but without Feature::kHyperV (KVM's vcpu->arch.hyperv_enabled, set by the
// Hyper-V CPUID signature) every guest access #GPs (return 1, not KVM_MSR_RET_UNSUPPORTED) while
// host accesses work. With Feature::kHvEnforceCpuid (KVM_CAP_HYPERV_ENFORCE_CPUID) each guest
// access also needs its HYPERV_CPUID_FEATURES bit (CpuProfile::hv_features_eax/edx). Indices of
// the routed range that KVM does not define #GP for the guest and the host alike.
//
// Model decisions (the rest follows KVM; see each row's note):
//   * Guest memory is written during the MSR exit, as kvm_pv.h does for kvm-clock: the hypercall
//     page (vmcall/vmmcall; ret), the reference TSC page (KVM writes it on vCPU 0's next entry
//     after the masterclock update; the model computes it from the writing vCPU's TSC), the
//     first u32 of the VP assist page and, with KVM_CAP_HYPERV_SYNIC (v1), the SIMP/SIEFP pages.
//   * Time: TIME_REF_COUNT is kvm-clock ns / 100, or the TSC page formula once the page is set
//     (with the TSC offset the page was computed with: KVM reads vCPU 0's TSC then). VP_RUNTIME
//     counts kvm-clock time (the vCPU thread is taken to run all the time) plus the host-set
//     offset. TSC_FREQUENCY is the model's kModelTscKhz, APIC_FREQUENCY 1 GHz (1 ns bus cycle).
//   * SynIC and stimer effects outside the MSR exit are not modelled: exits to the VMM
//     (KVM_EXIT_HYPERV for SCONTROL/SIMP/SIEFP/SYNDBG writes, crash and reset requests), EOM
//     re-delivery, and stimer expiry (timer messages in the SIMP page, one-shot timers clearing
//     their enable bit). CONFIG/COUNT hold what was written, with KVM's write-time rules.
//   * HV_X64_MSR_EOI/ICR/TPR act on the lapic family's APIC.TPR/APIC.ICR state (no in-service
//     vector; the IPI is not delivered), as lapic.h models the x2APIC registers.
//   * VP_INDEX host writes: values >= 1024 #GP (KVM_MAX_VCPUS without CONFIG_MAXSMP).
#ifndef MSRTRACE_HANDLERS_HYPERV_H_
#define MSRTRACE_HANDLERS_HYPERV_H_

#include <cstdint>

#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"

namespace msrtrace {

// hyperv-tlfs.h MSR indices.
inline constexpr uint32_t kHvMsrGuestOsId = 0x40000000;
inline constexpr uint32_t kHvMsrHypercall = 0x40000001;
inline constexpr uint32_t kHvMsrVpIndex = 0x40000002;
inline constexpr uint32_t kHvMsrReset = 0x40000003;
inline constexpr uint32_t kHvMsrVpRuntime = 0x40000010;
inline constexpr uint32_t kHvMsrTimeRefCount = 0x40000020;
inline constexpr uint32_t kHvMsrReferenceTsc = 0x40000021;
inline constexpr uint32_t kHvMsrTscFrequency = 0x40000022;
inline constexpr uint32_t kHvMsrApicFrequency = 0x40000023;
inline constexpr uint32_t kHvMsrEoi = 0x40000070;
inline constexpr uint32_t kHvMsrIcr = 0x40000071;
inline constexpr uint32_t kHvMsrTpr = 0x40000072;
inline constexpr uint32_t kHvMsrVpAssistPage = 0x40000073;
inline constexpr uint32_t kHvMsrScontrol = 0x40000080;
inline constexpr uint32_t kHvMsrSversion = 0x40000081;
inline constexpr uint32_t kHvMsrSiefp = 0x40000082;
inline constexpr uint32_t kHvMsrSimp = 0x40000083;
inline constexpr uint32_t kHvMsrEom = 0x40000084;
inline constexpr uint32_t kHvMsrSint0 = 0x40000090;
inline constexpr uint32_t kHvMsrSint15 = 0x4000009f;
inline constexpr uint32_t kHvMsrStimer0Config = 0x400000b0;  // CONFIGn at b0+2n, COUNTn b1+2n.
inline constexpr uint32_t kHvMsrStimer0Count = 0x400000b1;
inline constexpr uint32_t kHvMsrStimer3Count = 0x400000b7;
inline constexpr uint32_t kHvMsrSyndbgControl = 0x400000f1;
inline constexpr uint32_t kHvMsrSyndbgPendingBuffer = 0x400000f5;
inline constexpr uint32_t kHvMsrSyndbgOptions = 0x400000ff;
inline constexpr uint32_t kHvMsrCrashP0 = 0x40000100;
inline constexpr uint32_t kHvMsrCrashP4 = 0x40000104;
inline constexpr uint32_t kHvMsrCrashCtl = 0x40000105;
inline constexpr uint32_t kHvMsrReenlightenmentControl = 0x40000106;
inline constexpr uint32_t kHvMsrTscEmulationControl = 0x40000107;
inline constexpr uint32_t kHvMsrTscEmulationStatus = 0x40000108;
inline constexpr uint32_t kHvMsrTscInvariantControl = 0x40000118;

// HYPERV_CPUID_FEATURES.EAX / EDX bits (hyperv-tlfs.h).
inline constexpr uint32_t kHvVpRuntimeAvailable = 1u << 0;
inline constexpr uint32_t kHvTimeRefCountAvailable = 1u << 1;
inline constexpr uint32_t kHvSynicAvailable = 1u << 2;
inline constexpr uint32_t kHvSyntimerAvailable = 1u << 3;
inline constexpr uint32_t kHvApicAccessAvailable = 1u << 4;
inline constexpr uint32_t kHvHypercallAvailable = 1u << 5;
inline constexpr uint32_t kHvVpIndexAvailable = 1u << 6;
inline constexpr uint32_t kHvResetAvailable = 1u << 7;
inline constexpr uint32_t kHvReferenceTscAvailable = 1u << 9;
inline constexpr uint32_t kHvAccessFrequencyMsrs = 1u << 11;
inline constexpr uint32_t kHvAccessReenlightenment = 1u << 13;
inline constexpr uint32_t kHvAccessTscInvariant = 1u << 15;
inline constexpr uint32_t kHvGuestCrashMsrAvailable = 1u << 10;     // EDX.
inline constexpr uint32_t kHvDebugMsrsAvailable = 1u << 11;         // EDX.
inline constexpr uint32_t kHvStimerDirectModeAvailable = 1u << 19;  // EDX.

// Value bits.
inline constexpr uint64_t kHvHypercallEnable = 1ull << 0;
inline constexpr uint64_t kHvReferenceTscEnable = 1ull << 0;
inline constexpr uint64_t kHvVpAssistPageEnable = 1ull << 0;
inline constexpr uint64_t kHvSynicControlEnable = 1ull << 0;
inline constexpr uint64_t kHvSynicVersion1 = 0x1;
inline constexpr uint64_t kHvSynicPageEnable = 1ull << 0;  // SIMP / SIEFP.
inline constexpr uint64_t kHvSintMasked = 1ull << 16;
inline constexpr uint64_t kHvStimerEnable = 1ull << 0;
inline constexpr uint64_t kHvStimerAutoEnable = 1ull << 3;
inline constexpr uint64_t kHvStimerDirectMode = 1ull << 12;
inline constexpr uint64_t kHvCrashCtlNotify = 1ull << 63;
inline constexpr uint64_t kHvApicFrequency = 1'000'000'000;  // 1e9 / APIC_BUS_CYCLE_NS_DEFAULT.
inline constexpr uint32_t kHvMaxVpIndex = 1024;              // KVM_MAX_VCPUS (no MAXSMP).

// TSC page status (hyperv.c enum hv_tsc_page_status), kept in the VM slot "HV.tsc_page_status".
enum class HvTscPageStatus : uint64_t { kUnset = 0, kGuestChanged, kHostChanged, kSet, kBroken };

const MsrFamilyDef& HypervFamily();

// The row on `profile`: SCONTROL resets to ENABLE when the VMM activated SynIC.
MsrRow ResolveHypervRow(const MsrRow& row, const CpuProfile& profile);

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_HYPERV_H_
