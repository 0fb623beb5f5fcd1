// The exit-checking engine: the one place that runs a recorded or generated MSR exit on a
// machine and judges the result. Replay (harness/replay/replay.h), the fuzzing oracles
// (fuzz/oracles.h) and the importer's comparison (importers) are loops around it.
//
// ExitChecker::Run(event), per event:
//   1. applies the event's inputs to its vCPU (ApplyEventInputs): RCX; RAX/RDX when known; RIP
//      when known; RFLAGS, CR0, CR4, EFER, CS.L and interruptibility when known; other GPRs keep
//      the vCPU's values; the pending exception is cleared (the previous exit's exception was
//      delivered at VM entry). Optional junk is XORed into RCX/RAX/RDX[63:32] (the
//      upper-half-independence runs);
//   2. runs the exit through the ExitEngine (Controller::Handle, or a wrapper in test builds);
//   3. checks the architectural rules, whether or not the recording knows the outputs:
//      - retired/ignored: RIP == old RIP + instruction length, wrapping at 32 bits unless the
//        vCPU was in 64-bit mode BEFORE the exit (the one mode rule: the instruction executes
//        in the mode it was fetched in; a WRMSR that changes EFER affects the next
//        instruction, ref: SDM Vol1 §3.5, Vol3 §2.2); STI/MOV-SS blocking cleared; #DB pending
//        iff RFLAGS.TF was set, nothing else pending;
//      - RDMSR retired/ignored: RAX = value[31:0], RDX = value[63:32] (upper halves zero);
//      - register hygiene: no GPR the instruction does not write changes (RDMSR writes RAX and
//        RDX, WRMSR none); CR0/CR4/RFLAGS/CS.L never change;
//      - #GP: RIP unchanged; #GP(0) pending; fault atomicity: the exiting vCPU's and the VM-wide
//        slots, EFER, interruptibility, every handler's internal state (SaveState bytes) and
//        guest memory (no write logged) unchanged (how the state is captured: below);
//      - a VMM error: every register unchanged;
//      - an outcome that is neither retired, ignored nor #GP is itself a divergence;
//   4. compares with what the event's `known` bits say was recorded: outcome kind, the route
//      (when recorded: in-kernel, userspace exit and its reason, or the filter's #GP), RAX/RDX
//      out, RIP out, pending exception, guest-memory writes (bytes or digest). A VMM error
//      matches a recorded kVmmError. Volatile values follow VolatilePolicy. From a capture gap
//      on (ExitEvent::lost_before != 0), that vCPU's events are compared by outcome kind only:
//      the lost exits may have changed its state, so values, RIP and memory may legitimately
//      differ; the architectural checks still apply.
// A host-initiated event (ExitEvent::host_initiated, KVM_GET_MSRS/KVM_SET_MSRS) applies no
// register input and runs Controller::HostAccess (host-only rules, never filtered nor sent to
// userspace); it must change no register (EFER excepted, for an EFER write), and is compared
// by kind (retired or host-failed), value read (rdx_out:rax_out) and guest-memory writes; a
// failed host access must also leave the slots and guest memory unchanged.
// Each failed check or comparison is reported to a DivergenceSink with a distinct
// DivergenceKind; its text is formatted only when the sink keeps details.
//
// Fault-atomicity capture. With an engine that is the machine's controller and nothing else
// (ExitEngine::DirectController(), e.g. ControllerEngine) the checker does not copy the state
// before each exit: it sets a StateJournal on the controller for the exit, so every slot a
// handler reaches through ExitContext (the only way handlers reach slots, msr_handler.h) is
// noted with its value before the exit, and it saves before the exit only the handlers that
// keep internal state (MsrHandler::KeepsNoInternalState is false). After a #GP it compares those
// slots and those handlers' SaveState bytes. That is the whole state a handler can change, so
// the rule is as strong as a full copy, at the cost of the slots the exit touched. Every
// `full_check_interval`-th guest exit, and every exit with any other engine (a wrapper that may
// change slots itself) or a host-initiated one, copies instead every slot of the exiting vCPU
// and the VM and every handler's SaveState bytes before the exit and compares them all, which
// also catches a handler that writes state around ExitContext.
//
// Hot path: no heap allocation per event once the reused buffers have grown.
#ifndef MSRTRACE_HARNESS_EXIT_CHECK_H_
#define MSRTRACE_HARNESS_EXIT_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "harness/core/controller.h"
#include "harness/core/vcpu.h"
#include "harness/replay/machine.h"
#include "harness/trace/trace_types.h"

