// The MSR exit controller: the one place that turns a handler's verdict into architectural
// effects. It reads the index from ECX and the value from EDX:EAX, dispatches to the handler
// registered for the index, writes EDX:EAX on a read, advances RIP, and injects #GP(0) on a
// fault (ref: SDM Vol2B RDMSR/WRMSR; Linux arch/x86/kvm kvm_emulate_rdmsr/wrmsr).
//
// Dispatch is a flat table: dense arrays for the three busy windows of the MSR space
// (0x0-0x1fff, 0x4b564d00-0x4b564dff, 0xc0000000-0xc0001fff) and a sorted vector for the rest.
// No heap allocation and no ordered-map lookup per exit.
//
// Thread-safety: none. One controller serves one VM; exits of its vCPUs are handled one at a
// time (as KVM serializes per-vCPU exits; VM-wide state needs the same).
#ifndef MSRTRACE_HARNESS_CONTROLLER_H_
#define MSRTRACE_HARNESS_CONTROLLER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "harness/core/declared_rows.h"
#include "harness/core/exit.h"
#include "harness/core/guest_memory.h"
#include "harness/core/msr_filter.h"
#include "harness/core/msr_handler.h"
#include "harness/core/vcpu.h"

namespace msrtrace {

// What happens to an access no handler implements.
enum class UnknownMsrPolicy : uint8_t {
  kUnspecified = 0,
  kInjectGp = 1,  // KVM's default: #GP(0), RIP unchanged.
  kIgnore = 2,    // KVM's ignore_msrs=1: reads return 0, writes are dropped, RIP advances.
  kFail = 3,      // The seed's behaviour: the exit fails with an error and the VM stops.
};
const char* UnknownMsrPolicyName(UnknownMsrPolicy p);
absl::optional<UnknownMsrPolicy> ParseUnknownMsrPolicy(absl::string_view name);

// Which path a guest access took (KVM's routing, harness/core/msr_filter.h). Host-initiated
// accesses are never routed: they report kKernel.
enum class MsrRoute : uint8_t {
  kUnspecified = 0,       // Not recorded (traces only; the controller always sets a route).
  kKernel = 1,            // Handled by the in-kernel handlers (including their #GP).
  kUserspaceInval = 2,    // Userspace exit, KVM_MSR_EXIT_REASON_INVAL (in-kernel #GP).
  kUserspaceUnknown = 3,  // Userspace exit, KVM_MSR_EXIT_REASON_UNKNOWN (no in-kernel handler).
  kUserspaceFilter = 4,   // Userspace exit, KVM_MSR_EXIT_REASON_FILTER (denied by the filter).
  kFilterGp = 5,          // Denied by the filter, FILTER exits not enabled: #GP(0).
};
const char* MsrRouteName(MsrRoute r);
absl::optional<MsrRoute> ParseMsrRoute(absl::string_view name);

// The result of one handled MSR exit.
struct Outcome {
  enum class Kind : uint8_t {
    kUnspecified = 0,
    kRetired = 1,     // The handler accepted the access; RIP advanced.
    kGpInjected = 2,  // #GP(0) pending; nothing else changed.
    kIgnored = 3,     // Unknown MSR under UnknownMsrPolicy::kIgnore; RIP advanced.
  };
  Kind kind = Kind::kUnspecified;
  Access access = Access::kRead;
  uint32_t index = 0;
  // RDMSR: the value read (0 on a fault). WRMSR: the value the guest wrote.
  uint64_t value = 0;
  // True when no handler was registered for the index (or the handler said unsupported); for
  // a userspace exit, when the userspace handler set does not implement it.
  bool unknown_msr = false;
  MsrRoute route = MsrRoute::kKernel;
};
const char* OutcomeKindName(Outcome::Kind k);

// The error an exit that is not RDMSR/WRMSR gets, so a chain of controllers can try the next
// one (the seed's VmError::HandleVmexitFailed).
absl::Status ExitNotHandledError(const Exit& exit);
bool IsExitNotHandled(const absl::Status& status);

// What guest exits handed to handlers, as the dispatch saw it (Controller::set_dispatch_trace).
struct DispatchTrace {
  uint32_t index = 0;  // The index the last guest dispatch looked up and passed to the handler.
  uint64_t count = 0;  // Guest dispatches since the trace was set.
};

struct ControllerOptions {
  UnknownMsrPolicy unknown_msr_policy = UnknownMsrPolicy::kInjectGp;
};

class Controller {
 public:
  explicit Controller(ControllerOptions options = {});
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  const ControllerOptions& options() const { return options_; }
  void set_unknown_msr_policy(UnknownMsrPolicy p) { options_.unknown_msr_policy = p; }

  // --- Set-up (before CreateVcpu) ---------------------------------------------------------

  // Slots for handler state. Handlers reserve them while they are being installed.
  StateLayout& layout() { return layout_; }
  const StateLayout& layout() const { return layout_; }

