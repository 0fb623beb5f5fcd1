// The KVM-breadth families of the reference set: feature MSRs (feature_msrs.cc), DEBUGCTL and
// LBRs (debug.cc), the vPMU (pmu.cc) and nested/AMD-specific MSRs (nested.cc). Their rows are
// data like the other families; the index constants and row resolvers live here.
#ifndef MSRTRACE_HANDLERS_BREADTH_H_
#define MSRTRACE_HANDLERS_BREADTH_H_

#include <cstdint>

#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"

namespace msrtrace {

// --- feature family (x86.c kvm_{get,set}_msr_common, vmx.c, msr_based_features_all) ---
inline constexpr uint32_t kMsrSmiCount = 0x34;
inline constexpr uint32_t kMsrSmbase = 0x9e;
inline constexpr uint32_t kMsrArchCapabilities = 0x10a;
inline constexpr uint32_t kMsrTsxCtrl = 0x122;
inline constexpr uint32_t kMsrUmwaitControl = 0xe1;
inline constexpr uint32_t kMsrXfd = 0x1c4;
inline constexpr uint32_t kMsrXfdErr = 0x1c5;
inline constexpr uint32_t kMsrPerfCapabilities = 0x345;
inline constexpr uint32_t kMsrUCet = 0x6a0;
inline constexpr uint32_t kMsrSCet = 0x6a2;
inline constexpr uint32_t kMsrPl0Ssp = 0x6a4;
inline constexpr uint32_t kMsrPl3Ssp = 0x6a7;
inline constexpr uint32_t kMsrIntSspTab = 0x6a8;
inline constexpr uint32_t kMsrXss = 0xda0;
inline constexpr uint64_t kSmbaseReset = 0x30000;
// U_CET/S_CET (msr-index.h CET_*): SH_STK_EN, WRSS_EN; IBT controls and the legacy bitmap.
inline constexpr uint64_t kCetShstkBits = 0x3;
inline constexpr uint64_t kCetIbtBits = 0x3cull | (3ull << 10) | ~0xfffull;
inline constexpr uint64_t kCetReservedBits = 0xfull << 6;  // CET_US_RESERVED_BITS, 9:6.
inline constexpr uint64_t kCetSuppress = 1ull << 10;
inline constexpr uint64_t kCetWaitEndbr = 1ull << 11;

// --- debug family (vmx.c / svm.c MSR_IA32_DEBUGCTLMSR, pmu_intel.c LBR MSRs) ---
inline constexpr uint32_t kMsrDebugCtl = 0x1d9;
inline constexpr uint32_t kMsrLbrSelect = 0x1c8;
inline constexpr uint32_t kMsrLbrTos = 0x1c9;
inline constexpr uint32_t kMsrLastBranchFromIp = 0x1db;
inline constexpr uint64_t kDebugCtlLbr = 1ull << 0;
inline constexpr uint64_t kDebugCtlBtf = 1ull << 1;
inline constexpr uint64_t kDebugCtlFreezeLbrsOnPmi = 1ull << 11;
inline constexpr uint64_t kSvmDebugCtlValid = 0x3f;  // svm.c DEBUGCTL_RESERVED_BITS = ~0x3f.
inline constexpr uint64_t kPerfCapLbrFmt = 0x3f;

// --- pmu family (pmu.c, vmx/pmu_intel.c, svm/pmu_amd.c) ---
inline constexpr uint32_t kMsrPmc0 = 0xc1;          // MSR_IA32_PERFCTR0 / MSR_P6_PERFCTR0.
inline constexpr uint32_t kMsrPerfEvtSel0 = 0x186;  // MSR_P6_EVNTSEL0.
inline constexpr uint32_t kMsrFixedCtr0 = 0x309;
inline constexpr uint32_t kMsrFixedCtrCtrl = 0x38d;
inline constexpr uint32_t kMsrPerfGlobalStatus = 0x38e;
inline constexpr uint32_t kMsrPerfGlobalCtrl = 0x38f;
inline constexpr uint32_t kMsrPerfGlobalOvfCtrl = 0x390;
inline constexpr uint32_t kMsrAPmc0 = 0x4c1;  // MSR_IA32_PMC0 (full-width writes).
inline constexpr uint32_t kMsrK7EvntSel0 = 0xc0010000;
inline constexpr uint32_t kMsrK7PerfCtr0 = 0xc0010004;
inline constexpr uint32_t kMsrF15hPerfCtl0 = 0xc0010200;
inline constexpr uint32_t kMsrAmdGlobalStatus = 0xc0000300;
inline constexpr uint32_t kMsrAmdGlobalCtl = 0xc0000301;
inline constexpr uint32_t kMsrAmdGlobalStatusClr = 0xc0000302;
inline constexpr uint64_t kIntelEventSelReserved = 0xffffffff00200000ull;  // pmu->reserved_bits.
inline constexpr uint64_t kAmdEventSelReserved = 0xfffffff000280000ull;    // amd_pmu_refresh.
inline constexpr uint64_t kPerfCapFwWrites = 1ull << 13;
inline constexpr uint64_t kGlobalOvfBuf = 1ull << 62;    // OVF_CTRL_OVF_BUF.
inline constexpr uint64_t kGlobalCondChgd = 1ull << 63;  // OVF_CTRL_COND_CHGD.
// Masks the profile's vPMU yields (intel_pmu_refresh / amd_pmu_refresh).
uint64_t PmuGlobalCtrlReserved(const CpuProfile& profile);
uint64_t PmuGlobalStatusReserved(const CpuProfile& profile);
uint64_t PmuFixedCtrCtrlReserved(const CpuProfile& profile);

// --- nested family (vmx.c vmx_get_vmx_msr, svm.c svm_{get,set}_msr, x86.c common AMD MSRs) ---
inline constexpr uint32_t kMsrVmxBasic = 0x480;
inline constexpr uint32_t kMsrVmxVmfunc = 0x491;
inline constexpr uint32_t kMsrAmdSyscfg = 0xc0010010;
inline constexpr uint32_t kMsrMmioConfBase = 0xc0010058;
inline constexpr uint32_t kMsrVmCr = 0xc0010114;
inline constexpr uint32_t kMsrVmHsavePa = 0xc0010117;
inline constexpr uint32_t kMsrOsvwIdLength = 0xc0010140;
inline constexpr uint32_t kMsrOsvwStatus = 0xc0010141;
inline constexpr uint32_t kMsrVirtSpecCtrl = 0xc001011f;
inline constexpr uint32_t kMsrDeCfg = 0xc0011029;
inline constexpr uint32_t kMsrTscRatio = 0xc0000104;
inline constexpr uint64_t kVmCrValid = 0x1f;
inline constexpr uint64_t kVmCrSvmLock = 1ull << 3;
inline constexpr uint64_t kVmCrSvmDis = 1ull << 4;
inline constexpr uint64_t kTscRatioDefault = 1ull << 32;
inline constexpr uint64_t kTscRatioReserved = 0xffffff0000000000ull;

MsrRow ResolveFeatureRow(const MsrRow& row, const CpuProfile& profile);
MsrRow ResolveDebugRow(const MsrRow& row, const CpuProfile& profile);
MsrRow ResolvePmuRow(const MsrRow& row, const CpuProfile& profile);
MsrRow ResolveNestedRow(const MsrRow& row, const CpuProfile& profile);

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_BREADTH_H_
