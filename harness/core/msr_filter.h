// KVM's userspace MSR routing as a model: the KVM_X86_SET_MSR_FILTER filter and the
// KVM_CAP_X86_USER_SPACE_MSR exit reasons. One type serves replay (Controller routing, trace
// headers) and the KVM adapter (harness/kvm/kvm_adapter.h BuildMsrFilter converts it to
// `struct kvm_msr_filter`), so what a VMM installs is what replay models.
//
// The rules (Linux arch/x86/kvm/x86.c kvm_msr_allowed, kvm_vm_ioctl_set_msr_filter,
// kvm_add_msr_filter, kvm_msr_reason, kvm_msr_user_space, kvm_emulate_rdmsr/wrmsr;
// Documentation/virt/kvm/api.rst, KVM_X86_SET_MSR_FILTER and KVM_CAP_X86_USER_SPACE_MSR):
//   * A guest RDMSR/WRMSR of `index` is allowed unless a filter says otherwise. The first
//     range (in order) that contains the index AND has the access's flag (READ or WRITE)
//     decides by its bitmap bit (index - base): 1 allows, 0 denies. No such range: the filter's
//     default (KVM_MSR_FILTER_DEFAULT_ALLOW, or _DEFAULT_DENY).
//   * x2APIC MSRs 0x800-0x8ff are always allowed: "x2APIC MSRs do not support filtering".
//     (The first posted version of filtering, commit 1a155254ff93 "KVM: x86: Introduce MSR
//     filtering", let filters cover them; commit 043248b3280c "KVM: VMX: Forbid userspace MSR
//     filters for x2APIC" made kvm_msr_allowed allow the range unconditionally, in the same
//     merge window, so every released kernel with filtering has this rule.)
//   * Host-initiated accesses (KVM_GET_MSRS/KVM_SET_MSRS) are never filtered (only
//     kvm_get/set_msr_with_filter, the RDMSR/WRMSR paths, consult the filter).
//   * A failed guest access goes to userspace when its reason is in the enabled mask:
//     denied by the filter -> KVM_MSR_EXIT_REASON_FILTER; not implemented in the kernel
//     (KVM_MSR_RET_UNSUPPORTED) -> _UNKNOWN; any other failure (the in-kernel #GP) -> _INVAL.
//     Otherwise the guest gets #GP(0). ignore_msrs turns an unsupported access into a success
//     before this decision, so it never reaches userspace as UNKNOWN.
//   * Setting a filter is rejected (EINVAL) for flags other than DEFAULT_DENY, DEFAULT_DENY
//     with no non-empty range, a non-empty range with flags 0 or other than READ|WRITE, and a
//     bitmap larger than KVM_MSR_FILTER_MAX_BITMAP_SIZE (0x600 bytes, counted in longs).
//     Ranges with nmsrs 0 are unused slots. The exit-reason mask may only hold the three bits.
#ifndef MSRTRACE_HARNESS_MSR_FILTER_H_
#define MSRTRACE_HARNESS_MSR_FILTER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "harness/core/exit.h"

namespace msrtrace {

// KVM_MSR_EXIT_REASON_* (uapi include/uapi/linux/kvm.h).
inline constexpr uint32_t kMsrExitReasonInval = 1u << 0;
inline constexpr uint32_t kMsrExitReasonUnknown = 1u << 1;
inline constexpr uint32_t kMsrExitReasonFilter = 1u << 2;
inline constexpr uint32_t kMsrExitReasonValidMask = 7;

// KVM_MSR_FILTER_READ / _WRITE (range flags) and the limits of KVM_X86_SET_MSR_FILTER.
inline constexpr uint32_t kMsrFilterRead = 1u << 0;
inline constexpr uint32_t kMsrFilterWrite = 1u << 1;
inline constexpr uint32_t kMsrFilterMaxRanges = 16;          // KVM_MSR_FILTER_MAX_RANGES
inline constexpr uint32_t kMsrFilterMaxBitmapBytes = 0x600;  // KVM_MSR_FILTER_MAX_BITMAP_SIZE
// The most MSRs one range can cover: the bitmap is copied in whole longs.
inline constexpr uint32_t kMsrFilterMaxRangeMsrs = kMsrFilterMaxBitmapBytes * 8;

// True for the x2APIC MSRs, which filters never cover.
inline bool IsX2ApicMsr(uint32_t index) { return index >= 0x800 && index <= 0x8ff; }

struct MsrFilterRange {
  uint32_t flags = 0;  // kMsrFilterRead | kMsrFilterWrite.
  uint32_t base = 0;
  uint32_t nmsrs = 0;           // 0 = an unused slot.
  std::vector<uint8_t> bitmap;  // Bit i (LSB first) = index base + i; 1 allows, 0 denies.