  // Takes ownership of `handler` and returns it, for registration at several indices.
  MsrHandler* Adopt(std::unique_ptr<MsrHandler> handler);
  // Registers `handler` (owned by this controller, see Adopt) at `index`. Returns false and
  // keeps the existing handler when `index` is taken (the seed's Controller::insert).
  bool Insert(uint32_t index, MsrHandler* handler);
  // Adopts and registers. On false, `handler` is destroyed and the existing one is kept.
  bool Insert(uint32_t index, std::unique_ptr<MsrHandler> handler);
  // Registers [first, last] (inclusive). All or nothing: returns false and registers none if
  // any index of the range is taken or first > last.
  bool InsertRange(uint32_t first, uint32_t last, MsrHandler* handler);
  // Registers `handler` (owned by this controller) at `index` in place of the handler there,
  // and returns that one (still owned here, so a wrapper may delegate to it). Returns nullptr
  // and changes nothing when `index` is free or `handler` is null.
  MsrHandler* Replace(uint32_t index, MsrHandler* handler);
  // The handler at `index`, or nullptr.
  MsrHandler* Find(uint32_t index) const;

  // Installing a second handler set for userspace MSR exits: between Begin and End,
  // Insert/InsertRange register into the userspace table (not the in-kernel one), slot names
  // get the prefix "user:", and DeclareRow is ignored (the declared rows describe the
  // in-kernel set). Handlers are adopted as usual, so snapshots, Reset and digests cover both.
  void BeginUserspaceInstall();
  void EndUserspaceInstall();
  // The userspace handler at `index`, or nullptr.
  MsrHandler* FindUserspace(uint32_t index) const;
  // Routes guest accesses as KVM would with this KVM_CAP_X86_USER_SPACE_MSR mask and
  // KVM_X86_SET_MSR_FILTER filter (harness/core/msr_filter.h). REQUIRES: routing.Validate() is OK.
  // The default routing sends everything to the in-kernel handlers.
  void set_routing(const MsrRouting& routing);
  const MsrRouting& routing() const { return routing_; }
  // Declares the checks a handler makes on `row`'s indices (harness/core/declared_rows.h); the
  // fuzzer's table-conformance oracle verifies them. Install functions call it.
  void DeclareRow(const DeclaredRow& row) {
    if (!installing_userspace_) declared_rows_.push_back(row);
  }
  const std::vector<DeclaredRow>& declared_rows() const { return declared_rows_; }
  // Every registered index in increasing order.
  std::vector<uint32_t> RegisteredIndices() const;
  // Report name of `index` ("IA32_PAT", or "MSR_0x1234" when unnamed).
  std::string MsrName(uint32_t index) const;

  // Creates a vCPU at reset: registers at their reset values, slots at the layout's reset
  // values, then every handler's OnVcpuReset. VM-wide slots reserved since the last call are
  // set to their reset values. REQUIRES: every handler is installed.
  Vcpu CreateVcpu(uint32_t id);

  // --- Exits ------------------------------------------------------------------------------

  // Handles one exit of `vcpu`. On an MSR exit, applies the architectural rules:
  //   index = ECX (RCX[31:0]); WRMSR value = RDX[31:0]:RAX[31:0];
  //   retired: RDMSR sets RAX = value[31:0], RDX = value[63:32] (upper halves zero);
  //            RIP += exit.instruction_length (wrapping at 32 bits unless the vCPU was in
  //            64-bit mode before the exit);
  //            STI/MOV-SS blocking cleared; RFLAGS.TF set => single-step #DB pending;
  //   #GP:     #GP(0) pending; RIP, GPRs and MSR state unchanged.
  // With routing (set_routing), the access is first checked against the filter, then run by
  // the in-kernel handlers; a failure whose KVM exit reason is enabled is handled by the
  // userspace handlers instead (their verdict is the outcome; an index they do not implement
  // gets the unknown-MSR policy), and Outcome::route says which path was taken.
  // Errors: ExitNotHandledError for a non-MSR exit; the handler's error (a VMM failure) or
  // kNotFound for an unknown MSR under kFail. Registers are unchanged on any error.
  absl::StatusOr<Outcome> Handle(const Exit& exit, Vcpu& vcpu, GuestMemory& memory);

  // The guest-memory writes of the last Handle() (valid until the next call).
  const WriteLog& last_writes() const { return writes_; }

