#include "handlers/cpu_profile.h"

#include <initializer_list>

namespace msrtrace {
namespace {

uint64_t Bits(std::initializer_list<Feature> fs) {
  uint64_t b = 0;
  for (Feature f : fs) b |= 1ull << static_cast<uint32_t>(f);
  return b;
}

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
                                           "pv-enforce-cpuid"};
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
