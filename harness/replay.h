// The replay driver and the machine builder.
//
// BuildMachine() turns a trace header into a machine: a Controller with the named handler set
// installed for the named CPU profile and the recorded unknown-MSR policy, vCPUs at reset, and
// sparse guest memory. Teams register their own handler sets by name (handlers/handler_set.h).
//
// Replay restores the trace's snapshot into such a machine and feeds it every event in one
// streaming pass. Per event it
//   1. sets the event's inputs on its vCPU: RCX, RAX/RDX (when known), RIP (when known),
//      RFLAGS, CR0, CR4, EFER, CS.L and interruptibility (when known); other GPRs keep the
//      vCPU's values; the pending exception is cleared (the previous exit's exception was
//      delivered at VM entry);
//   2. calls Controller::Handle with the recorded exit (vendor, reason, length, host TSC/clock);
//   3. compares what the event's `known` bits say was recorded: outcome kind, RAX/RDX out, RIP
//      out, pending exception, guest-memory writes (bytes, or their digest). A VMM error matches
//      a recorded kVmmError;
//   4. checks the architectural rules itself, whether or not the recording knows the outputs:
//      retired/ignored -> RIP == old RIP + length (wrapping at 32 bits outside 64-bit mode),
//      STI/MOV-SS blocking cleared, #DB pending iff RFLAGS.TF; RDMSR -> upper halves of RAX/RDX
//      zero and no other GPR changed; WRMSR -> no GPR changed; #GP -> #GP(0) pending, RIP, GPRs,
//      MSR state (per-vCPU and VM-wide slots, EFER) and guest memory unchanged.
// Each failed comparison or check is a Divergence with a distinct kind.
//
// Volatile values (event.volatile_value: TSC, kvm-clock...) are compared by VolatilePolicy:
// kAuto (default): exact when the event knows its environment (kFieldEnv: msrtrace record
// stores host TSC and wall clock per exit, so replays are bit-exact), kind-only when it does not
// (imported production traces); kExact always bit for bit; kKindOnly only the outcome kind, RIP
// and pending exception (no RAX/RDX or guest-memory comparison).
//
// Memory: one event at a time from a reused ExitEvent; no per-event heap allocation in the
// steady state; divergence details are kept for the first `max_divergences` only.
#ifndef MSRTRACE_HARNESS_REPLAY_H_
#define MSRTRACE_HARNESS_REPLAY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "handlers/cpu_profile.h"
#include "handlers/handler_set.h"
#include "harness/controller.h"
#include "harness/guest_memory.h"
#include "harness/snapshot.h"
#include "harness/trace_file.h"
#include "harness/trace_types.h"
#include "harness/vcpu.h"

