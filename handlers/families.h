// The handler families of the reference set. Each family owns its rows of the MSR table, its
// row resolver and an install function that builds one TableHandler from the resolved rows;
// msr_table.cc lists them all in ReferenceFamilies().
#ifndef MSRTRACE_HANDLERS_FAMILIES_H_
#define MSRTRACE_HANDLERS_FAMILIES_H_

#include "handlers/msr_table.h"

namespace msrtrace {

// Time and local APIC (tsc.cc, lapic.cc, kvm_pv.cc).
const MsrFamilyDef& TscFamily();    // IA32_TSC, IA32_TSC_ADJUST.
const MsrFamilyDef& LapicFamily();  // IA32_APIC_BASE, IA32_TSC_DEADLINE, x2APIC 0x800-0x8ff.
const MsrFamilyDef& KvmPvFamily();  // KVM paravirtual MSRs, kvm-clock.

// Everything else (misc.cc, mtrr.cc, mce.cc, syscall.cc).
const MsrFamilyDef& MiscFamily();     // FEATURE_CONTROL, SPEC_CTRL, PRED_CMD, FLUSH_CMD,
                                      // BIOS_SIGN_ID, MISC_ENABLE, fixed-value MSRs.
const MsrFamilyDef& MtrrPatFamily();  // MTRRcap, MTRRdefType, variable/fixed MTRRs, PAT.
const MsrFamilyDef& MceFamily();      // MCG_CAP, MCG_STATUS, MCG_CTL, MCi_CTL/STATUS/ADDR/MISC.
const MsrFamilyDef& SyscallFamily();  // SYSENTER_*, EFER, STAR/LSTAR/CSTAR/SFMASK,
                                      // FS/GS/KERNEL_GS_BASE, TSC_AUX.

// KVM-breadth families (feature_msrs.cc, debug.cc, pmu.cc, nested.cc; breadth.h).
const MsrFamilyDef& FeatureFamily();  // ARCH/PERF_CAPABILITIES, SMBASE, TSX_CTRL, XSS, XFD, CET.
const MsrFamilyDef& DebugFamily();    // DEBUGCTL, LASTBRANCH*, LBR stack.
const MsrFamilyDef& PmuFamily();      // Intel arch perfmon, AMD K7/F15H/PerfMonV2.
const MsrFamilyDef& NestedFamily();   // VMX capability MSRs, VM_CR, HSAVE_PA, TSC_RATIO, AMD.
const MsrFamilyDef& HypervFamily();   // Hyper-V synthetic MSRs (hyperv.cc, hyperv.h).

// Slot names other families look up (tsc.cc reserves them; kvm_pv.cc reads them).
inline constexpr const char kTscOffsetSlot[] = "IA32_TSC.offset";

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_FAMILIES_H_
