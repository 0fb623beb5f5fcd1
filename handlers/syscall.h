// The "syscall" family of the reference set: SYSENTER_CS/ESP/EIP, EFER, STAR/LSTAR/CSTAR/SFMASK,
// FS/GS/KERNEL_GS_BASE and TSC_AUX (arch/x86/kvm/x86.c __kvm_set_msr, set_efer,
// __kvm_valid_efer; vmx/vmx.c; svm/svm.c; docs/handlers.md).
#ifndef MSRTRACE_HANDLERS_SYSCALL_H_
#define MSRTRACE_HANDLERS_SYSCALL_H_

#include <cstdint>

#include "absl/types/span.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"

namespace msrtrace {

inline constexpr uint32_t kMsrSysenterCs = 0x174;
inline constexpr uint32_t kMsrSysenterEsp = 0x175;
inline constexpr uint32_t kMsrSysenterEip = 0x176;
inline constexpr uint32_t kMsrEfer = 0xc0000080;
inline constexpr uint32_t kMsrStar = 0xc0000081;
inline constexpr uint32_t kMsrLstar = 0xc0000082;
inline constexpr uint32_t kMsrCstar = 0xc0000083;
inline constexpr uint32_t kMsrSfmask = 0xc0000084;
inline constexpr uint32_t kMsrFsBase = 0xc0000100;
inline constexpr uint32_t kMsrGsBase = 0xc0000101;
inline constexpr uint32_t kMsrKernelGsBase = 0xc0000102;
inline constexpr uint32_t kMsrTscAux = 0xc0000103;

// EFER bits KVM supports on the profile's host (the complement of efer_reserved_bits): SCE,
// LME|LMA, NX; on AMD also SVME (nested=1), FFXSR and, with the feature, AUTOIBRS. Host writes
// are checked against these only.
uint64_t EferHostSupportedBits(const CpuProfile& profile);
// EFER bits a guest may set (also __kvm_valid_efer: each bit needs its CPUID feature).
uint64_t EferGuestValidBits(const CpuProfile& profile);

absl::Span<const MsrRow> SyscallRows();
MsrRow ResolveSyscallRow(const MsrRow& row, const CpuProfile& profile);

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_SYSCALL_H_
