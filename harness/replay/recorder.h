// The recorder: an observer that wraps a Controller and writes every MSR exit it handles to a
// trace. It never emulates: Handle() forwards to Controller::Handle and records the inputs it
// passed and the outcome it got back.
//
// A VMM adopts it in a few lines (see examples/recording_vmm.cc):
//
//   ASSIGN_OR_RETURN(auto rec, Recorder::Start("vm.trace", header, controller, vcpus, memory));
//   ...                                     // in the exit loop, instead of controller.Handle:
//   absl::StatusOr<Outcome> out = rec->Handle(exit, vcpu, memory);
//   ...
//   RETURN_IF_ERROR(rec->Close(vcpus));     // trailer with the final-state digest
//
// What a trace records, and the replay model it implies:
//   - At Start: a snapshot of the whole machine (registers, MSR state, guest memory).
//   - Per exit: the exit (vendor, reason, instruction length, host TSC and wall clock), the
//     registers the exit reads (RCX, RAX, RDX, RIP, RFLAGS, CR0, CR4, EFER, CS.L,
//     interruptibility), and the outcome: kind, RAX/RDX/RIP after, the pending exception, the
//     guest-memory writes (bytes and digest), or the VMM error message.
//   - Host-initiated accesses (KVM_GET_MSRS / KVM_SET_MSRS) made through HostAccess() or
//     SaveRestore() are recorded as host events (ExitEvent::host_initiated); other host
//     accesses after Start are not.
//   - Not recorded: what the guest does between exits (other GPRs, guest-memory stores). Replay
//   therefore models every vCPU as "snapshot
//     registers, then each exit's inputs and outputs"; handlers that read guest memory the guest
//     changed between exits cannot be replayed exactly.
//   - Each exit starts with no pending exception: the previous exit's exception was delivered at
//     VM entry. REQUIRES of the VMM: vcpu.regs.pending is clear when it calls Handle.
//
// The final-state digest written at Close() is computed over that replay model (the controller's
// MSR state and handler state, the vCPUs' slots, the modelled registers, and snapshot memory
// plus the recorded writes), so replay can check it bit for bit.
//
// Failures: a trace write error never disturbs the VM. Handle() keeps returning the controller's
// outcome; the first write error is kept in status() and recording stops.
//
// Thread-safety: none (like the Controller). Steady-state Handle() does not allocate.
#ifndef MSRTRACE_HARNESS_RECORDER_H_
#define MSRTRACE_HARNESS_RECORDER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "harness/core/controller.h"
#include "harness/core/guest_memory.h"
#include "harness/core/snapshot.h"
#include "harness/core/vcpu.h"
#include "harness/trace/trace_file.h"
#include "harness/trace/trace_types.h"

