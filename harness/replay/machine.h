// The machine: a Controller with a handler set installed for a CPU profile, its vCPUs and
// sparse guest memory; built once from a trace header and then reset, not rebuilt.
//
// BuildMachine() looks the header's handler set and CPU profile up in the registries
// (harness/core/handler_registry.h), installs the set into a fresh Controller with the recorded
// unknown-MSR policy (and, when header.routing names one, installs the userspace handler set
// with Controller::BeginUserspaceInstall and sets the routing), creates header.vcpu_count vCPUs at
// reset and keeps that state as the machine's reset image.
//
// Reset() returns to the reset image in time proportional to what changed since: vCPU
// registers and slots and the VM-wide slots are flat arrays copied back (no allocation); guest
// memory restores only the pages written since (SparseMemory dirty tracking); every handler's
// internal state is restored from the bytes its SaveState gave at build time. The dispatch
// tables are never touched. Restore(snapshot) is Reset() and then the parts the snapshot has
// (a compact snapshot omits what is at reset, see harness/core/snapshot.h).
//
// The rule for handler authors: every piece of handler state outside slots must be in the bytes
// SaveState() gives and be put back by RestoreState() (and RestoreState("") must give the reset
// state). State kept anywhere else (a member SaveState omits, a static) survives Reset() and
// makes a reused machine differ from a fresh one. Reset() checks what it can: when a check is
// due (every reset in builds without NDEBUG, every 1024th otherwise, see
// set_reset_check_interval) it digests the state after the reset and compares it with the reset
// image's; a difference is a kInternal error naming the handler whose state did not come back.
// A handler whose hidden state changes behaviour is found by the determinism oracle (two runs on
// the reset machine differ) and by the reset-vs-fresh corpus test (harness/replay/machine_test.cc).
//
// Thread-safety: none; one machine per thread.
#ifndef MSRTRACE_HARNESS_MACHINE_H_
#define MSRTRACE_HARNESS_MACHINE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "harness/core/controller.h"
#include "harness/core/cpu_profile.h"
#include "harness/core/guest_memory.h"
#include "harness/core/handler_registry.h"
#include "harness/core/snapshot.h"
#include "harness/core/vcpu.h"
#include "harness/trace/trace_types.h"

namespace msrtrace {

// A VM for replay, recording or fuzzing: controller, vCPUs and guest memory.
class Machine {
 public:
  const CpuProfile* profile = nullptr;
  const HandlerSetDef* handler_set = nullptr;
  std::unique_ptr<Controller> controller;
  std::vector<Vcpu> vcpus;
  SparseMemory memory;

  // The vCPU with `id`, or nullptr. O(1) when ids are positions (the usual case).
  Vcpu* FindVcpu(uint32_t id) {
    if (id < vcpus.size() && vcpus[id].id == id) return &vcpus[id];
    for (Vcpu& v : vcpus) {
      if (v.id == id) return &v;
    }
    return nullptr;
  }

  // Back to the reset image (see the file comment). Errors (kInternal): a handler rejected its
  // saved state, or a due check found state that did not come back.
  [[nodiscard]] absl::Status Reset();
  // Reset(), then `snapshot` (vCPUs, MSR state, handler state, memory); what it omits stays at
  // reset. Errors (kInvalidArgument): a slot name no handler reserves, state for more handlers
  // than installed, a handler rejecting its state.
  // `names_are_layout`: see ApplySnapshot (harness/core/snapshot.h).
  [[nodiscard]] absl::Status Restore(const Snapshot& snapshot, bool names_are_layout = false);

  // StateDigest of the whole machine (no allocation in the steady state). With `mask_upper`,
  // RCX/RAX/RDX[63:32] count as zero.
  uint64_t Digest(bool mask_upper = false) const;

  // A fast hash of the same state for comparisons between runs on this machine (the oracles,
  // the reset check): equal states give equal hashes, but unlike Digest() slot names are not
  // hashed and the value is not stable across layouts or builds; never store it in a trace.
  uint64_t StateHash(bool mask_upper = false) const;

  // How often Reset() verifies itself (1 = every reset, 0 = never).
  void set_reset_check_interval(uint32_t n) { check_interval_ = n; }
  uint64_t resets() const { return resets_; }

 private:
  friend absl::StatusOr<std::unique_ptr<Machine>> BuildMachine(const TraceHeader& header);
  // Takes the reset image from the current state.
  void TakeResetImage();
  absl::Status CheckReset();

  // The reset image.
  std::vector<Vcpu> reset_vcpus_;
  std::vector<uint64_t> reset_vm_slots_;
  std::vector<std::string> reset_handler_states_;
  SparseMemory reset_memory_;
  uint64_t reset_hash_ = 0;
  uint64_t resets_ = 0;
#ifdef NDEBUG
  uint32_t check_interval_ = 1024;
#else
  uint32_t check_interval_ = 1;
#endif
  mutable std::vector<std::string> scratch_;  // Handler states for Digest().
};

// Builds the machine `header` describes, with header.vcpu_count vCPUs (ids 0..n-1) at reset.
// Errors (kInvalidArgument): unknown CPU profile or handler set (the message lists the known
// ones), a handler set that fails to install, too many vCPUs.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Machine>> BuildMachine(const TraceHeader& header);

// Machines built once per process and reused: one per (handler set, CPU profile, unknown-MSR
// policy, vCPU count, MSR routing). Get() returns the cached machine, Reset() to its reset image,
// or builds it on first use. A handful of distinct headers per process is the expected use (a
// linear search picks the entry).
class MachineCache {
 public:
  // The machine for `header`, at reset. The pointer stays valid for the cache's lifetime.
  [[nodiscard]] absl::StatusOr<Machine*> Get(const TraceHeader& header);
  // The same machine in whatever state its last user left it (at reset when just built), for
  // callers that Restore() a snapshot first anyway (Restore() resets).
  [[nodiscard]] absl::StatusOr<Machine*> GetUnreset(const TraceHeader& header);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string handler_set;
    std::string cpu_profile;
    UnknownMsrPolicy policy;
    uint32_t vcpu_count;
    MsrRouting routing;
    std::unique_ptr<Machine> machine;
  };
  std::vector<Entry> entries_;
};

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_MACHINE_H_
