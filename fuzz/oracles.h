// The fuzzing oracles: properties every MSR exit engine must have, checked on a whole trace.
//
// Each oracle is named (OracleName) and fails with its own OracleFailure:
//   rip-progress          retired/ignored: RIP == old RIP + instruction length (wrapping at 32
//                         bits outside 64-bit mode), no #GP pending; #GP: RIP unchanged and
//                         #GP(0) pending. Never neither (an exit that reports success but leaves
//                         RIP, or reports a fault without queueing it). Retired exits also
//                         clear STI/MOV-SS blocking and queue #DB iff RFLAGS.TF.
//   register-hygiene      RDMSR: RAX = value[31:0], RDX = value[63:32] (upper halves zero), no
//                         other GPR changed; WRMSR and #GP: no GPR changed; CR0/CR4/RFLAGS/CS.L
//                         never change; a VMM error leaves every register unchanged.
//   upper-half-independence  the same trace with different junk in RCX[63:32], RAX[63:32] and
//                         RDX[63:32] gives the same outcomes and the same final state (upper
//                         halves of those three registers masked).
//   determinism           two fresh runs from the same snapshot give identical outcomes and
//                         final-state digests.
//   snapshot-resume       a snapshot taken half-way and restored into a fresh engine continues
//                         exactly as the uninterrupted run.
//   fault-atomicity       a #GP leaves the state unchanged: the vCPU's and the VM-wide slots,
//                         every handler's internal state, guest memory (no write logged) and all
//                         registers but the pending exception.
//   read-after-write      a retired WRMSR of v to a plain-storage MSR is followed by an RDMSR
//                         that returns v.
//   recorded-outcome      on the events the mutator left unchanged (those that still carry a
//                         recorded outcome: the mutator clears it from the first changed event
//                         on), the outcome equals the recording, by replay's rule and volatile
//                         policy (the engine's comparison, ExitCheckOptions::compare_recording).
//   table-conformance     every exit at an index with a declared row (Controller::
//                         declared_rows(), harness/core/declared_rows.h) obeys the row: reserved
//                         bits, canonical values, lock bit, read-only / write-only access,
//                         host-only writes, a change of a read_only_mask bit -> no retire; a
//                         retired write leaves the read_only_mask and ignored_mask bits (every bit
//                         of a writes-ignored row) as the vCPU read them just before; the BSP's
//                         first read after reset returns the row's reset value.
//   index-routing         the index the controller handed to the handler (Controller::
//                         set_dispatch_trace) is ECX (RCX[31:0]) and is dispatched once; the
//                         outcome names ECX; an index no handler is registered at gives an
//                         unknown-MSR outcome.
//   vcpu-isolation        a retired WRMSR to a per-vCPU row on one vCPU leaves what every other
//                         vCPU reads at that index and at the row's related MSRs
//                         (DeclaredRow::related) unchanged.
// Sanitizer reports (ASan/UBSan) are one more oracle; the build provides it.
//
// Structure: rip-progress, register-hygiene and fault-atomicity are the exit-checking engine's
// architectural checks (harness/replay/exit_check.h), run on the primary run; each owns a set of
// DivergenceKinds, and recorded-outcome owns the engine's comparison with the recording (judged
// after the architectural checks of the same event). index-routing, table-conformance,
// vcpu-isolation and read-after-write are extra per-event rules on the primary run, in that
// order; they cost nothing on events they do not apply to (a binary search in the declared
// rows; vcpu-isolation probes the other vCPUs only around writes to per-vCPU rows, the
// table-conformance read-back only around writes to rows with kept bits; index-routing compares
// the controller's dispatch trace, two integers). Probes run on one reused scratch vCPU, so the
// per-event work allocates nothing once the buffers have grown. Determinism,
// upper-half independence and snapshot resume are second runs compared event by event (outcome
// and registers) and by state digest with the primary run. All of them are rows of one table
// (Oracles()); adding an oracle is one row plus its test.
//
// The second runs are made as one combined check pass over the trace: with junk in
// RCX/RAX/RDX[63:32] (upper-half independence), it first restores the snapshot the primary run
// took before event mid = n/2 and runs events [mid, n) (snapshot resume; the machine then still
// holds the primary run's end state, as a separate resume run would find it), then restores the
// trace's snapshot and runs events [0, mid) (determinism). Each half is compared event by event
// (upper halves masked) and by state hash with the primary run: at the end of the trace, and
// before event mid. Only when the pass disagrees are the single second runs made, in the
// table's order (determinism, upper-half independence, snapshot resume), and the first that
// disagrees is the finding, with its own report; a disagreement none of them reproduces is a
// determinism finding (the result depends on more than the trace and its snapshot). So an
// input that passes costs two runs, not three and a half. When the primary run stops before mid
// (or snapshot-resume is off) the pass is one junk run of the whole trace; disabled oracles
// leave their part out.
//
// Machines are built once per process (one per handler set + profile, MachineCache) and reset
// between runs: the four runs of an input restore the same machine, never rebuild it.
//
// The engine under test is an ExitEngine (harness/replay/exit_check.h), not the Controller itself,
// so that test-only builds can check deliberately broken engines (fuzz/planted_bugs.h) without
// touching production code.
//
// Thread-safety: an OracleRunner is not thread-safe; use one per thread.
#ifndef MSRTRACE_FUZZ_ORACLES_H_
#define MSRTRACE_FUZZ_ORACLES_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "fuzz/trace_mutator.h"
#include "handlers/msr_table.h"
#include "harness/core/controller.h"
#include "harness/core/declared_rows.h"
#include "harness/replay/exit_check.h"
#include "harness/replay/machine.h"
#include "harness/trace/trace_types.h"

