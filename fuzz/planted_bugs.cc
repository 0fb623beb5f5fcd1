#include "fuzz/planted_bugs.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "fuzz/fuzz_setup.h"
#include "handlers/handler_set.h"
#include "handlers/msr_table.h"
#include "harness/core/enum_names.h"
#include "harness/core/msr_handler.h"
#include "harness/core/status_macros.h"
#include "harness/replay/exit_check.h"
#include "harness/replay/machine.h"

namespace msrtrace {
namespace fuzz {
namespace {

constexpr uint64_t kLow32 = 0xffffffffull;

// --- Engine bugs: a wrapper around the real controller ----------------------------------------

constexpr uint32_t kMsrTsc = 0x10;
constexpr uint32_t kMsrTscAdjust = 0x3b;
constexpr uint32_t kMsrMiscEnable = 0x1a0;
constexpr uint32_t kMsrPat = 0x277;
constexpr uint32_t kMsrMtrrDefType = 0x2ff;
constexpr uint32_t kMsrGsBase = 0xc0000101;
constexpr uint32_t kMsrKernelGsBase = 0xc0000102;
constexpr uint32_t kMsrTscAux = 0xc0000103;
constexpr uint64_t kMtrrDefTypeAllowed = 0xcff;

class PlantedEngine : public ExitEngine {
 public:
  PlantedEngine(Machine* machine, PlantedBug bug)
      : machine_(machine), controller_(machine->controller.get()), bug_(bug) {}