namespace msrtrace {

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
  // Architectural checks (independent of the recording).
  kArchRipAdvance,            // Retired/ignored: RIP != old RIP + instruction length (wrapped).
  kArchUpperHalves,           // RDMSR: RAX/RDX are not value[31:0]/value[63:32].
  kArchGprClobbered,          // A GPR the instruction does not write changed.
  kArchGpRipMoved,            // #GP: RIP changed.
  kArchGpPending,             // #GP: the pending exception is not #GP(0).
  kArchGpNotAtomic,           // #GP: slots, handler state, EFER, memory... changed.
  kArchSingleStep,            // Retired: #DB pending without RFLAGS.TF, or missing with it.
  kArchInterruptShadow,       // Retired: STI/MOV-SS blocking not cleared.
  kArchVmmErrorChangedState,  // VMM error: registers changed.
  kArchControlRegs,           // CR0/CR4/RFLAGS/CS.L changed.
  kArchNoOutcome,             // The engine reported neither retired, ignored nor #GP.
  // Added with MSR routing and host-initiated events (harness/replay/exit_check_host.cc).
  kRoute,              // Against the recording: the access took another path (Outcome::route).
  kArchHostRegisters,  // A host-initiated access changed a register (EFER writes excepted).
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

// Where divergences go.
class DivergenceSink {
 public:
  virtual ~DivergenceSink() = default;
  // Counts one divergence of `kind` and returns storage for its details, or nullptr when no
  // details are wanted (then nothing is formatted).
  virtual Divergence* Add(DivergenceKind kind) = 0;
};

// Step 1: the event's inputs on `regs`.
void ApplyEventInputs(const ExitEvent& event, VcpuRegs* regs);

// The engine under test: handles one MSR exit with the contract of Controller::Handle, on the
// machine it was made for.
class ExitEngine {
 public:
  virtual ~ExitEngine() = default;
  virtual absl::StatusOr<Outcome> Handle(const Exit& exit, Vcpu& vcpu, GuestMemory& memory) = 0;
  // The controller Handle() hands each exit to, when Handle() does nothing else that could
  // change state (then the checker journals slot accesses instead of copying all state, see
  // the file comment); nullptr otherwise (the default: a wrapper may change slots itself).
  virtual const Controller* DirectController() const { return nullptr; }
};

// The production engine: Controller::Handle. `*controller` must outlive the engine.
class ControllerEngine : public ExitEngine {
 public:
  explicit ControllerEngine(Controller* controller) : controller_(controller) {}
  absl::StatusOr<Outcome> Handle(const Exit& exit, Vcpu& vcpu, GuestMemory& memory) override {
    return controller_->Handle(exit, vcpu, memory);
  }
  const Controller* DirectController() const override { return controller_; }

 private:
  Controller* controller_;
};

struct ExitCheckOptions {
  VolatilePolicy volatile_policy = VolatilePolicy::kAuto;
  bool check_architecture = true;  // Step 3.
  bool compare_recording = true;   // Step 4.
  // XORed into RCX, RAX and RDX after the inputs are applied; only bits 63:32 may be set.
  uint64_t junk_rcx = 0, junk_rax = 0, junk_rdx = 0;
  // With a DirectController engine, every n-th guest exit (counted from BeginRun) also copies
  // and compares all state for fault atomicity (file comment); 0 = never, 1 = every exit.
#ifdef NDEBUG
  static constexpr uint32_t kDefaultFullCheckInterval = 64;
#else
  static constexpr uint32_t kDefaultFullCheckInterval = 1;
#endif
  uint32_t full_check_interval = kDefaultFullCheckInterval;
};

// The XOR masks the upper-half-independence runs use.
inline constexpr uint64_t kJunkRcx = 0xa5a5a5a500000000ull;
inline constexpr uint64_t kJunkRax = 0x5a5a5a5a00000000ull;
inline constexpr uint64_t kJunkRdx = 0xc3c3c3c300000000ull;

class ExitChecker {
 public:
  // `machine`, `engine` and `sink` must outlive the checker; `engine` acts on `machine`.
  ExitChecker(Machine* machine, ExitEngine* engine, DivergenceSink* sink,
              ExitCheckOptions options = {});

