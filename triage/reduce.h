// Trace reduction (`msrtrace reduce`): the smallest trace that still shows a finding.
//
// A finding is one of
//   - a replay divergence (harness/replay/replay.h): a DivergenceKind, optionally at an MSR index.
//   The
//     target is the first divergence of the original trace's replay that matches; a candidate
//     shows it when its replay reports a divergence of the same kind at the same event (same
//     sequence number) for the same MSR and access, and, unless `match_values` is false, with
//     the same expected and actual text. So a wrong value read at event 4,000,000 keeps the
//     write at event 12 that produced the actual value.
//   - a failing oracle (fuzz/oracles.h), checked in process with the reference engine;
//   - a crash of a fuzz target binary: the binary runs as a subprocess on each candidate (a
//     binary trace in a temp file) and must report the same signature (the first
//     "FAILED: <oracle>", sanitizer "ERROR: AddressSanitizer: <kind>" or "runtime error: ..."
//     line of its stderr, with numbers and addresses masked), unless a signature is given.
//
// The search is delta debugging (Zeller and Hildebrandt, "Simplifying and Isolating
// Failure-Inducing Input", TSE 2002: ddmin) in three phases:
//   1. events (for a divergence: first everything after the target event is cut, then ddmin
//      over the events before it, the target event always kept);
//   2. snapshot parts: per-vCPU and VM-wide slots and handler states that differ from the
//      machine's reset state (removing one = resetting it), and guest-memory pages (removing one
//      = the page reads as zeros); then the vCPU count, down to the highest vCPU the events use;
//   3. values, one event at a time: junk in the upper halves of RCX/RAX/RDX cleared, the written
//      value set to 0, else its set bits cleared one by one from the top.
// For a divergence, the events other than the target lose their recorded outcomes before the
// search (fuzz::ClearOutcome): they are the inputs that lead to the divergence, and their stale
// recordings would only add divergences of their own. The trailer's final-state digest is not
// kept (0 = not recorded).
//
// Determinism: the result depends only on the input, the target and (through --max-seconds) on
// where a bounded run stops; no randomness. Every accepted candidate shows the finding, so a
// run stopped by the time bound still returns a valid (if larger) result.
//
// Thread-safety: none needed; Reduce uses no global state other than the crash predicate's
// subprocesses.
#ifndef MSRTRACE_TRIAGE_REDUCE_H_
#define MSRTRACE_TRIAGE_REDUCE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "fuzz/oracles.h"
#include "fuzz/trace_mutator.h"
#include "harness/replay/replay.h"

namespace msrtrace::triage {

using fuzz::TraceModel;

enum class FindingKind : uint8_t {
  kDivergence = 0,
  kOracle = 1,
  kCrash = 2,
};

struct ReduceTarget {
  FindingKind kind = FindingKind::kDivergence;

  // kDivergence. Without `divergence`, the first divergence of the original replay is the
  // target. kFinalState, kNondeterministic and kResume cannot be targets (they belong to the
  // whole trace, not to an event).
  absl::optional<DivergenceKind> divergence;
  absl::optional<uint32_t> msr_index;
  bool match_values = true;  // Also match the divergence's expected and actual text.
  VolatilePolicy volatile_policy = VolatilePolicy::kAuto;

  // kOracle. Without `oracle`, the first failing oracle of the original trace.
  absl::optional<fuzz::Oracle> oracle;

  // kCrash: the fuzz target binary (run as `fuzz_target [args] FILE`), extra arguments, and the
  // signature to match (empty = the original's, see above).
  std::string fuzz_target;
  std::vector<std::string> fuzz_args;
  std::string signature;
  double crash_timeout_seconds = 30;  // Per run; a run that takes longer does not reproduce.
};

struct ReduceProgress {
  uint64_t events = 0;  // Events in the current smallest trace.
  uint64_t tests = 0;   // Candidates tested so far.
  double seconds = 0;
  const char* phase = "";
};

struct ReduceOptions {
  double max_seconds = 300;  // Stop (keeping the smallest so far) after this long; 0 = no bound.
  bool reduce_snapshot = true;
  bool reduce_values = true;
  // Called after every accepted candidate and about every 0.25 s; may be empty.
  std::function<void(const ReduceProgress&)> progress;
};

struct ReduceResult {
  TraceModel trace;     // The reduced trace.
  std::string finding;  // The finding, one line ("value at seq 91234 IA32_PAT (0x277) ...").
  uint64_t events_before = 0;
  uint64_t events_after = 0;
  uint64_t snapshot_parts_before = 0;  // Slots/handler states differing from reset, and pages.
  uint64_t snapshot_parts_after = 0;
  uint64_t tests = 0;
  double seconds = 0;
  bool timed_out = false;  // Stopped by max_seconds.
};

// Reduces `trace`. Errors: kInvalidArgument when the original trace does not show the finding
// (naming what it shows instead) or a target cannot be reduced for; kNotFound for a fuzz target
// that cannot be run; the replay's errors for a trace that cannot be replayed at all.
[[nodiscard]] absl::StatusOr<ReduceResult> Reduce(const TraceModel& trace,
                                                  const ReduceTarget& target,
                                                  const ReduceOptions& options = {});

// Reads a whole trace (binary, optionally gzip) into memory.
[[nodiscard]] absl::StatusOr<TraceModel> LoadTrace(const std::string& path);
// Writes `trace` to `path` atomically: a temp file in the same directory, then rename(2). Gzip
// when `path` ends in ".gz".
[[nodiscard]] absl::Status WriteTraceAtomically(const TraceModel& trace, const std::string& path);

// The masked signature of a fuzz target's report (see above); empty when it has none.
std::string CrashSignature(absl::string_view report);

}  // namespace msrtrace::triage

#endif  // MSRTRACE_TRIAGE_REDUCE_H_