  absl::StatusOr<Outcome> Handle(const Exit& exit, Vcpu& vcpu, GuestMemory& memory) override {
    VcpuRegs& regs = vcpu.regs;
    const VcpuRegs before = regs;
    const uint32_t ecx = static_cast<uint32_t>(regs.reg(Gpr::kRcx));
    const bool write = MsrAccessOf(exit) == Access::kWrite;
    if (bug_ == PlantedBug::kMtrrDefTypeReservedAccepted && write && ecx == kMsrMtrrDefType) {
      // Silently drops the reserved bits instead of refusing the write.
      const uint64_t value =
          ((regs.reg(Gpr::kRdx) & kLow32) << 32) | (regs.reg(Gpr::kRax) & kLow32);
      const uint64_t kept = value & kMtrrDefTypeAllowed;
      regs.reg(Gpr::kRax) = kept & kLow32;
      regs.reg(Gpr::kRdx) = kept >> 32;
      absl::StatusOr<Outcome> out = controller_->Handle(exit, vcpu, memory);
      regs.reg(Gpr::kRax) = before.reg(Gpr::kRax);
      regs.reg(Gpr::kRdx) = before.reg(Gpr::kRdx);
      if (out.ok()) out->value = value;
      return out;
    }
    if (bug_ == PlantedBug::kKernelGsBaseRoutedToGsBase && write && ecx == kMsrKernelGsBase) {
      regs.reg(Gpr::kRcx) = kMsrGsBase;
      absl::StatusOr<Outcome> out = controller_->Handle(exit, vcpu, memory);
      regs.reg(Gpr::kRcx) = before.reg(Gpr::kRcx);
      return out;
    }
    if (bug_ == PlantedBug::kMiscEnableReadOnlyWritable && write && ecx == kMsrMiscEnable) {
      // Commits the written read-only bits (BTS/PEBS unavailable, 11 and 12) before the real
      // handler compares the value with the stored one, which then sees no change.
      constexpr uint64_t kReadOnly = 0x1800;
      const uint64_t value =
          ((regs.reg(Gpr::kRdx) & kLow32) << 32) | (regs.reg(Gpr::kRax) & kLow32);
      absl::StatusOr<uint64_t> old = controller_->HostRead(kMsrMiscEnable, vcpu, memory);
      if (old.ok()) {
        (void)controller_->HostWrite(kMsrMiscEnable, (*old & ~kReadOnly) | (value & kReadOnly),
                                     vcpu, memory);
      }
      return controller_->Handle(exit, vcpu, memory);
    }
    if (bug_ == PlantedBug::kDispatchEcxXor1 && MsrAccessOf(exit).has_value()) {
      // A controller that decodes bit 0 of the index wrongly for handlers serving a range: the
      // handler at ECX also serves ECX^1, and gets ECX^1; the outcome still names ECX.
      MsrHandler* at = controller_->Find(ecx);
      if (at != nullptr && at == controller_->Find(ecx ^ 1)) {
        regs.reg(Gpr::kRcx) = before.reg(Gpr::kRcx) ^ 1;
        absl::StatusOr<Outcome> out = controller_->Handle(exit, vcpu, memory);
        regs.reg(Gpr::kRcx) = before.reg(Gpr::kRcx);
        if (out.ok()) out->index = ecx;
        return out;
      }
    }
    if (bug_ == PlantedBug::kIndexFromFullRcx && (regs.reg(Gpr::kRcx) >> 32) != 0) {
      // A 64-bit index no table holds: treated as an unknown MSR (#GP under the default policy).
      const absl::optional<Access> access = MsrAccessOf(exit);
      if (!access.has_value()) return ExitNotHandledError(exit);
      Outcome out;
      out.kind = Outcome::Kind::kGpInjected;
      out.access = *access;
      out.index = static_cast<uint32_t>(regs.reg(Gpr::kRcx));
      out.unknown_msr = true;
      regs.pending = PendingException::Gp0();
      return out;
    }
    absl::StatusOr<Outcome> out = controller_->Handle(exit, vcpu, memory);
    if (!out.ok() || out->kind != Outcome::Kind::kRetired) return out;
    if (bug_ == PlantedBug::kRipNotAdvanced) regs.rip = before.rip;
    if (bug_ == PlantedBug::kTscAuxReadDropsBit0 && out->access == Access::kRead &&
        out->index == kMsrTscAux) {
      out->value &= ~1ull;
      regs.reg(Gpr::kRax) = out->value & kLow32;
    }
    if (bug_ == PlantedBug::kPatWriteBroadcast && out->access == Access::kWrite &&
        out->index == kMsrPat) {
      for (Vcpu& other : machine_->vcpus) {
        if (other.id == vcpu.id) continue;
        (void)controller_->HostWrite(kMsrPat, out->value, other, memory);
      }
    }
    if (bug_ == PlantedBug::kTscWriteAdjustsEveryVcpu && out->access == Access::kWrite &&
        out->index == kMsrTsc) {
      // TSC_ADJUST kept once for the VM: the writer's new value shows on every vCPU.
      absl::StatusOr<uint64_t> adjust = controller_->HostRead(kMsrTscAdjust, vcpu, memory);
      for (Vcpu& other : machine_->vcpus) {
        if (other.id == vcpu.id || !adjust.ok()) continue;
        (void)controller_->HostWrite(kMsrTscAdjust, *adjust, other, memory);
      }
    }
    if (bug_ == PlantedBug::kUpperHalvesNotCleared && out->access == Access::kRead) {
      regs.reg(Gpr::kRax) |= before.reg(Gpr::kRax) & ~kLow32;
      regs.reg(Gpr::kRdx) |= before.reg(Gpr::kRdx) & ~kLow32;
    }
    return out;
  }

 private:
  Machine* machine_;
  Controller* controller_;
  PlantedBug bug_;
};

// --- Handler bugs ------------------------------------------------------------------------------

// Storage MSR that accepts only 32-bit values, but commits before checking.
class NonAtomicHandler : public MsrHandler {
 public:
  explicit NonAtomicHandler(SlotId slot) : slot_(slot) {}
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext& ctx) override {
    return MsrResult::Ok(ctx.slot(slot_));
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t value, ExitContext& ctx) override {
    ctx.slot(slot_) = value;                         // BUG: commit first...
    if ((value >> 32) != 0) return MsrResult::Gp();  // ...then check.
    return MsrResult::Ok();
  }
  absl::string_view MsrName(uint32_t) const override { return "PLANTED_NON_ATOMIC"; }