  // Forgets capture gaps (call at the start of a run over a trace).
  void BeginRun();
  // Continues on another machine (a resumed one), keeping the gaps seen so far.
  void Rebind(Machine* machine, ExitEngine* engine) {
    machine_ = machine;
    engine_ = engine;
    stateful_of_ = nullptr;
    checked_engine_ = nullptr;
  }

  // Runs `event` (steps 1-4). Errors (unusable input, not a divergence): the event names a vCPU
  // the machine lacks.
  [[nodiscard]] absl::Status Run(const ExitEvent& event);

  // --- What the last Run() gave ---------------------------------------------------------
  const absl::StatusOr<Outcome>& result() const { return result_; }
  RecordedKind observed() const { return observed_; }
  Access access() const { return access_; }
  const VcpuRegs& regs_before() const { return before_; }
  const Vcpu& vcpu() const { return *vcpu_; }
  // True when the vCPU of the last event is past a capture gap.
  bool after_gap() const { return after_gap_; }

  // Events since BeginRun() that started a capture gap (lost_before != 0).
  uint64_t gaps() const { return gaps_; }
  const ExitCheckOptions& options() const { return options_; }
  void set_options(const ExitCheckOptions& options) { options_ = options; }
  Machine& machine() { return *machine_; }

 private:
  void CheckArchitecture(const ExitEvent& ev);
  void CompareWithRecording(const ExitEvent& ev);
  void CompareWrites(const ExitEvent& ev);
  // A host-initiated event (KVM_GET/SET_MSRS): Controller::HostAccess, then its checks.
  void RunHost(const ExitEvent& ev);
  Divergence* Add(DivergenceKind kind, const ExitEvent& ev);
  std::string RegDiff(const ExitEvent& ev) const;
  std::string FirstSlotChange(const std::vector<uint64_t>& pre, const std::vector<uint64_t>& now,
                              bool vcpu) const;
  std::string SlotChangeText(bool vcpu, size_t id, uint64_t pre, uint64_t now) const;
  // True when every check of CheckArchitecture passes (its fast path).
  bool RulesHold(const ExitEvent& ev, bool completed, bool writes_rax_rdx);
  // Fault atomicity of a #GP: whether nothing changed, and what did ("vCPU slot ...; ").
  bool StateUnchanged();
  void StateChanges(std::string* what);
  void JournalChanges(std::string* what);
  // The first handler whose internal state changed in the exit, or -1.
  int ChangedHandler();
  // The full capture: every slot of `v` and of the VM, every handler's SaveState bytes.
  void CaptureAll(const Vcpu& v);
  // The handlers with internal state (stateful_) of the machine's controller.
  void FindStatefulHandlers(const Controller& ctl);

  Machine* machine_;
  ExitEngine* engine_;
  DivergenceSink* sink_;
  ExitCheckOptions options_;
  // Per-event state (reused).
  absl::StatusOr<Outcome> result_;
  RecordedKind observed_ = RecordedKind::kUnspecified;
  Access access_ = Access::kRead;
  VcpuRegs before_;
  Vcpu* vcpu_ = nullptr;
  bool after_gap_ = false;
  std::vector<uint64_t> pre_slots_;
  std::vector<uint64_t> pre_vm_slots_;
  std::vector<std::string> pre_handler_states_;  // By handler position.
  std::string scratch_;
  // This exit copied all state (else the journal and stateful_ handlers hold the capture).
  bool full_capture_ = true;
  uint32_t guest_exits_ = 0;  // Toward the next full capture (full_check_interval).
  // engine_->DirectController(), asked once per engine.
  const ExitEngine* checked_engine_ = nullptr;
  const Controller* direct_controller_ = nullptr;
  StateJournal journal_;
  std::vector<uint32_t> stateful_;  // Positions in Controller::handlers().
  const Controller* stateful_of_ = nullptr;
  size_t stateful_handler_count_ = 0;
  // Capture gaps: vCPU positions (in Machine::vcpus) past a gap.
  std::vector<uint8_t> gapped_;
  uint64_t gaps_ = 0;
};

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_EXIT_CHECK_H_
