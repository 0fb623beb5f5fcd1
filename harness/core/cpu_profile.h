// The CPU profile type: the guest CPU model a handler set emulates. KVM's MSR behaviour depends
// on guest CPUID (feature bits), on the vendor, and on a few host facts (MAXPHYADDR, LA57); a
// profile fixes all of them so that a trace names its profile and replays the same anywhere.
//
// Only the type lives here (the machine layer builds machines for a profile); the built-in
// profiles themselves are data of the reference handlers (handlers/cpu_profile.h), registered
// with the machine layer through harness/core/handler_registry.h.
#ifndef MSRTRACE_HARNESS_CPU_PROFILE_H_
#define MSRTRACE_HARNESS_CPU_PROFILE_H_

#include <array>
#include <cstdint>
#include <string>

#include "harness/core/exit.h"

namespace msrtrace {

// Guest-visible features that change MSR behaviour. Each is a CPUID bit in KVM (named in the
// comment) or, for the PV features, a KVM_FEATURE_* bit of CPUID 0x40000001.
enum class Feature : uint32_t {
  kLm = 0,               // CPUID 0x80000001 EDX[29]: EFER.LME/LMA.
  kNx,                   // CPUID 0x80000001 EDX[20]: EFER.NXE.
  kSvm,                  // CPUID 0x80000001 ECX[2]: EFER.SVME (AMD).
  kFfxsr,                // CPUID 0x80000001 EDX[25]: EFER.FFXSR (AMD).
  kAutoIbrs,             // CPUID 0x80000021 EAX[8]: EFER.AUTOIBRS (AMD).
  kX2Apic,               // CPUID 1 ECX[21]: APIC_BASE.EXTD.
  kTscAdjust,            // CPUID 7 EBX[1]: IA32_TSC_ADJUST.
  kTscDeadline,          // CPUID 1 ECX[24]: TSC-deadline timer.
  kRdtscp,               // CPUID 0x80000001 EDX[27]: TSC_AUX.
  kRdpid,                // CPUID 7 ECX[22]: TSC_AUX.
  kSpecCtrl,             // CPUID 7 EDX[26] (or AMD_SSBD...): IA32_SPEC_CTRL, PRED_CMD.IBPB.
  kAmdIbpb,              // CPUID 0x80000008 EBX[12]: PRED_CMD.IBPB on AMD.
  kSbpb,                 // CPUID 0x80000021 EAX[27]: PRED_CMD.SBPB.
  kFlushL1d,             // CPUID 7 EDX[28]: IA32_FLUSH_CMD.
  kNestedVmx,            // CPUID 1 ECX[5] exposed: FEATURE_CONTROL VMX bits.
  kSgx,                  // CPUID 7 EBX[2].
  kSgxLc,                // CPUID 7 ECX[30].
  kLmce,                 // MCG_CAP[27] LMCE_P.
  kSse3,                 // CPUID 1 ECX[0]: MISC_ENABLE.MWAIT toggle.
  kPvClocksource,        // KVM_FEATURE_CLOCKSOURCE: 0x11/0x12.
  kPvClocksource2,       // KVM_FEATURE_CLOCKSOURCE2: 0x4b564d00/01.
  kPvClocksourceStable,  // KVM_FEATURE_CLOCKSOURCE_STABLE_BIT: pvclock flags bit 0.
  kPvAsyncPf,            // KVM_FEATURE_ASYNC_PF.
  kPvAsyncPfVmexit,      // KVM_FEATURE_ASYNC_PF_VMEXIT.
  kPvAsyncPfInt,         // KVM_FEATURE_ASYNC_PF_INT.
  kPvSteal,              // KVM_FEATURE_STEAL_TIME.
  kPvEoi,                // KVM_FEATURE_PV_EOI.
  kPvPollControl,        // KVM_FEATURE_POLL_CONTROL.
  kPvMigrationControl,   // KVM_FEATURE_MIGRATION_CONTROL.
  kPvEnforceCpuid,       // KVM_CAP_ENFORCE_PV_FEATURE_CPUID enabled: PV MSRs gated by the above.
  kPdcm,                 // CPUID 1 ECX[15]: IA32_PERF_CAPABILITIES.
  kArchCapabilities,     // CPUID 7 EDX[29]: IA32_ARCH_CAPABILITIES.
  kXsaves,               // CPUID 0xD.1 EAX[3]: IA32_XSS.
  kXfd,                  // CPUID 0xD.1 EAX[4]: IA32_XFD, IA32_XFD_ERR.
  kShstk,                // CPUID 7 ECX[7]: CET shadow stacks (PLx_SSP, INT_SSP_TAB).
  kIbt,                  // CPUID 7 EDX[20]: CET indirect branch tracking.
  kWaitpkg,              // CPUID 7 ECX[5]: IA32_UMWAIT_CONTROL.
  kTsxCtrl,              // ARCH_CAPABILITIES[7] TSX_CTRL_MSR: IA32_TSX_CTRL.
  kLbr,                  // PERF_CAPABILITIES.LBR_FMT with a consistent model: guest LBR MSRs.
  kLa57,                 // CPUID 7 ECX[16]: 5-level paging (guest CR4.LA57).
  kPerfCtrCore,          // CPUID 0x80000001 ECX[23]: AMD PerfCtrExtCore (6 counters, F15H MSRs).
  kPerfMonV2,            // CPUID 0x80000022 EAX[0]: AMD PerfMonV2 global control MSRs.
  kTscRateMsr,           // CPUID 0x8000000A EDX[4]: AMD TSC_RATIO (nested SVM).
  kVirtSsbd,             // CPUID 0x80000008 EBX[25]: AMD VIRT_SPEC_CTRL.
  kOsvw,                 // CPUID 0x80000001 ECX[9]: AMD OSVW_ID_LENGTH/OSVW_STATUS.
  kMpx,                  // CPUID 7 EBX[14] with host MPX (kvm_mpx_supported): IA32_BNDCFGS.
  kIntelPt,              // CPUID 7 EBX[25] with kvm_intel.pt_mode=host_guest: RTIT MSRs.
  kPebs,                 // PERF_CAPABILITIES PEBS format + baseline: PEBS_ENABLE, DS_AREA.
  kHyperV,               // Hyper-V CPUID (0x40000000 "Hv#1"): KVM's hyperv_enabled, HV MSRs.
  kHvEnforceCpuid,       // KVM_CAP_HYPERV_ENFORCE_CPUID: HV MSRs gated by hv_features_eax/edx.
  kCount,
};

struct CpuProfile {
  std::string name;         // Stable identifier used in traces ("intel-icx").
  std::string description;  // One line for `msrtrace msrs`.
  Vendor vendor = Vendor::kIntelVmx;
  uint8_t maxphyaddr = 46;     // Guest MAXPHYADDR: bits at and above are reserved in addresses.
  bool host_la57 = false;      // Canonical checks of MSR writes use 57 bits when the host has LA57.
  uint64_t features = 0;       // Bit i = Feature i.
  uint32_t mce_banks = 10;     // MCG_CAP[7:0].
  uint64_t mcg_cap_extra = 0;  // MCG_CAP bits above 7:0 (MCG_CTL_P, LMCE_P...).
  uint64_t ucode_rev = 0;      // IA32_BIOS_SIGN_ID reset value.

