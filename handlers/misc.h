// The "misc" family of the reference set: FEATURE_CONTROL, SPEC_CTRL, PRED_CMD, FLUSH_CMD,
// BIOS_SIGN_ID, MISC_ENABLE, HWCR, PLATFORM_INFO, MISC_FEATURES_ENABLES, POWER_CTL and the
// fixed-value MSRs KVM answers in kvm_get_msr_common (arch/x86/kvm/x86.c; docs/handlers.md).
#ifndef MSRTRACE_HANDLERS_MISC_H_
#define MSRTRACE_HANDLERS_MISC_H_

#include <cstdint>

#include "absl/types/span.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"

namespace msrtrace {

inline constexpr uint32_t kMsrPlatformId = 0x17;
inline constexpr uint32_t kMsrFeatureControl = 0x3a;
inline constexpr uint32_t kMsrSpecCtrl = 0x48;
inline constexpr uint32_t kMsrPredCmd = 0x49;
inline constexpr uint32_t kMsrBiosSignId = 0x8b;
inline constexpr uint32_t kMsrPlatformInfo = 0xce;
inline constexpr uint32_t kMsrFlushCmd = 0x10b;
inline constexpr uint32_t kMsrBblCrCtl3 = 0x119;
inline constexpr uint32_t kMsrMiscFeaturesEnables = 0x140;
inline constexpr uint32_t kMsrMiscEnable = 0x1a0;
inline constexpr uint32_t kMsrHwcr = 0xc0010015;

// IA32_FEATURE_CONTROL bits (ref: vmx.c, KVM_SUPPORTED_FEATURE_CONTROL).
inline constexpr uint64_t kFeatCtlLocked = 1ull << 0;
inline constexpr uint64_t kFeatCtlVmxInsideSmx = 1ull << 1;
inline constexpr uint64_t kFeatCtlVmxOutsideSmx = 1ull << 2;
inline constexpr uint64_t kFeatCtlSgxLc = 1ull << 17;
inline constexpr uint64_t kFeatCtlSgx = 1ull << 18;
inline constexpr uint64_t kFeatCtlLmce = 1ull << 20;
inline constexpr uint64_t kKvmSupportedFeatureControl = kFeatCtlLocked | kFeatCtlVmxInsideSmx |
                                                        kFeatCtlVmxOutsideSmx | kFeatCtlSgxLc |
                                                        kFeatCtlSgx | kFeatCtlLmce;
// MCG_CAP.LMCE_P: FEATURE_CONTROL.LMCE is valid only with it (ref: vmx.c vmx_setup_mce).
inline constexpr uint64_t kMcgLmceP = 1ull << 27;

// IA32_MISC_ENABLE bits (ref: msr-index.h; msrs.c; pmu.h MSR_IA32_MISC_ENABLE_PMU_RO_MASK).
inline constexpr uint64_t kMiscEnableEmon = 1ull << 7;
inline constexpr uint64_t kMiscEnableBtsUnavail = 1ull << 11;
inline constexpr uint64_t kMiscEnablePebsUnavail = 1ull << 12;
inline constexpr uint64_t kMiscEnableMwait = 1ull << 18;
inline constexpr uint64_t kMiscEnableReset = kMiscEnableBtsUnavail | kMiscEnablePebsUnavail;
// KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT is enabled by default, so KVM does not check toggles of
// MISC_ENABLE.MWAIT against SSE3 (the reference set models the default quirks).
inline constexpr bool kMiscEnableNoMwaitQuirk = true;

inline constexpr uint64_t kPlatformInfoCpuidFault = 1ull << 31;
inline constexpr uint64_t kMiscFeaturesCpuidFault = 1ull << 0;
// HWCR: McStatusWrEn (bit 18) lets guests write non-zero MCi_STATUS on AMD.
inline constexpr uint64_t kHwcrMcStatusWrEn = 1ull << 18;
inline constexpr uint64_t kHwcrTscFreqSel = 1ull << 24;

// FEATURE_CONTROL bits a guest (host_initiated = false) or the host may set on `profile`.
uint64_t FeatureControlValidBits(const CpuProfile& profile, bool host_initiated);
// SPEC_CTRL bits the host CPU accepts. KVM asks the host with a trial WRMSR
// (kvm_spec_ctrl_test_value); the profile fixes the answer: IBRS|STIBP|SSBD on Intel (Ice Lake
// has no IPRED/RRSBA/BHI controls), plus PSFD (bit 7) on AMD Zen 3.
uint64_t SpecCtrlValidBits(const CpuProfile& profile);
// PRED_CMD bits a guest may write: IBPB with SPEC_CTRL or AMD_IBPB, SBPB with SBPB.
uint64_t PredCmdValidBits(const CpuProfile& profile);

absl::Span<const MsrRow> MiscRows();
MsrRow ResolveMiscRow(const MsrRow& row, const CpuProfile& profile);

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_MISC_H_
