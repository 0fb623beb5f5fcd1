#include "fuzz/oracles.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "harness/snapshot.h"
#include "harness/status_macros.h"

namespace msrtrace {
namespace fuzz {
namespace {

constexpr uint64_t kLow32 = 0xffffffffull;
// What the upper-half-independence run XORs into RCX/RAX/RDX[63:32].
constexpr uint64_t kJunkRcx = 0xa5a5a5a500000000ull;
constexpr uint64_t kJunkRax = 0x5a5a5a5a00000000ull;
constexpr uint64_t kJunkRdx = 0xc3c3c3c300000000ull;

// The event's inputs on its vCPU, as harness/replay.h step 1 sets them.
void ApplyInputs(const ExitEvent& e, bool flip_junk, VcpuRegs* r) {
  r->reg(Gpr::kRcx) = e.rcx;
  if (e.known & kFieldRaxRdxIn) {
    r->reg(Gpr::kRax) = e.rax;
    r->reg(Gpr::kRdx) = e.rdx;
  }
  if (e.known & kFieldRip) r->rip = e.rip;
  if (e.known & kFieldMode) {
    r->rflags = e.rflags;
    r->cr0 = e.cr0;
    r->cr4 = e.cr4;
    r->efer = e.efer;
    r->cs_l = e.cs_l;
    r->interruptibility = e.interruptibility;
  }
  r->pending = PendingException{};
  if (flip_junk) {
    r->reg(Gpr::kRcx) ^= kJunkRcx;
    r->reg(Gpr::kRax) ^= kJunkRax;
    r->reg(Gpr::kRdx) ^= kJunkRdx;
  }
}

// Registers with RCX/RAX/RDX[63:32] cleared (what upper-half independence compares).
VcpuRegs MaskUpper(VcpuRegs r) {
  r.reg(Gpr::kRcx) &= kLow32;
  r.reg(Gpr::kRax) &= kLow32;
  r.reg(Gpr::kRdx) &= kLow32;
  return r;
}

uint64_t AdvancedRip(uint64_t rip, uint8_t len, bool in_64bit_mode) {
  const uint64_t next = rip + len;
  return in_64bit_mode ? next : next & kLow32;
}

std::string DescribePending(const PendingException& p) {
  if (!p.valid) return "none";
  return absl::StrFormat("vector %u%s", p.vector,
                         p.has_error_code ? absl::StrFormat(" error %#x", p.error_code) : "");
}

std::string DescribeOutcome(const absl::StatusOr<Outcome>& o) {
  if (!o.ok()) return absl::StrCat("error ", o.status().ToString());
  return absl::StrFormat("%s %s %#x value %#x%s", OutcomeKindName(o->kind), AccessName(o->access),
                         o->index, o->value, o->unknown_msr ? " (unknown msr)" : "");
}

bool SameOutcome(const Outcome& a, const Outcome& b) {
  return a.kind == b.kind && a.access == b.access && a.index == b.index && a.value == b.value &&
         a.unknown_msr == b.unknown_msr;
}

// First GPR that differs, or -1.
int FirstGprDiff(const VcpuRegs& a, const VcpuRegs& b, uint32_t skip_mask) {
  for (int g = 0; g < kNumGprs; ++g) {
    if ((skip_mask >> g) & 1) continue;
    if (a.gpr[g] != b.gpr[g]) return g;
  }
  return -1;
}

uint64_t NormalizedDigest(const Machine& m) {
  std::vector<Vcpu> vcpus = m.vcpus;
  for (Vcpu& v : vcpus) v.regs = MaskUpper(v.regs);
  return StateDigest(*m.controller, vcpus, m.memory);
}

}  // namespace

const char* OracleName(Oracle o) {
  switch (o) {
    case Oracle::kRipProgress:
      return "rip-progress";
    case Oracle::kRegisterHygiene:
      return "register-hygiene";
    case Oracle::kUpperHalfIndependence:
      return "upper-half-independence";
    case Oracle::kDeterminism:
      return "determinism";
    case Oracle::kSnapshotResume:
      return "snapshot-resume";
    case Oracle::kFaultAtomicity:
      return "fault-atomicity";
    case Oracle::kReadAfterWrite:
      return "read-after-write";
    case Oracle::kCount:
      break;
  }
  return "unknown";
}

EngineFactory ReferenceEngineFactory() {
  return [](const TraceHeader& header) -> absl::StatusOr<EngineInstance> {
    EngineInstance inst;
    ASSIGN_OR_RETURN(inst.machine, BuildMachine(header));
    inst.engine = std::make_unique<ControllerEngine>(inst.machine->controller.get());
    return inst;
  };
}

std::vector<MsrTarget> PlainStorageTargets(const std::vector<MsrRow>& rows) {
  // Checks that only restrict which values are accepted; an accepted value is stored as is.
  constexpr uint32_t kValueChecks =
      kCheckCanonical | kCheckPatTypes | kCheckMtrrTypes | kCheckMaxPhyAddr;
  // The table has no flag for values stored transformed (SYSENTER_CS keeps 32 bits on VMX,
  // SYSENTER_ESP/EIP are canonicalized, TPR keeps bits 7:0), so the rows must also be on this
  // list of MSRs KVM stores verbatim once accepted (ref: Linux arch/x86/kvm x86.c
  // __kvm_set_msr for the segment bases and STAR family, kvm_pat_valid + the PAT field,
  // mtrr.c kvm_mtrr_set_msr).
  static constexpr const char* kVerbatim[] = {
      "IA32_PAT",  "IA32_MTRR_PHYS", "IA32_MTRR_FIX", "IA32_MTRR_DEF_TYPE", "MSR_STAR",
      "MSR_LSTAR", "MSR_CSTAR",      "MSR_FS_BASE",   "MSR_GS_BASE",        "MSR_KERNEL_GS_BASE",
  };
  auto verbatim = [](absl::string_view name) {
    for (const char* prefix : kVerbatim) {
      if (absl::StartsWith(name, prefix)) return true;
    }
    return false;
  };
  std::vector<MsrTarget> out;
  for (const MsrRow& row : rows) {
    if ((row.checks & ~kValueChecks) != 0 || row.read_only_mask != 0 || row.volatile_value ||
        row.scope != MsrScope::kVcpu || !verbatim(row.name)) {
      continue;
    }
    out.push_back(MsrTarget{row.index, row.last, row.reserved_mask});
  }
  return out;
}

struct OracleRunner::EventResult {
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string error;
  Outcome outcome;
  VcpuRegs regs_after;
};

struct OracleRunner::RunResult {
  std::vector<EventResult> events;
  uint64_t final_digest = 0;
  bool midpoint_taken = false;
};

OracleRunner::OracleRunner(EngineFactory factory, OracleOptions options)
    : factory_(std::move(factory)), options_(std::move(options)) {}

bool OracleRunner::IsPlainStorage(uint32_t index) const {
  for (const MsrTarget& t : options_.plain_storage) {
    if (index >= t.first && index <= t.last) return true;
  }
  return false;
}

absl::Status OracleRunner::Run(const TraceModel& trace, size_t begin, const Snapshot* start,
                               Junk junk, bool check_events, RunResult* out, Snapshot* midpoint,
                               size_t mid) {
  ASSIGN_OR_RETURN(EngineInstance inst, factory_(trace.header));
  Machine& m = *inst.machine;
  RETURN_IF_ERROR(m.Restore(start != nullptr ? *start : trace.snapshot));
  const size_t n = std::min(trace.events.size(), options_.max_events);
  out->events.clear();
  out->events.reserve(n - std::min(n, begin));
  auto fail = [&](Oracle o, size_t k, std::string detail) {
    failure_ = OracleFailure{o, k, std::move(detail)};
  };
  for (size_t k = begin; k < n; ++k) {
    if (midpoint != nullptr && k == mid) {
      *midpoint = CaptureSnapshot(*m.controller, m.vcpus, m.memory);
      out->midpoint_taken = true;
    }
    const ExitEvent& e = trace.events[k];
    Vcpu* vcpu = m.FindVcpu(e.vcpu_id);
    if (vcpu == nullptr) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "event seq %u names vCPU %u, which the snapshot lacks", e.seq, e.vcpu_id));
    }
    ApplyInputs(e, junk == Junk::kFlipped, &vcpu->regs);
    const VcpuRegs before = vcpu->regs;
    if (check_events) {
      // What fault-atomicity compares: the exiting vCPU's slots, the VM-wide slots and every
      // handler's internal state (guest memory: the controller's write log). Copied into reused
      // buffers; far cheaper than a StateDigest per event.
      probe_.slots = vcpu->slots;
      probe_.vm_slots = m.controller->vm_slots();
      const auto& handlers = m.controller->handlers();
      probe_.handler_states.resize(handlers.size());
      for (size_t h = 0; h < handlers.size(); ++h) {
        handlers[h]->SaveState(&probe_.handler_states[h]);
      }
    }

