// The MSRs a VMM saves and restores with KVM_GET_MSRS / KVM_SET_MSRS, in the kernel's order:
// the indices of Linux arch/x86/kvm/x86.c msrs_to_save_base, msrs_to_save_pmu and
// emulated_msrs_all (as of Linux 6.12; KVM_GET_MSR_INDEX_LIST reports msrs_to_save, then
// emulated_msrs, each filtered to what the host and KVM support). The lists are data: the
// indices only, no kernel code.
#ifndef MSRTRACE_HARNESS_KVM_SAVE_LIST_H_
#define MSRTRACE_HARNESS_KVM_SAVE_LIST_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "harness/core/controller.h"

namespace msrtrace {

// msrs_to_save_base then msrs_to_save_pmu.
absl::Span<const uint32_t> KvmMsrsToSave();
// emulated_msrs_all (the Hyper-V block included).
absl::Span<const uint32_t> KvmEmulatedMsrs();

// The save list for `controller`: KvmMsrsToSave() then KvmEmulatedMsrs(), keeping the indices
// its in-kernel handlers implement (as KVM keeps those the host supports), without duplicates.
std::vector<uint32_t> KvmSaveRestoreList(const Controller& controller);

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_KVM_SAVE_LIST_H_