 private:
  SlotId slot_;
};

// Reads the host clock instead of the exit's recorded host_wall_ns.
class HostClockHandler : public MsrHandler {
 public:
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext&) override {
    return MsrResult::Ok(static_cast<uint64_t>(absl::GetCurrentTimeNanos()));  // BUG.
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t, ExitContext&) override {
    return MsrResult::Gp();
  }
  absl::string_view MsrName(uint32_t) const override { return "PLANTED_HOST_CLOCK"; }
};

absl::Status InstallNonAtomic(Controller& controller, const CpuProfile& profile) {
  RETURN_IF_ERROR(InstallReferenceHandlers(controller, profile));
  const SlotId slot = controller.layout().AddVcpuSlot("PLANTED_NON_ATOMIC");
  if (!controller.Insert(kPlantedMsr, std::make_unique<NonAtomicHandler>(slot))) {
    return absl::AlreadyExistsError("planted MSR index taken");
  }
  return absl::OkStatus();
}

absl::Status InstallHostClock(Controller& controller, const CpuProfile& profile) {
  RETURN_IF_ERROR(InstallReferenceHandlers(controller, profile));
  if (!controller.Insert(kPlantedMsr, std::make_unique<HostClockHandler>())) {
    return absl::AlreadyExistsError("planted MSR index taken");
  }
  return absl::OkStatus();
}

const bool kRegistered = [] {
  RegisterHandlerSet({"planted-state-changed-before-gp",
                      "TEST ONLY: reference + a handler that commits before its #GP",
                      &InstallNonAtomic});
  RegisterHandlerSet({"planted-reads-host-clock",
                      "TEST ONLY: reference + a handler that reads the host clock",
                      &InstallHostClock});
  return true;
}();

}  // namespace

constexpr EnumName<PlantedBug> kPlantedBugNames[] = {
    {PlantedBug::kRipNotAdvanced, "rip-not-advanced"},
    {PlantedBug::kUpperHalvesNotCleared, "upper-halves-not-cleared"},
    {PlantedBug::kIndexFromFullRcx, "index-from-full-rcx"},
    {PlantedBug::kStateChangedBeforeGp, "state-changed-before-gp"},
    {PlantedBug::kReadsHostClock, "reads-host-clock"},
    {PlantedBug::kTscAuxReadDropsBit0, "tsc-aux-read-drops-bit0"},
    {PlantedBug::kMtrrDefTypeReservedAccepted, "mtrr-def-type-reserved-accepted"},
    {PlantedBug::kKernelGsBaseRoutedToGsBase, "kernel-gs-base-routed-to-gs-base"},
    {PlantedBug::kPatWriteBroadcast, "pat-write-broadcast"},
    {PlantedBug::kMiscEnableReadOnlyWritable, "misc-enable-read-only-writable"},
    {PlantedBug::kTscWriteAdjustsEveryVcpu, "tsc-write-adjusts-every-vcpu"},
    {PlantedBug::kDispatchEcxXor1, "dispatch-ecx-xor1"},
};
static_assert(sizeof(kPlantedBugNames) / sizeof(kPlantedBugNames[0]) ==
                  static_cast<size_t>(PlantedBug::kCount),
              "every PlantedBug has a name");

const char* PlantedBugName(PlantedBug bug) { return NameOf(kPlantedBugNames, bug, "unknown"); }

absl::optional<PlantedBug> ParsePlantedBug(absl::string_view name) {
  return ValueOf(kPlantedBugNames, name);
}