  // vPMU. Intel: CPUID 0xA (version, GP/fixed counter numbers and widths), capped by KVM
  // (kvm_pmu_cap: version <= 2). AMD: version 1 = legacy K7 (4 counters, 6 with PerfCtrExtCore),
  // 2 = PerfMonV2. pmu_version 0 = no vPMU (enable_pmu off or CPUID 0xA EAX[7:0] = 0).
  uint8_t pmu_version = 0;
  uint8_t pmu_gp_counters = 0;
  uint8_t pmu_gp_width = 48;
  uint8_t pmu_fixed_counters = 0;
  uint8_t pmu_fixed_width = 48;
  uint64_t perf_capabilities = 0;  // IA32_PERF_CAPABILITIES (kvm_caps.supported_perf_cap).
  uint64_t arch_capabilities = 0;  // IA32_ARCH_CAPABILITIES (kvm_get_arch_capabilities()).
  uint64_t supported_xss = 0;      // IA32_XSS bits (kvm_caps.supported_xss & guest CPUID 0xD.1).
  uint64_t supported_xfd = 0;      // XFD bits (XFEATURE_MASK_USER_DYNAMIC & guest XCR0).
  uint64_t de_cfg_supported = 0;   // AMD DE_CFG bits KVM accepts (LFENCE_SERIALIZE, bit 1).
  // Nested VMX capability MSRs 0x480..0x491 (IA32_VMX_BASIC..IA32_VMX_VMFUNC), the values KVM's
  // nested_vmx_setup_ctls_msrs() reports for this guest; meaningful with Feature::kNestedVmx.
  std::array<uint64_t, 18> vmx_msrs = {};
  // Hyper-V (meaningful with Feature::kHyperV): HYPERV_CPUID_FEATURES EAX/EDX (hv-* features;
  // checked per MSR with Feature::kHvEnforceCpuid), the SynIC the VMM activated on every vCPU
  // (0 none, 1 KVM_CAP_HYPERV_SYNIC: enabling SIMP/SIEFP zeroes the page, 2 KVM_CAP_HYPERV_SYNIC2:
  // it does not) and whether CPUID 0x40000080 allows kernel debugging (SYNDBG MSRs).
  uint32_t hv_features_eax = 0;
  uint32_t hv_features_edx = 0;
  uint8_t hv_synic = 0;
  bool hv_syndbg = false;

  bool Has(Feature f) const { return (features >> static_cast<uint32_t>(f)) & 1; }
  bool intel() const { return vendor == Vendor::kIntelVmx; }
  bool amd() const { return vendor == Vendor::kAmdSvm; }
  // KVM's guest_pv_has(): true for every PV feature unless CPUID enforcement is on.
  bool HasPv(Feature f) const { return !Has(Feature::kPvEnforceCpuid) || Has(f); }
  // Bit count of canonical addresses for MSR writes (48 or 57).
  int canonical_bits() const { return host_la57 ? 57 : 48; }
};

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_CPU_PROFILE_H_
