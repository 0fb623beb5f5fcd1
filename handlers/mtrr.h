// The "mtrr_pat" family of the reference set: MTRRcap, MTRRdefType, the variable and fixed MTRRs
// and IA32_PAT, as KVM's mtrr.c (the simplified find_mtrr() version) and msrs.c emulate them.
// Every index KVM routes to kvm_mtrr_get/set_msr() but find_mtrr() does not know (0x210-0x24f
// and the gaps between the fixed MTRRs and up to 0x2fe) is a row too: both reads and writes
// return 1 there, i.e. #GP even under ignore_msrs.
#ifndef MSRTRACE_HANDLERS_MTRR_H_
#define MSRTRACE_HANDLERS_MTRR_H_

#include <cstdint>

#include "absl/types/span.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"

namespace msrtrace {

inline constexpr uint32_t kMsrMtrrCap = 0xfe;
inline constexpr uint32_t kMsrMtrrPhysBase0 = 0x200;
inline constexpr uint32_t kMsrMtrrPhysMask7 = 0x20f;
inline constexpr uint32_t kMsrMtrrFix64k00000 = 0x250;
inline constexpr uint32_t kMsrMtrrFix16k80000 = 0x258;
inline constexpr uint32_t kMsrMtrrFix16kA0000 = 0x259;
inline constexpr uint32_t kMsrMtrrFix4kC0000 = 0x268;
inline constexpr uint32_t kMsrMtrrFix4kF8000 = 0x26f;
inline constexpr uint32_t kMsrPat = 0x277;
inline constexpr uint32_t kMsrMtrrDefType = 0x2ff;

// MTRRcap: VCNT = KVM_NR_VAR_MTRR (8), FIX = 1 (bit 8), WC = 1 (bit 10), SMRR = 0.
inline constexpr uint64_t kMtrrCapValue = 0x508;
inline constexpr uint64_t kPatReset = 0x0007040600070406ull;

absl::Span<const MsrRow> MtrrPatRows();
MsrRow ResolveMtrrPatRow(const MsrRow& row, const CpuProfile& profile);

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_MTRR_H_