Oracle OracleFor(PlantedBug bug) {
  switch (bug) {
    case PlantedBug::kRipNotAdvanced:
      return Oracle::kRipProgress;
    case PlantedBug::kUpperHalvesNotCleared:
      return Oracle::kRegisterHygiene;
    case PlantedBug::kIndexFromFullRcx:
      return Oracle::kUpperHalfIndependence;
    case PlantedBug::kStateChangedBeforeGp:
      return Oracle::kFaultAtomicity;
    case PlantedBug::kReadsHostClock:
      return Oracle::kDeterminism;
    case PlantedBug::kTscAuxReadDropsBit0:
      return Oracle::kRecordedOutcome;
    case PlantedBug::kMtrrDefTypeReservedAccepted:
      return Oracle::kTableConformance;
    case PlantedBug::kKernelGsBaseRoutedToGsBase:
      return Oracle::kIndexRouting;
    case PlantedBug::kPatWriteBroadcast:
      return Oracle::kVcpuIsolation;
    case PlantedBug::kMiscEnableReadOnlyWritable:
      return Oracle::kTableConformance;
    case PlantedBug::kTscWriteAdjustsEveryVcpu:
      return Oracle::kVcpuIsolation;
    case PlantedBug::kDispatchEcxXor1:
      return Oracle::kIndexRouting;
    case PlantedBug::kCount:
      break;
  }
  return Oracle::kCount;
}

const char* PlantedHandlerSet(PlantedBug bug) {
  (void)kRegistered;
  switch (bug) {
    case PlantedBug::kStateChangedBeforeGp:
      return "planted-state-changed-before-gp";
    case PlantedBug::kReadsHostClock:
      return "planted-reads-host-clock";
    default:
      return "reference";
  }
}

EngineFactory PlantedEngineFactory(PlantedBug bug) {
  (void)kRegistered;
  return [bug](Machine& machine) -> std::unique_ptr<ExitEngine> {
    return std::make_unique<PlantedEngine>(&machine, bug);
  };
}

absl::StatusOr<TraceModel> PlantedStartTrace(PlantedBug bug) {
  const uint32_t vcpus =
      bug == PlantedBug::kPatWriteBroadcast || bug == PlantedBug::kTscWriteAdjustsEveryVcpu ? 2 : 1;
  ASSIGN_OR_RETURN(TraceModel trace, ResetTrace(PlantedHandlerSet(bug), vcpus));
  if (bug != PlantedBug::kTscAuxReadDropsBit0) return trace;
  trace.events.push_back(MakeEvent(trace, Access::kWrite, kMsrTscAux, 0x13));
  trace.events.push_back(MakeEvent(trace, Access::kRead, kMsrTscAux, 0));
  trace.events.push_back(MakeEvent(trace, Access::kRead, kMsrPat, 0));
  trace.events.push_back(MakeEvent(trace, Access::kRead, kMsrTscAux, 0));
  // Record the reference engine's outcomes, as a recorded corpus trace has them.
  ASSIGN_OR_RETURN(std::unique_ptr<Machine> m, BuildMachine(trace.header));
  for (size_t k = 0; k < trace.events.size(); ++k) {
    ExitEvent& e = trace.events[k];
    e.seq = k + 1;
    Vcpu* v = m->FindVcpu(e.vcpu_id);
    if (v == nullptr) return absl::InternalError("planted start trace: no vCPU");
    ApplyEventInputs(e, &v->regs);
    ASSIGN_OR_RETURN(Outcome o, m->controller->Handle(e.exit, *v, m->memory));
    e.kind = RecordedKindOf(o.kind);
    e.rax_out = v->regs.reg(Gpr::kRax);
    e.rdx_out = v->regs.reg(Gpr::kRdx);
    e.rip_out = v->regs.rip;
    e.pending_out = v->regs.pending;
    e.known |= kFieldRaxRdxOut | kFieldRipOut | kFieldPendingOut;
  }
  return trace;
}

}  // namespace fuzz
}  // namespace msrtrace
