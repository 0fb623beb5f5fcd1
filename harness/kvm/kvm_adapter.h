// The KVM userspace MSR-exit adapter: connects `struct kvm_run`'s MSR exits
// (KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR) to a Controller, so that a VMM which enables
// KVM_CAP_X86_USER_SPACE_MSR and installs a KVM_X86_SET_MSR_FILTER dispatches guest RDMSR/WRMSR
// to msrtrace handlers (and records them) in a few lines:
//
//   KvmMsrAdapter adapter(controller, memory);
//   adapter.set_handle_hook([&](const Exit& e, Vcpu& v, GuestMemory& m) {
//     return recorder->Handle(e, v, m);   // optional: record every exit
//   });
//   ASSIGN_OR_RETURN(auto filter, BuildMsrFilter(controller.RegisteredIndices()));
//   ioctl(vm_fd, KVM_X86_SET_MSR_FILTER, &filter->filter);
//   ...
//   case KVM_EXIT_X86_RDMSR: case KVM_EXIT_X86_WRMSR:
//     RETURN_IF_ERROR(adapter.HandleExit(run, vcpu).status());  // then KVM_RUN again
//
// ABI (uapi include/uapi/linux/kvm.h; arch/x86/kvm msrs.c complete_userspace_rdmsr/
// complete_fast_msr_access; Documentation/virt/kvm/api.rst, KVM_EXIT_X86_RDMSR/WRMSR):
//   kernel -> user: run->msr.index, run->msr.data (WRMSR value), run->msr.reason
//                   (KVM_MSR_EXIT_REASON_INVAL/UNKNOWN/FILTER); KVM zeroes error and pad.
//   user -> kernel: run->msr.data (RDMSR result), run->msr.error (1 = inject #GP(0)).
//   On the next KVM_RUN, KVM writes EDX:EAX from data and skips the instruction, or injects
//   #GP(0) without skipping when error != 0. KVM, not this adapter, moves the guest RIP.
//
// Thread-safety: none; one adapter per vCPU thread, or serialize calls (the Controller is not
// thread-safe). No allocation per exit beyond what the hook does.
#ifndef MSRTRACE_HARNESS_KVM_ADAPTER_H_
#define MSRTRACE_HARNESS_KVM_ADAPTER_H_

#include <linux/kvm.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "harness/core/controller.h"
#include "harness/core/exit.h"
#include "harness/core/guest_memory.h"
#include "harness/core/msr_filter.h"
#include "harness/core/vcpu.h"

namespace msrtrace {

struct KvmAdapterOptions {
  // The vendor the exits are presented as (the host CPU's: VMX exit reasons 31/32 or the SVM
  // exit code 0x7c with EXITINFO1).
  Vendor vendor = Vendor::kIntelVmx;
  // Instruction length given to the controller. Userspace MSR exits do not report it; RDMSR and
  // WRMSR without prefixes are 2 bytes. It only moves the shadow vCPU's RIP: KVM skips the
  // real instruction itself.
  uint8_t instruction_length = 2;
};

class KvmMsrAdapter {
 public:
  using HandleFn =
      std::function<absl::StatusOr<Outcome>(const Exit& exit, Vcpu& vcpu, GuestMemory& memory)>;

  // `controller` and `memory` must outlive the adapter.
  KvmMsrAdapter(Controller& controller, GuestMemory& memory, KvmAdapterOptions options = {});

  // Routes exits through `fn` instead of Controller::Handle (e.g. Recorder::Handle). `fn` must
  // return what the controller returned.
  void set_handle_hook(HandleFn fn) { hook_ = std::move(fn); }

  static bool IsMsrExit(const struct kvm_run& run) {
    return run.exit_reason == KVM_EXIT_X86_RDMSR || run.exit_reason == KVM_EXIT_X86_WRMSR;
  }

  // The Exit the adapter presents to the controller for `run` (RDMSR or WRMSR).
  Exit ExitFor(const struct kvm_run& run) const;

