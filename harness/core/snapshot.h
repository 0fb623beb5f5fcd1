// Whole-machine snapshots and the state digest.
//
// A Snapshot holds everything an MSR exit can read or change: every vCPU's registers and
// per-vCPU slots, the VM-wide slots, each handler's internal state, and guest memory. Restoring
// a snapshot and continuing gives exactly the results of never having stopped.
//
// Compact snapshots: parts a snapshot omits mean reset state. No handler states (or fewer than
// the controller has) = those handlers at reset (RestoreState("") is every handler's reset
// state, see harness/core/msr_handler.h); slots it does not name keep their reset values; no vCPUs
// = the machine's vCPUs at reset (harness/replay/machine.h Machine::Restore).
//
// Slots are stored with their names, so a snapshot taken by one build restores into a controller
// whose layout gained slots since (new slots keep their reset values); a slot name the
// controller does not know is an error.
#ifndef MSRTRACE_HARNESS_SNAPSHOT_H_
#define MSRTRACE_HARNESS_SNAPSHOT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "harness/core/controller.h"
#include "harness/core/guest_memory.h"
#include "harness/core/vcpu.h"

namespace msrtrace {

struct Snapshot {
  std::vector<std::string> vcpu_slot_names;  // Layout of Vcpu::slots below.
  std::vector<std::string> vm_slot_names;    // Layout of vm_slots.
  std::vector<Vcpu> vcpus;
  std::vector<uint64_t> vm_slots;
  // SaveState() of each handler, in Controller::handlers() order.
  std::vector<std::string> handler_states;
  SparseMemory memory;
};

// Captures the state of `controller`, `vcpus` and `memory`.
Snapshot CaptureSnapshot(const Controller& controller, absl::Span<const Vcpu> vcpus,
                         const SparseMemory& memory);

// The same into `*out`, reusing its buffers (no allocation once they have grown). With
// `names` false the slot names already in `*out` are kept: only for a `*out` last filled from
// the same controller (the names are its layout's; the fuzzer's midpoint snapshot).
void CaptureSnapshotInto(const Controller& controller, absl::Span<const Vcpu> vcpus,
                         const SparseMemory& memory, Snapshot* out, bool names = true);

// Restores `snapshot` into `controller` (VM-wide slots and handler state), `*vcpus` (replaced)
// and `*memory`. REQUIRES: `controller` has the same handlers installed as when the snapshot
// was taken. Errors (kInvalidArgument): unknown slot name, handler-count mismatch, a handler
// rejecting its state; handlers past the snapshot's handler_states are reset (RestoreState("")).
// On error the targets are unspecified.
absl::Status RestoreSnapshot(const Snapshot& snapshot, Controller& controller,
                             std::vector<Vcpu>* vcpus, SparseMemory* memory);

// Applies the parts `snapshot` has on top of the current state of `controller`, `*vcpus` and
// `*memory` (Machine::Restore runs it on a machine just reset): VM-wide and per-vCPU slots by
// name (by position when the names are the layout's), vCPU registers (the vCPU list is rebuilt
// with CreateVcpu only when the snapshot's ids differ), the handler states it has, its guest
// pages. No allocation when the vCPU ids match and memory has no pages. Errors as
// RestoreSnapshot's.
// `names_are_layout`: the caller vouches that the snapshot's slot names are `controller`'s
// layout (it captured them from this controller, CaptureSnapshotInto), so slots go by position
// without comparing every name (builds without NDEBUG still compare).
absl::Status ApplySnapshot(const Snapshot& snapshot, Controller& controller,
                           std::vector<Vcpu>* vcpus, SparseMemory* memory,
                           bool names_are_layout = false);

// A stable digest of the whole state: vCPU registers and slots (by slot name), VM-wide slots,
// handler state, and every non-zero guest page. Equal states give equal digests across runs and
// machines.
uint64_t StateDigest(const Controller& controller, absl::Span<const Vcpu> vcpus,
                     const SparseMemory& memory);
uint64_t StateDigest(const Snapshot& snapshot);

// StateDigest(controller, vcpus, memory) without allocating in the steady state: handler states
// are saved into `*scratch` (reused). With `mask_upper`, RCX/RAX/RDX[63:32] of every vCPU are
// digested as zero (what the upper-half-independence oracle compares).
uint64_t StateDigestInto(const Controller& controller, absl::Span<const Vcpu> vcpus,
                         const SparseMemory& memory, std::vector<std::string>* scratch,
                         bool mask_upper = false);

// Digest of one vCPU's registers (for per-event comparisons).
uint64_t RegsDigest(const VcpuRegs& regs);

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_SNAPSHOT_H_
