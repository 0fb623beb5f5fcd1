// Differential checking: every exit of a trace runs on two machines, the handler set the trace
// names (a team's set) and a reference set (KVM's semantics, handlers/msr_table.h), and for every
// index both implement the two outcomes are compared. One engine for both users: the
// differential fuzzer (msrtrace_add_fuzzer ... DIFFERENTIAL reference, fuzz/
// exit_sequence_fuzzer.cc) and `msrtrace replay --against=reference` (tools/replay_against.cc).
//
// The two machines: the same CPU profile, unknown-MSR policy and vCPU count (the trace header
// with the handler set replaced), built once per process (MachineCache) and reset per trace. The
// trace's snapshot goes to both: registers and memory as they are, slots by name where the
// reference reserves them, and handler states for the leading handlers of the same type in both
// sets (the team's extra handlers and their slots stay the team's own).
//
// Per event, both machines run it through the one exit-checking engine
// (harness/replay/exit_check.h, ExitChecker with neither the architectural checks nor the recording
// comparison: here the reference is the expectation). When both sets implement ECX's index, the
// fields compared are
//   outcome    the outcome kind (retired / #GP / ignored / VMM error);
//   value      RDMSR retired on both: the value read;
//   registers  the vCPU's registers after the exit (RIP, GPRs, EFER, pending exception...), when
//              outcome and value agree;
//   memory     the guest-memory writes of the exit (kvm-clock structures);
//   state      after a WRMSR both retired: what later reads see, probed on copies of the vCPUs
//              (side-effect free): the index on every vCPU (a write that leaks into another
//              vCPU), and the reference rows of the same family on the writing vCPU (a related
//              MSR the write should have updated).
// At most one finding per field and event. A finding names the event (position and seq), the
// vCPU, the index, both outcomes, and the note of the reference row (the KVM source it cites).
//
// Intended deviations are declared in an allowlist (Allowlist): per index (or range) and field,
// with a reason. A difference an entry covers is counted on that entry instead of reported;
// every entry is listed in the summary with its count, so an allowlist cannot hide a bug
// silently (an entry that never matches is shown as such).
//
// Allowlist format: text, one entry per line, '#' starts a comment:
//   <index>[-<last>] <field> <reason...>
// index and last in hex (0x...) or decimal; field one of outcome, value, registers, memory,
// state, any; the reason is the rest of the line and may not be empty. Errors name the file and
// line. A state difference seen by probing index J after a write to I matches an entry of I for
// `state` or of J for `value`.
//
// Hot path: Step() allocates nothing per event once buffers have grown, except for findings
// (formatted only while fewer than DiffOptions::max_details are kept) and the per-index counts
// of indices that disagree (a hash map, touched only on a difference).
//
// Thread-safety: none; one runner per thread.
#ifndef MSRTRACE_TRIAGE_DIFFERENTIAL_H_
#define MSRTRACE_TRIAGE_DIFFERENTIAL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "absl/types/span.h"
#include "handlers/msr_table.h"
#include "harness/core/snapshot.h"
#include "harness/replay/exit_check.h"
#include "harness/replay/machine.h"
#include "harness/trace/trace_types.h"

namespace msrtrace {

enum class DiffField : uint8_t {
  kOutcome = 0,
  kValue,
  kRegisters,
  kMemory,
  kState,
  kCount,
};
inline constexpr int kNumDiffFields = static_cast<int>(DiffField::kCount);
const char* DiffFieldName(DiffField f);
absl::optional<DiffField> ParseDiffField(absl::string_view name);

struct AllowEntry {
  uint32_t first = 0;
  uint32_t last = 0;       // Inclusive.
  bool any_field = false;  // "any": every field.
  DiffField field = DiffField::kOutcome;
  std::string reason;
  int line = 0;          // 1-based line in the allowlist file.
  uint64_t matched = 0;  // Differences this entry covered.
};

class Allowlist {
 public:
  // Files larger than this are refused (an allowlist is a short reviewed list).
  static constexpr size_t kMaxBytes = 1 << 20;

  // Parses `text`; `name` is used in errors ("<name>:<line>: ...").
  static absl::StatusOr<Allowlist> Parse(absl::string_view text, absl::string_view name);
  // Reads and parses the file at `path`. Errors name the file (and line).
  static absl::StatusOr<Allowlist> Load(const std::string& path);

  // The first entry covering (index, field), its count incremented; nullptr if none.
  AllowEntry* Match(uint32_t index, DiffField field);
  const std::vector<AllowEntry>& entries() const { return entries_; }
  const std::string& name() const { return name_; }
  void ClearCounts();