  // Host-initiated accesses (KVM_GET_MSRS / KVM_SET_MSRS): no register or RIP effects. Used
  // to build and inspect state. Unknown index -> kNotFound; the handler's refusal ->
  // kInvalidArgument. Guest-memory writes these make are logged in last_writes().
  // `host_tsc` / `host_wall_ns` are the environment the handler sees (as an exit's would be).
  // One host-initiated access (a KVM_GET_MSRS / KVM_SET_MSRS entry) as an Outcome, for trace
  // replay: kRetired (success; a read's value in `value`), kIgnored (no handler, accepted under
  // kIgnore as KVM's ignore_msrs does: reads 0), or kGpInjected meaning "refused" (the handler
  // refused, or no handler under another policy: the ioctl stops at this MSR). No register,
  // RIP or pending-exception effect; never filtered nor routed to userspace (route kKernel).
  // `exit` supplies host_tsc/host_wall_ns. Errors: a handler's VMM failure.
  absl::StatusOr<Outcome> HostAccess(Access access, uint32_t index, uint64_t value, Vcpu& vcpu,
                                     GuestMemory& memory, const Exit& exit);
  absl::StatusOr<uint64_t> HostRead(uint32_t index, Vcpu& vcpu, GuestMemory& memory,
                                    uint64_t host_tsc = 0, uint64_t host_wall_ns = 0);
  absl::Status HostWrite(uint32_t index, uint64_t value, Vcpu& vcpu, GuestMemory& memory,
                         uint64_t host_tsc = 0, uint64_t host_wall_ns = 0);

  // Test seam (the fuzzer's index-routing oracle): while set, every guest exit's dispatch stores
  // the index it looks up and passes to the handler in `*trace` and counts itself; host
  // accesses are not traced. Unset (nullptr, the default) it costs one predictable branch per
  // exit and never allocates. `*trace` must outlive its use; set nullptr to stop.
  void set_dispatch_trace(DispatchTrace* trace) { dispatch_trace_ = trace; }

  // While set, the ExitContext of every handler call (guest exits and host accesses) notes the
  // slots the handler reaches in `*journal` (harness/core/msr_handler.h); the exit checker sets
  // it around one exit to check fault atomicity without copying all state. Unset (nullptr, the
  // default) it costs one predictable branch per slot access. The caller clears it.
  void set_state_journal(StateJournal* journal) { state_journal_ = journal; }
  StateJournal* state_journal() const { return state_journal_; }

  // --- VM-wide and handler state (see snapshot.h for whole-machine snapshots) -------------

  std::vector<uint64_t>& vm_slots() { return vm_slots_; }
  const std::vector<uint64_t>& vm_slots() const { return vm_slots_; }
  // Adopted handlers in adoption order; the order is stable for a given set-up sequence.
  const std::vector<std::unique_ptr<MsrHandler>>& handlers() const { return owned_; }

 private:
  static constexpr uint32_t kWindowSize = 0x2000;
  struct Window {
    uint32_t base;
    uint32_t size;
  };
  static constexpr std::array<Window, 3> kWindows = {{
      {0x00000000, 0x2000},
      {0x4b564d00, 0x100},
      {0xc0000000, 0x2000},
  }};

  // The dense-table entry of `index` (a handler id), or nullptr outside the windows.
  uint16_t* Slot(uint32_t index);
  // The id of `handler` in the dense tables (assigned on first use), or 0 when all are taken.
  uint16_t DenseId(MsrHandler* handler);
  // Runs the handler for one access and fills `out`; applies the unknown-MSR policy. No
  // register effects.
  // With `defer_unknown`, an unsupported access under a policy other than kIgnore is left
  // with kind kUnspecified and unknown_msr set, for the router to decide.
  absl::Status Dispatch(Access access, uint32_t index, uint64_t value, const Exit& exit, Vcpu& vcpu,
                        GuestMemory& memory, bool host_initiated, Outcome& out,
                        bool defer_unknown = false);
  // Runs `handler` (may be null: unsupported) and puts its verdict in `result`.
  absl::Status RunHandler(MsrHandler* handler, Access access, uint32_t index, uint64_t value,
                          const Exit& exit, Vcpu& vcpu, GuestMemory& memory, bool host_initiated,
                          MsrResult& result);
  // The unknown-MSR policy for an access no handler implements.
  absl::Status ApplyUnknownPolicy(Access access, uint32_t index, uint64_t value, const Vcpu& vcpu,
                                  Outcome& out) const;
  // Controller::Handle's dispatch when routing is active.
  absl::Status Route(Access access, uint32_t index, uint64_t value, const Exit& exit, Vcpu& vcpu,
                     GuestMemory& memory, Outcome& out);

  ControllerOptions options_;
  StateLayout layout_;
  std::vector<uint64_t> vm_slots_;
  std::vector<std::unique_ptr<MsrHandler>> owned_;
  // Handler ids per index (0 = none), 2 bytes an index so that the windows stay in the first
  // cache levels; dense_handlers_[id] is the handler (dense_handlers_[0] == nullptr).
  std::array<std::unique_ptr<uint16_t[]>, 3> dense_;
  std::vector<MsrHandler*> dense_handlers_{nullptr};
  std::vector<std::pair<uint32_t, MsrHandler*>> sparse_;  // Sorted by index.
  WriteLog writes_;
  std::vector<DeclaredRow> declared_rows_;
  // Userspace MSR exits.
  std::vector<std::pair<uint32_t, MsrHandler*>> user_handlers_;  // Sorted by index.
  bool installing_userspace_ = false;
  MsrRouting routing_;
  bool routing_active_ = false;
  DispatchTrace* dispatch_trace_ = nullptr;
  StateJournal* state_journal_ = nullptr;
};

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_CONTROLLER_H_