    absl::StatusOr<Outcome> r = inst.engine->Handle(e.exit, *vcpu, m.memory);
    EventResult& res = out->events.emplace_back();
    res.regs_after = vcpu->regs;
    if (!r.ok()) {
      res.code = r.status().code();
      res.error = static_cast<std::string>(r.status().message());
    } else {
      res.outcome = *r;
    }
    if (check_events) {
      const VcpuRegs& after = vcpu->regs;
      if (!r.ok()) {
        if (after != before) {
          fail(Oracle::kRegisterHygiene, k,
               absl::StrCat("the exit failed (", r.status().ToString(), ") but changed registers"));
          return absl::OkStatus();
        }
      } else {
        const Outcome& o = *r;
        const bool completed =
            o.kind == Outcome::Kind::kRetired || o.kind == Outcome::Kind::kIgnored;
        // --- rip-progress ---
        if (completed) {
          const uint8_t len = e.exit.instruction_length;
          const uint64_t want_a = AdvancedRip(before.rip, len, before.in_64bit_mode());
          const uint64_t want_b = AdvancedRip(before.rip, len, after.in_64bit_mode());
          const PendingException want_pending = (before.rflags & kRflagsTf) != 0
                                                    ? PendingException::SingleStep()
                                                    : PendingException{};
          if (after.rip != want_a && after.rip != want_b) {
            fail(Oracle::kRipProgress, k,
                 absl::StrFormat("%s: RIP %#x after the exit, expected %#x (old RIP %#x + "
                                 "length %u%s)",
                                 OutcomeKindName(o.kind), after.rip, want_a, before.rip, len,
                                 before.in_64bit_mode() ? "" : ", wrapped at 32 bits"));
            return absl::OkStatus();
          }
          if (after.pending != want_pending) {
            fail(Oracle::kRipProgress, k,
                 absl::StrFormat("%s: pending exception %s, expected %s (RFLAGS.TF=%d)",
                                 OutcomeKindName(o.kind), DescribePending(after.pending),
                                 DescribePending(want_pending), (before.rflags & kRflagsTf) != 0));
            return absl::OkStatus();
          }
          if ((after.interruptibility & (kBlockingBySti | kBlockingByMovSs)) != 0) {
            fail(Oracle::kRipProgress, k,
                 absl::StrFormat("%s: STI/MOV-SS blocking %#x not cleared", OutcomeKindName(o.kind),
                                 after.interruptibility));
            return absl::OkStatus();
          }
        } else if (o.kind == Outcome::Kind::kGpInjected) {
          if (after.rip != before.rip || after.pending != PendingException::Gp0()) {
            fail(Oracle::kRipProgress, k,
                 absl::StrFormat("#GP: RIP %#x -> %#x (must not move), pending %s (must be "
                                 "#GP(0))",
                                 before.rip, after.rip, DescribePending(after.pending)));
            return absl::OkStatus();
          }
        } else {
          fail(Oracle::kRipProgress, k,
               absl::StrFormat("outcome kind %s is neither retired nor a fault",
                               OutcomeKindName(o.kind)));
          return absl::OkStatus();
        }
        // --- register-hygiene ---
        uint32_t skip = 0;
        if (completed && o.access == Access::kRead) {
          const uint64_t want_rax = o.value & kLow32;
          const uint64_t want_rdx = o.value >> 32;
          if (after.reg(Gpr::kRax) != want_rax || after.reg(Gpr::kRdx) != want_rdx) {
            fail(Oracle::kRegisterHygiene, k,
                 absl::StrFormat("rdmsr returned %#x: RAX %#x RDX %#x, expected RAX %#x RDX "
                                 "%#x (upper halves zero)",
                                 o.value, after.reg(Gpr::kRax), after.reg(Gpr::kRdx), want_rax,
                                 want_rdx));
            return absl::OkStatus();
          }
          skip = (1u << static_cast<int>(Gpr::kRax)) | (1u << static_cast<int>(Gpr::kRdx));
        }
        const int g = FirstGprDiff(before, after, skip);
        if (g >= 0) {
          fail(Oracle::kRegisterHygiene, k,
               absl::StrFormat("%s %s changed %s: %#x -> %#x", OutcomeKindName(o.kind),
                               AccessName(o.access), GprName(static_cast<Gpr>(g)), before.gpr[g],
                               after.gpr[g]));
          return absl::OkStatus();
        }
        if (after.cr0 != before.cr0 || after.cr4 != before.cr4 || after.rflags != before.rflags ||
            after.cs_l != before.cs_l) {
          fail(Oracle::kRegisterHygiene, k,
               absl::StrFormat("CR0/CR4/RFLAGS/CS.L changed: %#x/%#x/%#x/%d -> %#x/%#x/%#x/%d",
                               before.cr0, before.cr4, before.rflags, before.cs_l, after.cr0,
                               after.cr4, after.rflags, after.cs_l));
          return absl::OkStatus();
        }
        // --- fault-atomicity ---
        if (o.kind == Outcome::Kind::kGpInjected) {
          std::string what;
          for (size_t i = 0; i < vcpu->slots.size() && what.empty(); ++i) {
            if (vcpu->slots[i] != probe_.slots[i]) {
              what = absl::StrFormat("vCPU slot %s %#x -> %#x",
                                     m.controller->layout().vcpu_slots()[i].name, probe_.slots[i],
                                     vcpu->slots[i]);
            }
          }
          const std::vector<uint64_t>& vm = m.controller->vm_slots();
          for (size_t i = 0; i < vm.size() && what.empty(); ++i) {
            if (vm[i] != probe_.vm_slots[i]) {
              what = absl::StrFormat("VM slot %s %#x -> %#x",
                                     m.controller->layout().vm_slots()[i].name, probe_.vm_slots[i],
                                     vm[i]);
            }
          }
          const auto& handlers = m.controller->handlers();
          for (size_t h = 0; h < handlers.size() && what.empty(); ++h) {
            handlers[h]->SaveState(&scratch_);
            if (scratch_ != probe_.handler_states[h]) {
              what = absl::StrFormat("internal state of handler #%u", h);
            }
          }
          if (what.empty() && !m.controller->last_writes().writes().empty()) {
            what = "guest memory written";
          }
          VcpuRegs regs_wo_pending = vcpu->regs;
          regs_wo_pending.pending = before.pending;
          if (what.empty() && regs_wo_pending != before) what = "registers";
          if (!what.empty()) {
            fail(Oracle::kFaultAtomicity, k,
                 absl::StrFormat("#GP on %s %s changed state: %s", AccessName(o.access),
                                 m.controller->MsrName(o.index), what));
            return absl::OkStatus();
          }
        }
        // --- read-after-write ---
        if (options_.read_after_write && o.kind == Outcome::Kind::kRetired &&
            o.access == Access::kWrite && !o.unknown_msr && IsPlainStorage(o.index)) {
          Vcpu probe = *vcpu;
          probe.regs.reg(Gpr::kRcx) = o.index;
          probe.regs.pending = PendingException{};
          Exit rd = e.exit;
          if (rd.vendor == Vendor::kAmdSvm) {
            rd.info1 = 0;
          } else {
            rd.reason = kVmxExitRdmsr;
          }
          absl::StatusOr<Outcome> back = inst.engine->Handle(rd, probe, m.memory);
          if (!back.ok() || back->kind != Outcome::Kind::kRetired || back->value != o.value) {
            fail(Oracle::kReadAfterWrite, k,
                 absl::StrFormat("wrmsr %s <- %#x retired, then rdmsr gave %s",
                                 m.controller->MsrName(o.index), o.value, DescribeOutcome(back)));
            return absl::OkStatus();
          }
        }
      }
    }
    if (!r.ok()) break;  // The VM stopped.
  }
  out->final_digest = NormalizedDigest(m);
  return absl::OkStatus();
}