namespace msrtrace {

struct RecorderOptions {
  // Hand buffered records to the OS (write(2), no fsync) every N events; 0 = only when the
  // writer's 64 KiB buffer fills, on Flush() and on Close() (which also fsyncs). See
  // TraceWriterOptions and docs/cli.md ("Flush and fsync policy").
  uint32_t flush_every = 0;
  // Gzip the trace (also implied by a path ending in ".gz").
  bool gzip = false;
  // TraceWriterOptions::atomic: write a temporary file and rename it over `path` on Close()
  // (a failed or killed recording leaves an existing `path` untouched; the temporary file of a
  // killed one keeps every flushed event). false: write `path` in place, readable while the
  // recording runs.
  bool atomic = true;
  // Events of MSR indices for which this returns true are marked volatile_value (their values
  // depend on time). Empty = none. Called once per event.
  std::function<bool(uint32_t index)> is_volatile;
};

class Recorder {
 public:
  // Starts a recording to `path` (truncated): captures the snapshot of `controller`, `vcpus`
  // and `memory` and writes the header and snapshot. The header's vcpu_count and
  // unknown_msr_policy are taken from the machine; the caller fills producer, cpu_profile and
  // handler_set (replay rebuilds the controller from them). `*controller` must outlive the
  // recorder.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Recorder>> Start(
      const std::string& path, TraceHeader header, Controller& controller,
      absl::Span<const Vcpu> vcpus, const SparseMemory& memory, RecorderOptions options = {});
  // The same with a snapshot the caller built (a VMM whose guest memory is not SparseMemory).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Recorder>> StartWithSnapshot(
      const std::string& path, TraceHeader header, Controller& controller, const Snapshot& snapshot,
      RecorderOptions options = {});

  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;
  ~Recorder();

  // Handles `exit` through the wrapped controller and records it. Returns exactly what
  // Controller::Handle returned. A VMM error (handler failure, unknown MSR under kFail) is
  // recorded as RecordedKind::kVmmError; a non-MSR exit (IsExitNotHandled) is not recorded, so a
  // chain of controllers can try the next one.
  absl::StatusOr<Outcome> Handle(const Exit& exit, Vcpu& vcpu, GuestMemory& memory);

  // One host-initiated access (a KVM_GET_MSRS / KVM_SET_MSRS entry) through
  // Controller::HostAccess, recorded as a host event: kind RETIRED or HOST_FAILED, a read's
  // value in rdx_out:rax_out, a write's value in rdx:rax, the guest-memory writes. Returns what
  // HostAccess returned (kGpInjected = refused).
  absl::StatusOr<Outcome> HostAccess(Access access, uint32_t index, uint64_t value, Vcpu& vcpu,
                                     GuestMemory& memory, uint64_t host_tsc = 0,
                                     uint64_t host_wall_ns = 0);
  // A VMM's save/restore round trip on `vcpu` (live migration, a snapshot): KVM_GET_MSRS of
  // KvmSaveRestoreList(controller) (harness/core/kvm_save_list.h, the kernel's order), then
  // KVM_SET_MSRS of every value read back, each entry recorded as a host event. An entry whose
  // read fails is not written back. Errors: a VMM failure of a handler.
  absl::Status SaveRestore(Vcpu& vcpu, GuestMemory& memory, uint64_t host_tsc = 0,
                           uint64_t host_wall_ns = 0);

  // Flushes recorded events to the OS.
  [[nodiscard]] absl::Status Flush();
  // Writes the trailer with the final-state digest of the replay model (see above), using the
  // MSR state of `vcpus` (the VMM's vCPUs, as passed to Handle), and closes the file.
  [[nodiscard]] absl::Status Close(absl::Span<const Vcpu> vcpus);
  // Writes a trailer without a final-state digest and closes the file.
  [[nodiscard]] absl::Status CloseWithoutDigest();

  // The first recording error, or OK.
  const absl::Status& status() const { return status_; }
  uint64_t events_recorded() const { return events_; }
  const TraceHeader& header() const { return header_; }

  // The digest Close(vcpus) writes. Exposed for tests and for VMMs that check it themselves.
  uint64_t ModelDigest(absl::Span<const Vcpu> vcpus) const;

 private:
  Recorder(Controller& controller, TraceHeader header, const Snapshot& snapshot,
           RecorderOptions options, std::unique_ptr<TraceWriter> writer);
  int ModelIndex(uint32_t vcpu_id) const;
  // Fills the outcome part of event_ and appends it (shared by Handle and HostAccess).
  void Finish(const absl::StatusOr<Outcome>& out, Vcpu& vcpu);

  Controller& controller_;
  TraceHeader header_;
  RecorderOptions options_;
  std::unique_ptr<TraceWriter> writer_;
  absl::Status status_;
  bool closed_ = false;
  uint64_t events_ = 0;
  uint64_t next_seq_ = 1;
  ExitEvent event_;  // Reused for every exit.
  // The replay model: per vCPU (snapshot order) its registers; shadow guest memory.
  std::vector<Vcpu> model_;
  SparseMemory shadow_;
  std::vector<uint32_t> save_list_;  // KvmSaveRestoreList, computed on first use.
  std::vector<uint64_t> saved_;      // SaveRestore's values (reused).
  std::vector<uint8_t> saved_ok_;
};

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_RECORDER_H_