namespace msrtrace {

// --- The machine builder ------------------------------------------------------------------

// A VM for replay or recording: controller, vCPUs and guest memory.
struct Machine {
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
  // Restores `snapshot` (vCPUs, MSR state, handler state, memory).
  [[nodiscard]] absl::Status Restore(const Snapshot& snapshot);
  uint64_t Digest() const { return StateDigest(*controller, vcpus, memory); }
};

// Builds the machine `header` describes, with header.vcpu_count vCPUs (ids 0..n-1) at reset.
// Errors (kInvalidArgument): unknown CPU profile or handler set (the message lists the known
// ones), a handler set that fails to install.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Machine>> BuildMachine(const TraceHeader& header);

// --- Replay -------------------------------------------------------------------------------

enum class VolatilePolicy : uint8_t {
  kAuto = 0,      // kExact for events with kFieldEnv, kKindOnly for the others.
  kExact = 1,     // Compare volatile values bit for bit.
  kKindOnly = 2,  // Compare only the outcome kind, RIP and pending exception.
};
const char* VolatilePolicyName(VolatilePolicy p);
absl::optional<VolatilePolicy> ParseVolatilePolicy(absl::string_view name);

enum class DivergenceKind : uint8_t {
  // Against the recording.
  kOutcome = 0,       // Outcome kind differs (retired / gp / ignored / vmm-error).
  kValue,             // RAX/RDX after the exit differ.
  kRip,               // RIP after the exit differs.
  kPendingException,  // Pending exception after the exit differs.
  kMemoryWrites,      // Guest-memory writes differ (bytes or digest).
  kFinalState,        // Final-state digest differs from the trailer's.
  kNondeterministic,  // --repeat: a replay's final-state digest differs from the first's.
  kResume,            // Resuming from a mid-trace snapshot gave a different final state.
  // Architectural checks by the driver (independent of the recording).
  kArchRipAdvance,            // Retired/ignored: RIP != old RIP + instruction length (wrapped).
  kArchUpperHalves,           // RDMSR: RAX[63:32] or RDX[63:32] not zero.
  kArchGprClobbered,          // A GPR the instruction does not write changed.
  kArchGpRipMoved,            // #GP: RIP changed.
  kArchGpPending,             // #GP: the pending exception is not #GP(0).
  kArchGpNotAtomic,           // #GP: MSR state, EFER or guest memory changed.
  kArchSingleStep,            // Retired: #DB pending without RFLAGS.TF, or missing with it.
  kArchInterruptShadow,       // Retired: STI/MOV-SS blocking not cleared.
  kArchVmmErrorChangedState,  // VMM error: registers changed.
  kCount,
};
const char* DivergenceKindName(DivergenceKind k);

struct Divergence {
  DivergenceKind kind = DivergenceKind::kOutcome;
  uint64_t seq = 0;
  uint32_t vcpu_id = 0;
  uint32_t index = 0;
  Access access = Access::kRead;
  std::string msr_name;
  std::string expected;
  std::string actual;
  // Registers whose value after the exit differs from the recording's (or from the
  // architectural expectation): "rax: expected 0x1 actual 0x2; rip: ...". Empty if none.
  std::string reg_diff;
};

struct MsrCounts {
  uint32_t index = 0;
  std::string name;
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t faults = 0;  // #GP injected.
  uint64_t ignored = 0;
  uint64_t vmm_errors = 0;
};

struct ReplayOptions {
  VolatilePolicy volatile_policy = VolatilePolicy::kAuto;
  // Divergences kept with details (all are counted).
  uint32_t max_divergences = 10;
  // Replays from the snapshot this many times and compares final-state digests (>= 1).
  uint32_t repeat = 1;
  // When > 0: after this many events, snapshot the machine, build a fresh one from the header,
  // restore the snapshot into it and continue there. The result must equal an uninterrupted
  // replay (checked: the final digest is compared with an uninterrupted run's).
  uint64_t resume_after = 0;
  // Called about every 2^16 events with (events so far, byte offset); may be empty.
  std::function<void(uint64_t events, uint64_t offset)> progress;
  // ReplayFile: read past corrupt records (TraceReaderOptions::skip_corrupt); each one is listed
  // in ReplayResult::skipped and makes the result incomplete.
  bool skip_corrupt = false;
};

struct ReplayResult {
  std::string name;  // The trace's path.
  TraceHeader header;
  uint64_t events = 0;
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t faults = 0;
  uint64_t ignored = 0;
  uint64_t vmm_errors = 0;
  uint64_t divergence_count = 0;
  std::vector<Divergence> divergences;  // The first max_divergences.
  std::vector<MsrCounts> per_msr;       // Sorted by index.
  TraceEnd end = TraceEnd::kComplete;
  uint64_t final_digest = 0;           // StateDigest after the last event.
  uint64_t recorded_final_digest = 0;  // The trailer's; 0 = not recorded.
  double seconds = 0;                  // Wall time of the (first) replay pass.
  double events_per_second = 0;
  std::vector<CorruptRegion> skipped;  // Corrupt records read past (skip_corrupt).

  bool clean() const { return divergence_count == 0; }
  bool incomplete() const { return end != TraceEnd::kComplete || !skipped.empty(); }
};

// Replays the trace at `path`. Errors (unusable input): unreadable or corrupt trace, unknown
// profile or handler set, a snapshot that does not fit the controller, an event naming a vCPU
// the snapshot lacks. A torn tail or missing trailer is not an error (see ReplayResult::end).
[[nodiscard]] absl::StatusOr<ReplayResult> ReplayFile(const std::string& path,
                                                      const ReplayOptions& options = {});
// One pass over an open reader (repeat and resume_after apply as documented above, except that
// repeat needs a path and is ignored here).
[[nodiscard]] absl::StatusOr<ReplayResult> ReplayReader(TraceReader& reader,
                                                        const ReplayOptions& options = {});

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_REPLAY_H_
