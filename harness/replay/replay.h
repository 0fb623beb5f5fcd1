// The replay driver: a trace reader loop around the exit-checking engine.
//
// Replay builds the machine the trace header names (harness/replay/machine.h), restores the trace's
// snapshot into it (a compact snapshot omits what is at reset) and feeds every event, in one
// streaming pass, to an ExitChecker (harness/replay/exit_check.h), which applies the event's
// inputs, runs the exit, checks the architectural rules and compares with the recording; each
// failed check or comparison is a Divergence with a distinct kind. The driver adds the per-MSR
// counts, the final-state digest check against the trailer, --repeat (determinism) and
// --resume-after (a snapshot restored into a fresh machine must continue identically).
//
// Volatile values (event.volatile_value: TSC, kvm-clock...) are compared by VolatilePolicy:
// kAuto (default): exact when the event knows its environment (kFieldEnv: msrtrace record
// stores host TSC and wall clock per exit, so replays are bit-exact), kind-only when it does not
// (imported production traces); kExact always bit for bit; kKindOnly only the outcome kind, RIP
// and pending exception (no RAX/RDX or guest-memory comparison).
//
// Capture gaps (ExitEvent::lost_before): from a gap on, that vCPU's events are compared by
// outcome kind only; ReplayResult::gaps counts them.
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
#include "harness/core/controller.h"
#include "harness/core/guest_memory.h"
#include "harness/core/snapshot.h"
#include "harness/core/vcpu.h"
#include "harness/replay/exit_check.h"
#include "harness/replay/machine.h"
#include "harness/trace/trace_file.h"
#include "harness/trace/trace_types.h"

namespace msrtrace {

// --- Replay -------------------------------------------------------------------------------

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
  // ReplayFile: read, decompress and decode the trace on a second thread while this one runs
  // the exits (harness/trace/read_ahead.h); the result is the same either way.
  bool read_ahead = true;
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
  uint64_t gaps = 0;  // Events that follow a capture gap (ExitEvent::lost_before != 0).
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
