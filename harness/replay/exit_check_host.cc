// Host-initiated trace events (KVM_GET_MSRS / KVM_SET_MSRS): ExitChecker::RunHost. Kept apart
// from exit_check.cc, whose hot path serves guest exits.
//
// KVM's host path (Linux arch/x86/kvm/x86.c msr_io -> do_get_msr/do_set_msr ->
// kvm_get/set_msr_ignored_check with host_initiated = true) touches no guest register, moves no
// RIP and injects nothing; a failing entry ends the ioctl early (its return value is the number
// of entries processed), which a trace records as RECORDED_KIND_HOST_FAILED.
#include "absl/strings/str_format.h"
#include "harness/replay/exit_check.h"

namespace msrtrace {
namespace {

constexpr uint64_t kLow32 = 0xffffffffull;
constexpr uint32_t kMsrEfer = 0xc0000080;

}  // namespace

void ExitChecker::RunHost(const ExitEvent& ev) {
  Controller& ctl = *machine_->controller;
  const uint64_t value = (ev.rdx << 32) | (ev.rax & kLow32);
  result_ = ctl.HostAccess(access_, ev.index(), value, *vcpu_, machine_->memory, ev.exit);
  if (!result_.ok()) {
    observed_ = RecordedKind::kVmmError;
  } else {
    observed_ = result_->kind == Outcome::Kind::kGpInjected ? RecordedKind::kHostFailed
                                                            : RecordedKind::kRetired;
  }

  auto add = [&](DivergenceKind kind, const std::string& expected, const std::string& actual) {
    Divergence* d = Add(kind, ev);
    if (d == nullptr) return;
    d->expected = expected;
    d->actual = actual;
  };

  if (options_.compare_recording && ev.kind != RecordedKind::kUnspecified && ev.kind != observed_) {
    add(DivergenceKind::kOutcome, RecordedKindName(ev.kind),
        result_.ok()
            ? RecordedKindName(observed_)
            : absl::StrFormat("%s (%s)", RecordedKindName(observed_), result_.status().message()));
  } else if (options_.compare_recording && observed_ == RecordedKind::kRetired && !after_gap_) {
    const bool skip_values =
        ev.volatile_value &&
        (options_.volatile_policy == VolatilePolicy::kKindOnly ||
         (options_.volatile_policy == VolatilePolicy::kAuto && (ev.known & kFieldEnv) == 0));
    const uint64_t recorded = (ev.rdx_out << 32) | (ev.rax_out & kLow32);
    if (access_ == Access::kRead && (ev.known & kFieldRaxRdxOut) != 0 && !skip_values &&
        recorded != result_->value) {
      add(DivergenceKind::kValue, absl::StrFormat("host read %#x", recorded),
          absl::StrFormat("host read %#x", result_->value));
    }
    if (!skip_values) CompareWrites(ev);
  }

  if (!options_.check_architecture) return;
  VcpuRegs want = before_;
  const bool efer_write = access_ == Access::kWrite && ev.index() == kMsrEfer;
  if (efer_write && observed_ == RecordedKind::kRetired) want.efer = vcpu_->regs.efer;
  if (vcpu_->regs != want) {
    add(DivergenceKind::kArchHostRegisters, "registers unchanged by a host access",
        "registers changed");
  }
  if (observed_ == RecordedKind::kHostFailed) {
    const std::vector<uint64_t>& vm = ctl.vm_slots();
    if (pre_slots_ != vcpu_->slots || pre_vm_slots_ != vm || !ctl.last_writes().empty()) {
      add(DivergenceKind::kArchGpNotAtomic, "no state change (failed host access)",
          "slots or guest memory changed");
    }
  }
}

}  // namespace msrtrace