  // Handles one MSR exit on `vcpu` (the VMM's shadow of the vCPU; its RCX/RAX/RDX are set from
  // the exit, other registers are whatever the VMM synced into it) and completes `run->msr`:
  //   retired RDMSR -> data = value, error = 0;  WRMSR -> error = 0;
  //   #GP           -> error = 1 (KVM injects #GP(0), RIP unchanged);
  //   ignored (UnknownMsrPolicy::kIgnore) -> RDMSR data = 0, error = 0.
  // The shadow's pending exception is cleared before and after (KVM does the injection).
  // Errors: kInvalidArgument when run->exit_reason is not an MSR exit (run untouched); the
  // controller's error (handler failure, unknown MSR under kFail): run->msr untouched, the VMM
  // should stop the VM.
  absl::StatusOr<Outcome> HandleExit(struct kvm_run* run, Vcpu& vcpu);

  uint64_t exits_handled() const { return exits_; }
  // run->msr.reason of the last exit (KVM_MSR_EXIT_REASON_*).
  uint32_t last_reason() const { return last_reason_; }

 private:
  Controller& controller_;
  GuestMemory& memory_;
  KvmAdapterOptions options_;
  HandleFn hook_;
  uint64_t exits_ = 0;
  uint32_t last_reason_ = 0;
};

// A KVM_X86_SET_MSR_FILTER argument built from the filter model (harness/core/msr_filter.h), which
// is kept alongside so that a recorder can put exactly what was installed into the trace header
// (TraceHeader::routing). `filter.ranges[i].bitmap` point into `bitmaps`; the object is not
// copyable so the pointers stay valid.
struct KvmMsrFilter {
  KvmMsrFilter() = default;
  KvmMsrFilter(const KvmMsrFilter&) = delete;
  KvmMsrFilter& operator=(const KvmMsrFilter&) = delete;

  struct kvm_msr_filter filter = {};
  std::vector<std::vector<uint8_t>> bitmaps;
  MsrFilter model;
  // Indices in 0x800-0x8ff: KVM ignores filters for x2APIC MSRs, so they cannot be redirected.
  std::vector<uint32_t> not_filterable;
};

// Bits per range bitmap: KVM_MSR_FILTER_MAX_BITMAP_SIZE (0x600 bytes) * 8.
inline constexpr uint32_t kKvmMsrFilterMaxBits = kMsrFilterMaxRangeMsrs;

// The ioctl argument for `model`. Errors: kInvalidArgument when the model fails
// MsrFilter::Validate() (KVM would return EINVAL).
absl::StatusOr<std::unique_ptr<KvmMsrFilter>> ToKvmMsrFilter(const MsrFilter& model);
// The model of an ioctl argument (the inverse; ranges with nmsrs 0 are dropped).
MsrFilter FromKvmMsrFilter(const struct kvm_msr_filter& filter);

// The filter that denies (so that, with KVM_MSR_EXIT_REASON_FILTER enabled, sends to
// userspace) reads and writes of `indices` and allows everything else
// (KVM_MSR_FILTER_DEFAULT_ALLOW): DenyListFilter() then ToKvmMsrFilter(). Indices close
// together share a range; at most KVM_MSR_FILTER_MAX_RANGES (16) ranges. Errors:
// kResourceExhausted when the indices need more ranges; kInvalidArgument when no filterable
// index is left.
absl::StatusOr<std::unique_ptr<KvmMsrFilter>> BuildMsrFilter(absl::Span<const uint32_t> indices);

// True when `filter` denies `index` for the access `flag` (KVM_MSR_FILTER_READ/WRITE), by
// KVM's rule (MsrFilter::Allows on FromKvmMsrFilter(filter)).
bool KvmMsrFilterDenies(const struct kvm_msr_filter& filter, uint32_t index, uint32_t flag);

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_KVM_ADAPTER_H_
