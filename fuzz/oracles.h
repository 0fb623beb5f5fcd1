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
// Sanitizer reports (ASan/UBSan) are the eighth oracle; the build provides it.
//
// The engine under test is an ExitEngine, not the Controller itself, so that test-only builds
// can check deliberately broken engines (fuzz/planted_bugs.h) without touching production code.
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
#include "harness/controller.h"
#include "harness/replay.h"
#include "harness/trace_types.h"

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
  kCount,
};
const char* OracleName(Oracle o);

// The engine under test: handles one MSR exit with the contract of Controller::Handle. It acts
// on the machine it was created with (see EngineInstance).
class ExitEngine {
 public:
  virtual ~ExitEngine() = default;
  virtual absl::StatusOr<Outcome> Handle(const Exit& exit, Vcpu& vcpu, GuestMemory& memory) = 0;
};

// The production engine: Controller::Handle. `*controller` must outlive the engine.
class ControllerEngine : public ExitEngine {
 public:
  explicit ControllerEngine(Controller* controller) : controller_(controller) {}
  absl::StatusOr<Outcome> Handle(const Exit& exit, Vcpu& vcpu, GuestMemory& memory) override {
    return controller_->Handle(exit, vcpu, memory);
  }

 private:
  Controller* controller_;
};

// A machine (controller, vCPUs, memory: harness/replay.h) and the engine that drives it.
struct EngineInstance {
  std::unique_ptr<Machine> machine;
  std::unique_ptr<ExitEngine> engine;  // Refers to *machine.
};

// Builds a fresh instance for a trace header. Must be deterministic: equal headers give equal
// machines.
using EngineFactory = std::function<absl::StatusOr<EngineInstance>(const TraceHeader&)>;

// BuildMachine(header) driven by ControllerEngine.
EngineFactory ReferenceEngineFactory();

// MSR indices whose semantics is plain storage: a retired write of v makes the next read return
// v. Derived from table rows (no checks beyond reserved bits and value-type checks, no read-only
// bits, not volatile, per-vCPU state).
std::vector<MsrTarget> PlainStorageTargets(const std::vector<MsrRow>& rows);

struct OracleOptions {
  bool upper_half_independence = true;
  bool determinism = true;
  bool snapshot_resume = true;
  bool read_after_write = true;
  std::vector<MsrTarget> plain_storage;  // For read-after-write.
  size_t max_events = 256;               // Events beyond are not run.
};

struct OracleFailure {
  Oracle oracle = Oracle::kCount;
  size_t event = 0;  // Position in the trace's events (events.size() = at the end).
  std::string detail;
};

class OracleRunner {
 public:
  OracleRunner(EngineFactory factory, OracleOptions options);

  // Runs every enabled oracle on `trace`. Returns the first failure, nullopt when all hold, or
  // an error when the trace cannot be run at all (unknown handler set, a snapshot that does not
  // fit, an event naming a missing vCPU): such inputs are not findings.
  [[nodiscard]] absl::StatusOr<absl::optional<OracleFailure>> Check(const TraceModel& trace);

 private:
  struct EventResult;
  struct RunResult;
  enum class Junk : uint8_t { kAsRecorded, kFlipped };
  absl::Status Run(const TraceModel& trace, size_t begin, const Snapshot* start, Junk junk,
                   bool check_events, RunResult* out, Snapshot* midpoint, size_t mid);
  bool IsPlainStorage(uint32_t index) const;

  // State before the current exit, for fault-atomicity (buffers reused across events).
  struct Probe {
    std::vector<uint64_t> slots;
    std::vector<uint64_t> vm_slots;
    std::vector<std::string> handler_states;
  };

  EngineFactory factory_;
  OracleOptions options_;
  absl::optional<OracleFailure> failure_;
  Probe probe_;
  std::string scratch_;
};

// The report of a failure: oracle, event (index, access, registers), detail, and the command
// that reproduces it ("<reproducer> <input>" and `<cli> replay <input>`; `cli` is the msrtrace
// binary that knows the trace's handler set: a team's `<name>_msrtrace` for its own sets).
std::string FormatFailure(const OracleFailure& failure, const TraceModel& trace,
                          absl::string_view reproducer, absl::string_view cli = "msrtrace");

}  // namespace fuzz
}  // namespace msrtrace

#endif  // MSRTRACE_FUZZ_ORACLES_H_