absl::StatusOr<absl::optional<OracleFailure>> OracleRunner::Check(const TraceModel& trace) {
  failure_.reset();
  const size_t n = std::min(trace.events.size(), options_.max_events);
  const size_t mid = n / 2;

  RunResult a;
  Snapshot midpoint;
  RETURN_IF_ERROR(Run(trace, 0, nullptr, Junk::kAsRecorded, /*check_events=*/true, &a,
                      options_.snapshot_resume ? &midpoint : nullptr, mid));
  if (failure_.has_value()) return failure_;

  // Compares run `b` (events from `offset`) with run `a`; on a difference records `o`.
  auto compare = [&](Oracle o, const RunResult& b, size_t offset, bool masked) -> bool {
    const size_t count = std::min(a.events.size() - offset, b.events.size());
    for (size_t k = 0; k < count; ++k) {
      const EventResult& x = a.events[offset + k];
      const EventResult& y = b.events[k];
      const VcpuRegs rx = masked ? MaskUpper(x.regs_after) : x.regs_after;
      const VcpuRegs ry = masked ? MaskUpper(y.regs_after) : y.regs_after;
      if (x.code != y.code || x.error != y.error || !SameOutcome(x.outcome, y.outcome) ||
          rx != ry) {
        const std::string dx = x.code == absl::StatusCode::kOk ? DescribeOutcome(x.outcome)
                                                               : absl::StrCat("error ", x.error);
        const std::string dy = y.code == absl::StatusCode::kOk ? DescribeOutcome(y.outcome)
                                                               : absl::StrCat("error ", y.error);
        failure_ = OracleFailure{
            o, offset + k,
            absl::StrFormat("first run: %s (rax %#x rdx %#x rip %#x); other run: %s (rax %#x "
                            "rdx %#x rip %#x)",
                            dx, rx.reg(Gpr::kRax), rx.reg(Gpr::kRdx), rx.rip, dy, ry.reg(Gpr::kRax),
                            ry.reg(Gpr::kRdx), ry.rip)};
        return false;
      }
    }
    if (a.events.size() - offset != b.events.size()) {
      failure_ = OracleFailure{o, offset + count,
                               absl::StrFormat("first run stopped after %u events, other run "
                                               "after %u",
                                               a.events.size() - offset, b.events.size())};
      return false;
    }
    if (a.final_digest != b.final_digest) {
      failure_ = OracleFailure{o, n,
                               absl::StrFormat("final-state digests differ: %#x vs %#x",
                                               a.final_digest, b.final_digest)};
      return false;
    }
    return true;
  };

  if (options_.determinism) {
    RunResult b;
    RETURN_IF_ERROR(Run(trace, 0, nullptr, Junk::kAsRecorded, false, &b, nullptr, 0));
    if (!compare(Oracle::kDeterminism, b, 0, false)) return failure_;
  }
  if (options_.upper_half_independence) {
    RunResult b;
    RETURN_IF_ERROR(Run(trace, 0, nullptr, Junk::kFlipped, false, &b, nullptr, 0));
    if (!compare(Oracle::kUpperHalfIndependence, b, 0, true)) return failure_;
  }
  if (options_.snapshot_resume && a.midpoint_taken) {
    RunResult b;
    RETURN_IF_ERROR(Run(trace, mid, &midpoint, Junk::kAsRecorded, false, &b, nullptr, 0));
    if (!compare(Oracle::kSnapshotResume, b, mid, false)) return failure_;
  }
  return absl::optional<OracleFailure>();
}