namespace msrtrace {
namespace fuzz {

enum class Oracle : uint8_t {
  kRipProgress = 0,
  kRegisterHygiene,
  kUpperHalfIndependence,
  kDeterminism,
  kSnapshotResume,
  kFaultAtomicity,
  kReadAfterWrite,
  kRecordedOutcome,
  kTableConformance,
  kIndexRouting,
  kVcpuIsolation,
  kCount,
};
const char* OracleName(Oracle o);

// Makes the engine under test for `machine` (called once per machine: machines are reused).
// The engine acts on that machine.
using EngineFactory = std::function<std::unique_ptr<ExitEngine>(Machine& machine)>;

// ControllerEngine on the machine's controller.
EngineFactory ReferenceEngineFactory();

// How an oracle judges a trace.
enum class OracleMethod : uint8_t {
  kEngineCheck = 0,  // Divergences of the engine's architectural checks (primary run).
  kEventRule,        // An extra rule after each event of the primary run.
  kSecondRun,        // A second run, compared with the primary run.
};
// The second runs.
enum class SecondRun : uint8_t {
  kNone = 0,
  kRepeat,     // The same trace again from the same snapshot.
  kJunk,       // RCX/RAX/RDX[63:32] XORed with junk; compared with those halves masked.
  kResumeMid,  // From a snapshot taken half-way through the primary run.
};

struct OracleDef {
  Oracle oracle;
  OracleMethod method;
  // kEngineCheck: bit k set = this oracle owns DivergenceKind k.
  uint64_t divergence_kinds = 0;
  SecondRun second_run = SecondRun::kNone;
};
// The oracle table, in the order the oracles are judged (primary-run oracles first, then the
// second runs: determinism before upper-half independence, so that a nondeterministic engine is
// reported as such).
const std::vector<OracleDef>& Oracles();
// The oracle owning an engine divergence, or Oracle::kCount for none.
Oracle OracleOwning(DivergenceKind kind);

// MSR indices whose semantics is plain storage: a retired write of v makes the next read return
// v. Derived from table rows (no checks beyond reserved bits and value-type checks, no read-only
// bits, not volatile, per-vCPU state).
std::vector<MsrTarget> PlainStorageTargets(const std::vector<MsrRow>& rows);

struct OracleOptions {
  bool upper_half_independence = true;
  bool determinism = true;
  bool snapshot_resume = true;
  bool read_after_write = true;
  bool recorded_outcome = true;
  bool table_conformance = true;
  bool index_routing = true;
  bool vcpu_isolation = true;
  std::vector<MsrTarget> plain_storage;  // For read-after-write.
  size_t max_events = 256;               // Events beyond are not run.
};

// What a runner did (tests and benchmarks read it).
struct OracleRunStats {
  uint64_t inputs = 0;           // Check() calls that got as far as the primary run.
  uint64_t runs = 0;             // Runs over (part of) a trace, every kind counted.
  uint64_t events = 0;           // Events those runs ran.
  uint64_t combined_passes = 0;  // Combined check passes (one per input that passed the primary).
  uint64_t attributions = 0;     // Combined passes that disagreed: single second runs followed.
  uint64_t unattributed = 0;     // Of those, disagreements no single second run reproduced.
};

struct OracleFailure {
  Oracle oracle = Oracle::kCount;
  size_t event = 0;  // Position in the trace's events (events.size() = at the end).
  std::string detail;
};

class OracleRunner {
 public:
  OracleRunner(EngineFactory factory, OracleOptions options);
  ~OracleRunner();