  friend bool operator==(const MsrFilterRange& a, const MsrFilterRange& b) {
    return a.flags == b.flags && a.base == b.base && a.nmsrs == b.nmsrs && a.bitmap == b.bitmap;
  }
};

// A KVM_X86_SET_MSR_FILTER configuration. The default (allow, no ranges) is "no filter".
struct MsrFilter {
  bool default_deny = false;  // KVM_MSR_FILTER_DEFAULT_DENY.
  std::vector<MsrFilterRange> ranges;

  // kvm_msr_allowed for a guest access. REQUIRES: Validate() is OK.
  bool Allows(uint32_t index, Access access) const;
  // True when no access can be denied (no ranges, default allow).
  bool is_allow_all() const { return !default_deny && ranges.empty(); }
  // The checks of kvm_vm_ioctl_set_msr_filter/kvm_add_msr_filter (file comment), plus: a
  // bitmap of at least (nmsrs + 7) / 8 bytes. kInvalidArgument naming `where` and the range.
  absl::Status Validate(const std::string& where = "msr_filter") const;

  friend bool operator==(const MsrFilter& a, const MsrFilter& b) {
    return a.default_deny == b.default_deny && a.ranges == b.ranges;
  }
  friend bool operator!=(const MsrFilter& a, const MsrFilter& b) { return !(a == b); }
};

// How guest MSR accesses are routed between the in-kernel handlers and userspace.
struct MsrRouting {
  uint32_t user_space_msr_mask = 0;  // KVM_CAP_X86_USER_SPACE_MSR args[0] (kMsrExitReason*).
  MsrFilter filter;
  // The handler set that handles userspace exits ("" = none: every userspace exit is an MSR
  // the VMM does not implement, and the unknown-MSR policy applies).
  std::string userspace_handler_set;

  // True when routing can differ from "everything in the kernel".
  bool active() const { return user_space_msr_mask != 0 || !filter.is_allow_all(); }
  absl::Status Validate() const;

  friend bool operator==(const MsrRouting& a, const MsrRouting& b) {
    return a.user_space_msr_mask == b.user_space_msr_mask && a.filter == b.filter &&
           a.userspace_handler_set == b.userspace_handler_set;
  }
  friend bool operator!=(const MsrRouting& a, const MsrRouting& b) { return !(a == b); }
};

// The filter that denies reads and writes of `indices` (any order, duplicates allowed) and
// allows everything else; close indices share a range (greedy, each range spans at most
// kMsrFilterMaxRangeMsrs). x2APIC indices are left out and returned in `*not_filterable`
// (sorted, unique) when it is non-null. Errors: kResourceExhausted when more than
// kMsrFilterMaxRanges ranges are needed; kInvalidArgument when no filterable index is left.
absl::Status DenyListFilter(absl::Span<const uint32_t> indices, MsrFilter* filter,
                            std::vector<uint32_t>* not_filterable = nullptr);

// "inval|unknown|filter" (or "none") for an exit-reason mask; ParseMsrExitReasons is its
// inverse (also accepts "," as separator). Unknown names: false.
std::string MsrExitReasonsText(uint32_t mask);
bool ParseMsrExitReasons(const std::string& text, uint32_t* mask);

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_MSR_FILTER_H_