std::string FormatFailure(const OracleFailure& failure, const TraceModel& trace,
                          absl::string_view reproducer, absl::string_view cli) {
  std::string out = absl::StrFormat("==msrtrace-oracle== FAILED: %s\n", OracleName(failure.oracle));
  if (failure.event < trace.events.size()) {
    const ExitEvent& e = trace.events[failure.event];
    const absl::optional<Access> access = MsrAccessOf(e.exit);
    absl::StrAppendFormat(
        &out,
        "  event #%u (seq %u, vcpu %u): %s index %#x  rcx=%#x rax=%#x rdx=%#x\n"
        "    rip=%#x len=%u rflags=%#x cr0=%#x cr4=%#x efer=%#x cs.l=%d intr=%#x %s\n",
        failure.event, e.seq, e.vcpu_id, access ? AccessName(*access) : "non-msr-exit", e.index(),
        e.rcx, e.rax, e.rdx, e.rip, e.exit.instruction_length, e.rflags, e.cr0, e.cr4, e.efer,
        e.cs_l, e.interruptibility, VendorName(e.exit.vendor));
  } else {
    absl::StrAppendFormat(&out, "  after the last event (%u events)\n", trace.events.size());
  }
  absl::StrAppendFormat(&out, "  %s\n", failure.detail);
  // The replay driver checks the architectural rules (rip-progress, register-hygiene,
  // fault-atomicity), --repeat determinism and --resume-after snapshot-resume equivalence itself.
  const size_t mid = trace.events.size() / 2;
  absl::StrAppendFormat(&out,
                        "  reproduce: %s <input>\n"
                        "             %s replay --repeat=2%s <input>\n",
                        reproducer, cli,
                        mid > 0 ? absl::StrFormat(" --resume-after=%u", mid) : std::string());
  return out;
}

}  // namespace fuzz
}  // namespace msrtrace