  // Runs every enabled oracle on `trace`. Returns the first failure, nullopt when all hold, or
  // an error when the trace cannot be run at all (unknown handler set, a snapshot that does not
  // fit, an event naming a missing vCPU): such inputs are not findings.
  [[nodiscard]] absl::StatusOr<absl::optional<OracleFailure>> Check(const TraceModel& trace);

  const OracleRunStats& stats() const { return stats_; }

 private:
  struct EventResult;
  struct RunResult;
  class FirstDivergence;
  struct RunKind {
    bool primary = false;     // The checked run: engine checks and event rules.
    bool junk = false;        // RCX/RAX/RDX[63:32] XORed with junk.
    bool mid_digest = false;  // Primary: also hash the state before event `mid`.
  };
  bool Enabled(const OracleDef& def) const;
  // Restores `start` and runs events [begin, end).
  absl::Status Run(const TraceModel& trace, size_t begin, size_t end, const Snapshot& start,
                   const RunKind& kind, RunResult* out, size_t mid);
  // The combined check pass (file comment); false with failure_ set when it disagrees.
  absl::StatusOr<bool> CombinedPassAgrees(const TraceModel& trace, size_t n, size_t mid);
  bool ReadAfterWrite(const ExitEvent& e, size_t k);
  bool IndexRouting(size_t k);
  bool TableConformance(const ExitEvent& e, size_t k);
  // table-conformance read-back: before a write to a row with kept bits, what the writing vCPU
  // reads (its inputs applied); after, the kept bits against it.
  void ReadBackBefore(const ExitEvent& e);
  bool ReadBackAfter(const ExitEvent& e, const DeclaredRow& row, uint64_t written,
                     std::string* what);
  // vcpu-isolation: before the event, what the other vCPUs read at its index; after, compares.
  void IsolationBefore(const ExitEvent& e);
  bool IsolationAfter(const ExitEvent& e, size_t k);
  bool EventRule(Oracle o, const ExitEvent& e, size_t k);
  const DeclaredRow* RowOf(uint32_t index) const;
  // Reads `index` on a copy of `vcpu` through the engine under test (nullopt: not retired).
  // With `inputs`, the event's inputs are applied to the copy first.
  absl::optional<uint64_t> Probe(const Exit& like, const Vcpu& vcpu, uint32_t index,
                                 const ExitEvent* inputs = nullptr);
  bool Compare(Oracle o, const RunResult& b, size_t offset, size_t end, bool masked,
               uint64_t digest_a, uint64_t digest_b, size_t digest_event);
  bool IsPlainStorage(uint32_t index) const;

  EngineFactory factory_;
  OracleOptions options_;
  absl::optional<OracleFailure> failure_;
  MachineCache machines_;
  std::vector<std::pair<Machine*, std::unique_ptr<ExitEngine>>> engines_;
  Machine* machine_ = nullptr;
  ExitEngine* engine_ = nullptr;
  std::unique_ptr<FirstDivergence> sink_;
  std::unique_ptr<ExitChecker> checker_;
  std::unique_ptr<RunResult> primary_, second_;
  Snapshot midpoint_;
  const Machine* midpoint_machine_ = nullptr;  // Whose layout midpoint_'s slot names are.
  // table-conformance state of the primary run.
  std::vector<DeclaredRow> rows_;  // The machine's declared rows, sorted by first index.
  Machine* rows_machine_ = nullptr;
  bool at_reset_ = false;  // No write retired since a reset-state start.
  std::vector<std::pair<uint32_t, uint32_t>> locked_;  // (vCPU id, index) locked by a write.
  // vcpu-isolation: what the other vCPUs read before the event, at the index and its related.
  struct OtherRead {
    size_t pos;  // In Machine::vcpus.
    uint32_t index;
    absl::optional<uint64_t> value;
  };
  std::vector<OtherRead> others_;
  bool isolation_armed_ = false;
  // table-conformance read-back of the event's own index (nullopt: not armed, or the read #GPs).
  bool readback_armed_ = false;
  absl::optional<uint64_t> readback_before_;
  // index-routing: the controller's dispatch trace, and its count before the event.
  DispatchTrace dispatch_;
  uint64_t dispatches_before_ = 0;
  Vcpu probe_vcpu_;  // Reused by Probe().
  OracleRunStats stats_;
};

// The report of a failure: oracle, event (index, access, registers), detail, and the command
// that reproduces it ("<reproducer> <input>" and `<cli> replay <input>`; `cli` is the msrtrace
// binary that knows the trace's handler set: a team's `<name>_msrtrace` for its own sets).
std::string FormatFailure(const OracleFailure& failure, const TraceModel& trace,
                          absl::string_view reproducer, absl::string_view cli = "msrtrace");

}  // namespace fuzz
}  // namespace msrtrace

#endif  // MSRTRACE_FUZZ_ORACLES_H_
