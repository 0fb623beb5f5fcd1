#include "handlers/cpu_profile.h"

#include <initializer_list>

namespace msrtrace {
namespace {

uint64_t Bits(std::initializer_list<Feature> fs) {
  uint64_t b = 0;
  for (Feature f : fs) b |= 1ull << static_cast<uint32_t>(f);
  return b;
}

// ICX: CPUID 0xA as KVM caps it (version 2; 8 GP and 3 fixed 48-bit counters).
void SetIcxPmu(CpuProfile& p) {
  p.pmu_version = 2;
  p.pmu_gp_counters = 8;
  p.pmu_gp_width = 48;
  p.pmu_fixed_counters = 3;
  p.pmu_fixed_width = 48;
}

constexpr uint64_t kPerfCapFwWrite = 1ull << 13;  // PMU_CAP_FW_WRITES.
// RDCL_NO | IBRS_ALL | SKIP_VMENTRY_L1DFLUSH | MDS_NO | PSCHANGE_MC_NO | TAA_NO: what
// kvm_get_arch_capabilities() reports on an Ice Lake server host.
constexpr uint64_t kIcxArchCapabilities = 0x16bull;
constexpr uint64_t kArchCapTsxCtrlMsr = 1ull << 7;
constexpr uint64_t kXssCetUser = 1ull << 11;
constexpr uint64_t kXssCetKernel = 1ull << 12;
constexpr uint64_t kXfeatureTileData = 1ull << 18;
constexpr uint64_t kDeCfgLfenceSerialize = 1ull << 1;

std::vector<CpuProfile> MakeProfiles() {
  using F = Feature;
  const uint64_t pv = Bits({F::kPvClocksource, F::kPvClocksource2, F::kPvClocksourceStable,
                            F::kPvAsyncPf, F::kPvAsyncPfVmexit, F::kPvAsyncPfInt, F::kPvSteal,
                            F::kPvEoi, F::kPvPollControl, F::kPvMigrationControl});
  std::vector<CpuProfile> out;
  {
    CpuProfile p;
    p.name = "intel-icx";
    p.description = "Intel Ice Lake server guest (x2APIC, TSC-deadline, SPEC_CTRL) on KVM/VMX";
    p.vendor = Vendor::kIntelVmx;
    p.maxphyaddr = 46;
    p.features = pv | Bits({F::kLm, F::kNx, F::kX2Apic, F::kTscAdjust, F::kTscDeadline, F::kRdtscp,
                            F::kRdpid, F::kSpecCtrl, F::kFlushL1d, F::kSse3, F::kLmce});
    p.mce_banks = 10;
    // MCG_CTL_P | MCG_SER_P (QEMU's MCE_CAP_DEF) | MCG_LMCE_P.
    p.mcg_cap_extra = (1ull << 8) | (1ull << 24) | (1ull << 27);
    p.ucode_rev = 0x100000000ull;  // __vmx_vcpu_reset under KVM_X86_QUIRK_STUFF_FEATURE_MSRS.
    p.features |= Bits({F::kPdcm, F::kArchCapabilities, F::kXsaves});
    SetIcxPmu(p);
    p.perf_capabilities = kPerfCapFwWrite;
    p.arch_capabilities = kIcxArchCapabilities;
    out.push_back(p);
  }
  {
    CpuProfile p;
    p.name = "amd-zen3";
    p.description = "AMD Zen 3 (EPYC Milan) guest on KVM/SVM";
    p.vendor = Vendor::kAmdSvm;
    p.maxphyaddr = 48;
    p.features = pv | Bits({F::kLm, F::kNx, F::kSvm, F::kFfxsr, F::kX2Apic, F::kTscAdjust,
                            F::kRdtscp, F::kRdpid, F::kSpecCtrl, F::kAmdIbpb, F::kSse3});
    p.mce_banks = 23;
    p.mcg_cap_extra = (1ull << 8) | (1ull << 24);  // MCG_CTL_P | MCG_SER_P (QEMU's default).
    p.ucode_rev = 0x01000065ull;                   // svm.c reset value.
    p.features |= Bits({F::kXsaves, F::kPerfCtrCore, F::kOsvw});
    p.pmu_version = 1;
    p.pmu_gp_counters = 6;  // PerfCtrExtCore: AMD64_NUM_COUNTERS_CORE.
    p.de_cfg_supported = kDeCfgLfenceSerialize;
    out.push_back(p);
  }
  {
    CpuProfile p;
    p.name = "intel-minimal";
    p.description =
        "Intel guest with few features (no x2APIC, TSC-deadline, RDTSCP, SPEC_CTRL; PV CPUID "
        "enforced and empty): exercises KVM's feature-absent paths";
    p.vendor = Vendor::kIntelVmx;
    p.maxphyaddr = 36;
    p.features = Bits({F::kLm, F::kNx, F::kPvEnforceCpuid});
    p.mce_banks = 4;
    p.ucode_rev = 0x100000000ull;
    out.push_back(p);
  }
  {
    CpuProfile p = out[0];  // intel-icx variant.
    p.name = "intel-32bit";
    p.description =
        "32-bit-only Intel guest (no long mode in CPUID; PAE/NX): EFER.LME/LMA reserved, SYSCALL "
        "MSRs still stored";
    p.features &= ~Bits({F::kLm, F::kRdpid});
    out.push_back(p);
  }
  {
    CpuProfile p = out[0];  // intel-icx variant.
    p.name = "intel-la57";
    p.description =
        "Intel Ice Lake guest with 5-level paging on an LA57 host: MSR canonical checks use 57 "
        "bits, MAXPHYADDR 52";
    p.maxphyaddr = 52;
    p.host_la57 = true;
    p.features |= Bits({F::kLa57});
    out.push_back(p);
  }
  {
    CpuProfile p = out[0];  // intel-icx variant.
    p.name = "intel-spr-cet";
    p.description =
        "Intel Sapphire Rapids guest with CET (shadow stacks, IBT), XSS CET states, AMX XFD, "
        "WAITPKG and TSX_CTRL";
    p.features |= Bits({F::kShstk, F::kIbt, F::kXfd, F::kWaitpkg, F::kTsxCtrl});
    p.arch_capabilities = kIcxArchCapabilities | kArchCapTsxCtrlMsr;
    p.supported_xss = kXssCetUser | kXssCetKernel;
    p.supported_xfd = kXfeatureTileData;
    p.maxphyaddr = 46;
    out.push_back(p);
  }
  {
    CpuProfile p = out[0];  // intel-icx variant.
    p.name = "intel-nested-vmx";
    p.description =
        "Intel Ice Lake guest with nested VMX (VMX capability MSRs, FEATURE_CONTROL VMX bits) "
        "and guest LBR (PERF_CAPABILITIES.LBR_FMT 5, 32 entries)";
    p.features |= Bits({F::kNestedVmx, F::kLbr});
    p.perf_capabilities = kPerfCapFwWrite | 0x5;
    p.vmx_msrs = {0x00d8100011e57ed0ull, 0x000000ff00000016ull, 0xfff9fffe0401e172ull,
                  0x003fffff00036dffull, 0x0000f3ff000011ffull, 0x0000000020000065ull,
                  0x0000000080000021ull, 0x00000000ffffffffull, 0x0000000000002000ull,
                  0x00000000003767ffull, 0x000000000000002eull, 0x0037bfff00000000ull,
                  0x00000f0106734141ull, 0x000000ff00000016ull, 0xfff9fffe04006172ull,
                  0x003fffff00036dfbull, 0x0000f3ff000011fbull, 0x0000000000000001ull};
    out.push_back(p);
  }
  {
    CpuProfile p = out[1];  // amd-zen3 variant.
    p.name = "amd-nested-svm";
    p.description =
        "AMD Zen 3 guest with nested SVM (VM_CR, VM_HSAVE_PA, TSC_RATIO) and VIRT_SPEC_CTRL";
    p.features |= Bits({F::kTscRateMsr, F::kVirtSsbd});
    out.push_back(p);
  }
  {
    CpuProfile p = out[1];  // amd-zen3 variant.
    p.name = "amd-zen4";
    p.description =
        "AMD Zen 4 (EPYC Genoa) guest with PerfMonV2 (global PMU control), AutoIBRS and SBPB";
    p.features |= Bits({F::kPerfMonV2, F::kAutoIbrs, F::kSbpb, F::kLa57});
    p.pmu_version = 2;
    p.pmu_gp_counters = 6;  // CPUID 0x80000022 EBX[3:0].
    p.maxphyaddr = 52;
    p.host_la57 = true;
    p.ucode_rev = 0x0a101148ull;
    out.push_back(p);
  }
  {
    CpuProfile p = out[0];  // intel-icx variant.
    p.name = "hyperv";
    p.description =
        "Intel Ice Lake guest with Hyper-V enlightenments as QEMU's hv-* flags set them "
        "(hypercall, VP index/runtime, reference time and TSC page, SynIC2, stimers, vAPIC, "
        "frequencies, reenlightenment, crash MSRs) and KVM_CAP_HYPERV_ENFORCE_CPUID";
    p.features |= Bits({F::kHyperV, F::kHvEnforceCpuid});
    // HYPERV_CPUID_FEATURES.EAX (hyperv-tlfs.h HV_MSR_*_AVAILABLE, HV_ACCESS_*): bits 0-7, 9,
    // 11, 13 and 15.
    p.hv_features_eax = 0xffu | (1u << 9) | (1u << 11) | (1u << 13) | (1u << 15);
    // EDX: FREQUENCY_MSRS_AVAILABLE (8), GUEST_CRASH_MSR_AVAILABLE (10),
    // STIMER_DIRECT_MODE_AVAILABLE (19).
    p.hv_features_edx = (1u << 8) | (1u << 10) | (1u << 19);
    p.hv_synic = 2;  // QEMU activates SynIC with KVM_CAP_HYPERV_SYNIC2.
    out.push_back(p);
  }
  return out;
}

}  // namespace

const char* FeatureName(Feature f) {
  static constexpr const char* kNames[] = {"lm",
                                           "nx",
                                           "svm",
                                           "ffxsr",
                                           "auto-ibrs",
                                           "x2apic",
                                           "tsc-adjust",
                                           "tsc-deadline",
                                           "rdtscp",
                                           "rdpid",
                                           "spec-ctrl",
                                           "amd-ibpb",
                                           "sbpb",
                                           "flush-l1d",
                                           "nested-vmx",
                                           "sgx",
                                           "sgx-lc",
                                           "lmce",
                                           "sse3",
                                           "pv-clocksource",
                                           "pv-clocksource2",
                                           "pv-clocksource-stable",
                                           "pv-async-pf",
                                           "pv-async-pf-vmexit",
                                           "pv-async-pf-int",
                                           "pv-steal-time",
                                           "pv-eoi",
                                           "pv-poll-control",
                                           "pv-migration-control",
                                           "pv-enforce-cpuid",
                                           "pdcm",
                                           "arch-capabilities",
                                           "xsaves",
                                           "xfd",
                                           "shstk",
                                           "ibt",
                                           "waitpkg",
                                           "tsx-ctrl",
                                           "lbr",
                                           "la57",
                                           "perfctr-core",
                                           "perfmon-v2",
                                           "tsc-ratio-msr",
                                           "virt-ssbd",
                                           "osvw",
                                           "mpx",
                                           "intel-pt",
                                           "pebs",
                                           "hyperv",
                                           "hv-enforce-cpuid"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(Feature::kCount),
                "one name per feature");
  const auto i = static_cast<size_t>(f);
  return i < static_cast<size_t>(Feature::kCount) ? kNames[i] : "unknown";
}

const std::vector<CpuProfile>& BuiltinProfiles() {
  static const auto* profiles = new std::vector<CpuProfile>(MakeProfiles());
  return *profiles;
}

const CpuProfile& DefaultProfile() { return BuiltinProfiles().front(); }

const CpuProfile* FindProfile(absl::string_view name) {
  for (const CpuProfile& p : BuiltinProfiles()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

}  // namespace msrtrace