 private:
  std::string name_;
  std::vector<AllowEntry> entries_;
};

// One disagreement between the team's set and the reference.
struct DiffFinding {
  size_t event = 0;  // Position in the trace's events (0-based).
  uint64_t seq = 0;
  uint32_t vcpu_id = 0;
  uint32_t index = 0;
  Access access = Access::kRead;
  DiffField field = DiffField::kOutcome;
  std::string msr_name;
  std::string team;       // The team's outcome ("retired, read 0x6"; "#GP(0)"...).
  std::string reference;  // The reference's.
  std::string detail;     // What was compared (registers that differ, the probe that saw it).
  std::string citation;   // The reference row's note (its KVM source); empty without a row.
};

// Disagreements of one index, per field, and the differences the allowlist covered.
struct DiffIndexCounts {
  uint32_t index = 0;
  std::string msr_name;
  uint64_t fields[kNumDiffFields] = {};
  uint64_t allowed = 0;
  uint64_t total() const;
};

struct DiffResult {
  std::string team_set;
  std::string reference_set;
  uint64_t events = 0;
  uint64_t compared = 0;                   // Events whose index both sets implement.
  uint64_t findings = 0;                   // Disagreements not covered by the allowlist.
  uint64_t allowed = 0;                    // Differences the allowlist covered.
  std::vector<DiffFinding> details;        // The first DiffOptions::max_details findings.
  std::vector<DiffIndexCounts> per_index;  // Sorted by index (SortedPerIndex()).
};

struct DiffOptions {
  std::string reference_set = "reference";
  size_t max_details = 10;         // Findings kept with details (all are counted).
  size_t max_related_probes = 16;  // Same-family rows probed after a write.
};

class DifferentialRunner {
 public:
  // `allowlist` may be null (nothing allowed); it must outlive the runner and its counts
  // accumulate over every trace run.
  explicit DifferentialRunner(DiffOptions options, Allowlist* allowlist = nullptr);
  ~DifferentialRunner();

  // Starts a trace: gets both machines (built on first use, then reset) and restores the
  // snapshot into both. Clears the result. Errors (unusable input): unknown handler set or
  // profile, a reference set equal to the trace's, a snapshot that does not fit the team's set.
  [[nodiscard]] absl::Status Begin(const TraceHeader& header, const Snapshot& snapshot);
  // Runs the next event on both machines and compares. Returns the number of new findings
  // (not counting allowed differences). Errors: the event names a vCPU the machines lack.
  [[nodiscard]] absl::StatusOr<size_t> Step(const ExitEvent& event);
  // The result so far; per_index is sorted by Finish().
  const DiffResult& result() const { return result_; }
  // Sorts per_index (call once after the last Step).
  void Finish();

 private:
  struct RowInfo;
  void Compare(const ExitEvent& ev, size_t* added);
  void ProbeState(const ExitEvent& ev, size_t* added);
  // Records a difference in `field` at (event, index); `probe_index` is the probed index for
  // state differences. Returns true when it is a finding (not allowed); fills `*out` when
  // details are kept.
  DiffFinding* Report(const ExitEvent& ev, DiffField field, uint32_t probe_index, bool* finding);
  const MsrRow* RowOf(uint32_t index) const;
  // A side-effect-free read of `index` on a copy of `vcpu` through `machine`'s controller.
  absl::StatusOr<Outcome> Probe(Machine& machine, const Exit& like, const Vcpu& vcpu,
                                uint32_t index, Vcpu* scratch);
  void BuildReferenceSnapshot(const Snapshot& team);
  void PrepareRows();

  DiffOptions options_;
  Allowlist* allowlist_;
  MachineCache machines_;
  Machine* team_ = nullptr;
  Machine* ref_ = nullptr;
  std::unique_ptr<ExitChecker> team_checker_, ref_checker_;
  std::unique_ptr<ExitEngine> team_engine_, ref_engine_;
  std::unique_ptr<DivergenceSink> null_sink_;
  TraceHeader ref_header_;
  Snapshot ref_snapshot_;
  // The reference table for ref_'s profile, sorted by index, and per row the same-family rows.
  const CpuProfile* rows_profile_ = nullptr;
  std::vector<MsrRow> rows_;
  std::vector<std::vector<uint32_t>> related_;
  size_t position_ = 0;
  Vcpu scratch_team_, scratch_ref_;
  DiffResult result_;
  absl::flat_hash_map<uint32_t, size_t> per_index_pos_;
};

// Text of one finding:
//   event 17 (seq 18) vCPU 0 wrmsr IA32_MTRR_DEF_TYPE (0x2ff): outcome: acme-vmm retired,
//   reference #GP(0)
// plus indented "detail:" and "kvm:" lines when present.
std::string FormatDiffFinding(const DiffFinding& f, absl::string_view team_set,
                              absl::string_view reference_set);
// The allowlist summary: one line per entry with its match count.
std::string FormatAllowlistSummary(const Allowlist& allowlist);

}  // namespace msrtrace

#endif  // MSRTRACE_TRIAGE_DIFFERENTIAL_H_
