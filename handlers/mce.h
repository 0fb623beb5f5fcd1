// The "mce" family of the reference set: MCG_CAP, MCG_STATUS, MCG_CTL, MCG_EXT_CTL, the
// MCi_CTL2 (CMCI) and MCi_CTL/STATUS/ADDR/MISC banks, and the P5 MCE MSRs, as KVM's
// set_msr_mce()/get_msr_mce() in arch/x86/kvm/x86.c emulate them (docs/handlers.md).
#ifndef MSRTRACE_HANDLERS_MCE_H_
#define MSRTRACE_HANDLERS_MCE_H_

#include <cstdint>

#include "absl/types/span.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"

namespace msrtrace {

inline constexpr uint32_t kMsrMcgCap = 0x179;
inline constexpr uint32_t kMsrMcgStatus = 0x17a;
inline constexpr uint32_t kMsrMcgCtl = 0x17b;
inline constexpr uint32_t kMsrMc0Ctl2 = 0x280;
inline constexpr uint32_t kMsrMc0Ctl = 0x400;
inline constexpr uint32_t kMsrMcgExtCtl = 0x4d0;
inline constexpr uint32_t kKvmMaxMceBanks = 32;  // KVM_MAX_MCE_BANKS.

inline constexpr uint64_t kMcgCtlP = 1ull << 8;    // MCG_CTL present.
inline constexpr uint64_t kMcgCmciP = 1ull << 10;  // CMCI (MCi_CTL2) present.
inline constexpr uint64_t kMcgSerP = 1ull << 24;
inline constexpr uint64_t kMcgExtCtlLmceEn = 1ull << 0;
// MCi_CTL2: CMCI_EN (bit 30) and the threshold (14:0); other bits #GP.
inline constexpr uint64_t kMciCtl2Valid = (1ull << 30) | 0x7fff;

// MCG_CAP of `profile`: bank count in 7:0 plus mcg_cap_extra.
uint64_t McgCap(const CpuProfile& profile);

absl::Span<const MsrRow> MceRows();
MsrRow ResolveMceRow(const MsrRow& row, const CpuProfile& profile);

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_MCE_H_
