#include "harness/replay/exit_check.h"

#include <algorithm>
#include <new>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "harness/core/enum_names.h"

namespace msrtrace {
namespace {

constexpr uint64_t kLow32 = 0xffffffffull;
constexpr uint32_t kBlocking = kBlockingBySti | kBlockingByMovSs;

std::string PendingText(const PendingException& p) {
  if (!p.valid) return "none";
  std::string s;
  switch (p.vector) {
    case kVectorGp:
      s = "#GP";
      break;
    case kVectorDb:
      s = "#DB";
      break;
    default:
      s = absl::StrCat("vector ", p.vector);
  }
  if (p.has_error_code) absl::StrAppendFormat(&s, "(%#x)", p.error_code);
  if (p.payload != 0) absl::StrAppendFormat(&s, " payload %#x", p.payload);
  return s;
}

void DiffU64(std::string* out, const char* name, uint64_t expected, uint64_t actual) {
  if (expected == actual) return;
  if (!out->empty()) out->append("; ");
  absl::StrAppendFormat(out, "%s: expected %#x actual %#x", name, expected, actual);
}

std::string HexBytes(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n && i < 64; ++i) absl::StrAppendFormat(&s, "%02x", p[i]);
  if (n > 64) s.append("...");
  return s;
}

std::string WritesText(const ExitEvent& ev) {
  if (ev.memory_writes.empty()) return "no writes";
  std::vector<std::string> parts;
  for (const RecordedMemoryWrite& w : ev.memory_writes) {
    parts.push_back(absl::StrFormat(
        "%u bytes at %#x: %s", w.bytes.size(), w.gpa,
        HexBytes(reinterpret_cast<const uint8_t*>(w.bytes.data()), w.bytes.size())));
  }
  return absl::StrJoin(parts, ", ");
}

std::string LogText(const WriteLog& log) {
  if (log.empty()) return "no writes";
  std::vector<std::string> parts;
  for (const MemoryWrite& w : log.writes()) {
    const absl::Span<const uint8_t> b = log.BytesOf(w);
    parts.push_back(
        absl::StrFormat("%u bytes at %#x: %s", w.len, w.gpa, HexBytes(b.data(), b.size())));
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace

// Records a divergence of `kind` at event `ev`. `expected_text` and `actual_text` (string
// expressions) are evaluated only when the sink keeps details, so divergences past its limit
// cost no formatting or allocation.
#define MSRTRACE_REPORT_DIVERGENCE(kind, ev, expected_text, actual_text) \
  do {                                                                   \
    Divergence* msrtrace_d_ = Add((kind), (ev));                         \
    if (msrtrace_d_ != nullptr) {                                        \
      msrtrace_d_->expected = (expected_text);                           \
      msrtrace_d_->actual = (actual_text);                               \
    }                                                                    \
  } while (0)

void ApplyEventInputs(const ExitEvent& e, VcpuRegs* r) {
  r->pending = PendingException{};
  r->reg(Gpr::kRcx) = e.rcx;
  if ((e.known & kFieldRaxRdxIn) != 0) {
    r->reg(Gpr::kRax) = e.rax;
    r->reg(Gpr::kRdx) = e.rdx;
  }
  if ((e.known & kFieldRip) != 0) r->rip = e.rip;
  if ((e.known & kFieldMode) != 0) {
    r->rflags = e.rflags;
    r->cr0 = e.cr0;
    r->cr4 = e.cr4;
    r->efer = e.efer;
    r->cs_l = e.cs_l;
    r->interruptibility = e.interruptibility;
  }
}

ExitChecker::ExitChecker(Machine* machine, ExitEngine* engine, DivergenceSink* sink,
                         ExitCheckOptions options)
    : machine_(machine),
      engine_(engine),
      sink_(sink),
      options_(options),
      result_(absl::UnknownError("no exit run yet")) {}

void ExitChecker::BeginRun() {
  std::fill(gapped_.begin(), gapped_.end(), 0);
  gaps_ = 0;
  guest_exits_ = 0;
  stateful_of_ = nullptr;
}

ABSL_ATTRIBUTE_NOINLINE void ExitChecker::CaptureAll(const Vcpu& v) {
  const Controller& ctl = *machine_->controller;
  pre_slots_.assign(v.slots.begin(), v.slots.end());
  pre_vm_slots_.assign(ctl.vm_slots().begin(), ctl.vm_slots().end());
  const auto& handlers = ctl.handlers();
  for (size_t h = 0; h < handlers.size(); ++h) handlers[h]->SaveState(&pre_handler_states_[h]);
}

void ExitChecker::FindStatefulHandlers(const Controller& ctl) {
  const auto& handlers = ctl.handlers();
  stateful_.clear();
  for (size_t h = 0; h < handlers.size(); ++h) {
    if (!MsrHandler::KeepsNoInternalState(*handlers[h])) stateful_.push_back(h);
  }
  stateful_of_ = &ctl;
  stateful_handler_count_ = handlers.size();
}

absl::Status ExitChecker::Run(const ExitEvent& ev) {
  Machine& m = *machine_;
  Vcpu* v = m.FindVcpu(ev.vcpu_id);
  if (ABSL_PREDICT_FALSE(v == nullptr)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "event seq %u names vCPU %u, which the snapshot does not have", ev.seq, ev.vcpu_id));
  }
  vcpu_ = v;
  const size_t pos = static_cast<size_t>(v - m.vcpus.data());
  if (gapped_.size() < m.vcpus.size()) gapped_.resize(m.vcpus.size(), 0);
  if (ev.lost_before != 0) {
    ++gaps_;
    gapped_[pos] = 1;
  }
  after_gap_ = gapped_[pos] != 0;

  VcpuRegs& r = v->regs;
  if (ABSL_PREDICT_TRUE(!ev.host_initiated)) {  // A host access reads no register.
    ApplyEventInputs(ev, &r);
    r.reg(Gpr::kRcx) ^= options_.junk_rcx;
    r.reg(Gpr::kRax) ^= options_.junk_rax;
    r.reg(Gpr::kRdx) ^= options_.junk_rdx;
  }
  before_ = r;
  Controller& ctl = *m.controller;
  bool journal = false;
  if (options_.check_architecture) {
    // What fault atomicity compares: the exiting vCPU's slots, the VM-wide slots and every
    // handler's internal state (guest memory: the controller's write log). Reused buffers.
    const auto& handlers = ctl.handlers();
    pre_handler_states_.resize(handlers.size());
    if (ABSL_PREDICT_FALSE(engine_ != checked_engine_)) {
      checked_engine_ = engine_;
      direct_controller_ = engine_->DirectController();
    }
    full_capture_ = ev.host_initiated || direct_controller_ != &ctl;
    if (!ev.host_initiated && options_.full_check_interval != 0 &&
        ++guest_exits_ >= options_.full_check_interval) {
      guest_exits_ = 0;  // Every full_check_interval-th guest exit (no division per exit).
      full_capture_ = true;
    }
    if (full_capture_) {
      CaptureAll(*v);
    } else {
      // The slots the exit reaches are noted as it runs; the handlers with internal state are
      // saved now.
      journal = true;
      if (ABSL_PREDICT_FALSE(stateful_of_ != &ctl || stateful_handler_count_ != handlers.size())) {
        FindStatefulHandlers(ctl);
      }
      for (const uint32_t h : stateful_) handlers[h]->SaveState(&pre_handler_states_[h]);
    }
  }
  access_ = MsrAccessOf(ev.exit).value_or(Access::kRead);
  if (ABSL_PREDICT_FALSE(ev.host_initiated)) {
    RunHost(ev);  // harness/replay/exit_check_host.cc
    return absl::OkStatus();
  }
  if (journal) {
    journal_.Clear();
    ctl.set_state_journal(&journal_);
  }
  // The engine builds its result in result_ itself (guaranteed copy elision into a placement
  // new): assigning would copy an outcome whose fields were just stored one by one, and that
  // wide load stalls store-to-load forwarding on every exit.
  result_.~StatusOr();
  new (&result_) absl::StatusOr<Outcome>(engine_->Handle(ev.exit, *v, m.memory));
  if (journal) ctl.set_state_journal(nullptr);
  observed_ =
      ABSL_PREDICT_TRUE(result_.ok()) ? RecordedKindOf(result_->kind) : RecordedKind::kVmmError;
  if (options_.compare_recording) CompareWithRecording(ev);
  if (options_.check_architecture) CheckArchitecture(ev);
  return absl::OkStatus();
}

Divergence* ExitChecker::Add(DivergenceKind kind, const ExitEvent& ev) {
  Divergence* d = sink_->Add(kind);
  if (d == nullptr) return nullptr;
  d->kind = kind;
  d->seq = ev.seq;
  d->vcpu_id = ev.vcpu_id;
  d->index = ev.index();
  d->access = access_;
  d->msr_name = machine_->controller->MsrName(d->index);
  d->reg_diff = RegDiff(ev);
  return d;
}

// The registers after the exit as the recording (where known) or the architecture expects them,
// compared with the actual ones.
std::string ExitChecker::RegDiff(const ExitEvent& ev) const {
  if (ev.host_initiated) return {};  // No register is an output of a host access.
  VcpuRegs exp = before_;
  const VcpuRegs& act = vcpu_->regs;
  const RecordedKind kind =
      ev.kind != RecordedKind::kUnspecified && !after_gap_ ? ev.kind : observed_;
  if (kind == RecordedKind::kRetired || kind == RecordedKind::kIgnored) {
    if (access_ == Access::kRead) {
      exp.reg(Gpr::kRax) = act.reg(Gpr::kRax) & kLow32;
      exp.reg(Gpr::kRdx) = act.reg(Gpr::kRdx) & kLow32;
      if (result_.ok()) {
        exp.reg(Gpr::kRax) = result_->value & kLow32;
        exp.reg(Gpr::kRdx) = result_->value >> 32;
      }
    }
    exp.rip = before_.rip + ev.exit.instruction_length;
    if (!before_.in_64bit_mode()) exp.rip &= kLow32;
    exp.interruptibility &= ~kBlocking;
    exp.pending =
        (before_.rflags & kRflagsTf) != 0 ? PendingException::SingleStep() : PendingException{};
    exp.efer = act.efer;  // A retired EFER write changes it; nothing to predict.
  } else if (kind == RecordedKind::kGpInjected) {
    exp.pending = PendingException::Gp0();
  }
  if (!after_gap_) {
    if ((ev.known & kFieldRaxRdxOut) != 0 && kind != RecordedKind::kVmmError) {
      exp.reg(Gpr::kRax) = ev.rax_out;
      exp.reg(Gpr::kRdx) = ev.rdx_out;
    }
    if ((ev.known & kFieldRipOut) != 0) exp.rip = ev.rip_out;
    if ((ev.known & kFieldPendingOut) != 0) exp.pending = ev.pending_out;
  }
  std::string out;
  for (int i = 0; i < kNumGprs; ++i) {
    DiffU64(&out, GprName(static_cast<Gpr>(i)), exp.gpr[i], act.gpr[i]);
  }
  DiffU64(&out, "rip", exp.rip, act.rip);
  DiffU64(&out, "rflags", exp.rflags, act.rflags);
  DiffU64(&out, "cr0", exp.cr0, act.cr0);
  DiffU64(&out, "cr4", exp.cr4, act.cr4);
  DiffU64(&out, "efer", exp.efer, act.efer);
  DiffU64(&out, "cs.l", exp.cs_l, act.cs_l);
  DiffU64(&out, "interruptibility", exp.interruptibility, act.interruptibility);
  if (exp.pending != act.pending) {
    if (!out.empty()) out.append("; ");
    absl::StrAppend(&out, "pending: expected ", PendingText(exp.pending), " actual ",
                    PendingText(act.pending));
  }
  return out;
}

void ExitChecker::CompareWithRecording(const ExitEvent& ev) {
  const VcpuRegs& r = vcpu_->regs;
  if (ev.kind != RecordedKind::kUnspecified && ev.kind != observed_) {
    auto expected = [&] {
      std::string s = RecordedKindName(ev.kind);
      if (ev.kind == RecordedKind::kVmmError && !ev.error.empty()) {
        absl::StrAppend(&s, " (", ev.error, ")");
      }
      return s;
    };
    auto actual = [&] {
      std::string s = RecordedKindName(observed_);
      if (!result_.ok()) absl::StrAppend(&s, " (", result_.status().message(), ")");
      return s;
    };
    MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kOutcome, ev, expected(), actual());
    return;  // The value comparisons would only repeat this.
  }
  if (ev.route != MsrRoute::kUnspecified && result_.ok() && result_->route != ev.route) {
    MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kRoute, ev, MsrRouteName(ev.route),
                               MsrRouteName(result_->route));
  }
  if (observed_ == RecordedKind::kVmmError) return;  // Nothing else happened.
  if (after_gap_) return;                            // Past a capture gap: the outcome kind only.
  const bool skip_values =
      ev.volatile_value &&
      (options_.volatile_policy == VolatilePolicy::kKindOnly ||
       (options_.volatile_policy == VolatilePolicy::kAuto && (ev.known & kFieldEnv) == 0));
  if ((ev.known & kFieldRaxRdxOut) != 0 && !skip_values &&
      (r.reg(Gpr::kRax) != ev.rax_out || r.reg(Gpr::kRdx) != ev.rdx_out)) {
    MSRTRACE_REPORT_DIVERGENCE(
        DivergenceKind::kValue, ev, absl::StrFormat("rdx:rax=%#x:%#x", ev.rdx_out, ev.rax_out),
        absl::StrFormat("rdx:rax=%#x:%#x", r.reg(Gpr::kRdx), r.reg(Gpr::kRax)));
  }
  if ((ev.known & kFieldRipOut) != 0 && r.rip != ev.rip_out) {
    MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kRip, ev, absl::StrFormat("rip=%#x", ev.rip_out),
                               absl::StrFormat("rip=%#x", r.rip));
  }
  if ((ev.known & kFieldPendingOut) != 0 && r.pending != ev.pending_out) {
    MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kPendingException, ev, PendingText(ev.pending_out),
                               PendingText(r.pending));
  }
  if (skip_values) return;
  CompareWrites(ev);
}

void ExitChecker::CompareWrites(const ExitEvent& ev) {
  const WriteLog& log = machine_->controller->last_writes();
  if ((ev.known & kFieldMemoryWrites) != 0) {
    bool same = log.writes().size() == ev.memory_writes.size();
    for (size_t i = 0; same && i < ev.memory_writes.size(); ++i) {
      const MemoryWrite& w = log.writes()[i];
      const absl::Span<const uint8_t> b = log.BytesOf(w);
      const std::string& rb = ev.memory_writes[i].bytes;
      same = w.gpa == ev.memory_writes[i].gpa && b.size() == rb.size() &&
             std::equal(b.begin(), b.end(), reinterpret_cast<const uint8_t*>(rb.data()));
    }
    if (!same) {
      MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kMemoryWrites, ev, WritesText(ev), LogText(log));
    }
  } else if ((ev.known & kFieldMemoryDigest) != 0 && log.Digest() != ev.memory_writes_digest) {
    MSRTRACE_REPORT_DIVERGENCE(
        DivergenceKind::kMemoryWrites, ev,
        absl::StrFormat("writes digest %#018x", ev.memory_writes_digest),
        absl::StrFormat("writes digest %#018x (%s)", log.Digest(), LogText(log)));
  }
}

void ExitChecker::CheckArchitecture(const ExitEvent& ev) {
  const VcpuRegs& a = vcpu_->regs;
  const VcpuRegs& b = before_;
  if (observed_ == RecordedKind::kVmmError) {
    if (a != b) {
      MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kArchVmmErrorChangedState, ev,
                                 "registers unchanged", "registers changed");
    }
    return;
  }
  const Outcome& o = *result_;
  if (observed_ == RecordedKind::kUnspecified) {
    MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kArchNoOutcome, ev, "retired, ignored or #GP",
                               absl::StrCat("outcome kind ", OutcomeKindName(o.kind)));
    return;
  }
  const bool completed = observed_ == RecordedKind::kRetired || observed_ == RecordedKind::kIgnored;
  // GPRs the instruction may write: RAX and RDX of a completed RDMSR.
  const bool writes_rax_rdx = completed && access_ == Access::kRead;
  // The usual case first: every rule holds (one predictable branch); the checks below say
  // which one does not.
  if (ABSL_PREDICT_TRUE(RulesHold(ev, completed, writes_rax_rdx))) return;
  for (int i = 0; i < kNumGprs; ++i) {
    const Gpr g = static_cast<Gpr>(i);
    if (writes_rax_rdx && (g == Gpr::kRax || g == Gpr::kRdx)) continue;
    if (a.gpr[i] != b.gpr[i]) {
      MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kArchGprClobbered, ev,
                                 absl::StrFormat("%s=%#x (unchanged)", GprName(g), b.gpr[i]),
                                 absl::StrFormat("%s=%#x", GprName(g), a.gpr[i]));
      break;
    }
  }
  if (a.cr0 != b.cr0 || a.cr4 != b.cr4 || a.rflags != b.rflags || a.cs_l != b.cs_l) {
    MSRTRACE_REPORT_DIVERGENCE(
        DivergenceKind::kArchControlRegs, ev,
        absl::StrFormat("cr0/cr4/rflags/cs.l=%#x/%#x/%#x/%d (unchanged)", b.cr0, b.cr4, b.rflags,
                        b.cs_l),
        absl::StrFormat("cr0/cr4/rflags/cs.l=%#x/%#x/%#x/%d", a.cr0, a.cr4, a.rflags, a.cs_l));
  }
  if (completed) {
    uint64_t rip = b.rip + ev.exit.instruction_length;
    if (!b.in_64bit_mode()) rip &= kLow32;  // The mode before the exit (file comment).
    if (a.rip != rip) {
      MSRTRACE_REPORT_DIVERGENCE(
          DivergenceKind::kArchRipAdvance, ev,
          absl::StrFormat("rip=%#x (%#x + %u%s)", rip, b.rip, ev.exit.instruction_length,
                          b.in_64bit_mode() ? "" : ", wrapped at 32 bits"),
          absl::StrFormat("rip=%#x", a.rip));
    }
    if (writes_rax_rdx &&
        (a.reg(Gpr::kRax) != (o.value & kLow32) || a.reg(Gpr::kRdx) != (o.value >> 32))) {
      MSRTRACE_REPORT_DIVERGENCE(
          DivergenceKind::kArchUpperHalves, ev,
          absl::StrFormat("rax=%#x rdx=%#x (value %#x, upper halves zero)", o.value & kLow32,
                          o.value >> 32, o.value),
          absl::StrFormat("rax=%#x rdx=%#x", a.reg(Gpr::kRax), a.reg(Gpr::kRdx)));
    }
    const PendingException want =
        (b.rflags & kRflagsTf) != 0 ? PendingException::SingleStep() : PendingException{};
    if (a.pending != want) {
      MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kArchSingleStep, ev, PendingText(want),
                                 PendingText(a.pending));
    }
    if ((a.interruptibility & kBlocking) != 0) {
      MSRTRACE_REPORT_DIVERGENCE(
          DivergenceKind::kArchInterruptShadow, ev,
          absl::StrFormat("interruptibility=%#x", b.interruptibility & ~kBlocking),
          absl::StrFormat("interruptibility=%#x", a.interruptibility));
    }
    return;
  }
  // #GP.
  if (a.rip != b.rip) {
    MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kArchGpRipMoved, ev,
                               absl::StrFormat("rip=%#x", b.rip),
                               absl::StrFormat("rip=%#x", a.rip));
  }
  if (a.pending != PendingException::Gp0()) {
    MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kArchGpPending, ev,
                               PendingText(PendingException::Gp0()), PendingText(a.pending));
  }
  std::string what;
  if (a.efer != b.efer) absl::StrAppendFormat(&what, "EFER %#x -> %#x; ", b.efer, a.efer);
  if (a.interruptibility != b.interruptibility) {
    absl::StrAppendFormat(&what, "interruptibility %#x -> %#x; ", b.interruptibility,
                          a.interruptibility);
  }
  StateChanges(&what);
  if (!what.empty()) {
    what.resize(what.size() - 2);
    MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kArchGpNotAtomic, ev, "no state change", what);
  }
}

// True when every check of CheckArchitecture passes, for an exit that retired, was ignored
// (`completed`) or got #GP. Differences are OR-ed together so that the usual case takes no
// data-dependent branch until the end.
bool ExitChecker::RulesHold(const ExitEvent& ev, bool completed, bool writes_rax_rdx) {
  const VcpuRegs& a = vcpu_->regs;
  const VcpuRegs& b = before_;
  const uint64_t value = result_->value;
  const uint64_t want_rax = writes_rax_rdx ? value & kLow32 : b.reg(Gpr::kRax);
  const uint64_t want_rdx = writes_rax_rdx ? value >> 32 : b.reg(Gpr::kRdx);
  uint64_t diff = (a.reg(Gpr::kRax) ^ want_rax) | (a.reg(Gpr::kRdx) ^ want_rdx);
  static_assert(static_cast<int>(Gpr::kRax) == 0 && static_cast<int>(Gpr::kRdx) == 2);
  diff |= a.gpr[1] ^ b.gpr[1];
  for (int i = 3; i < kNumGprs; ++i) diff |= a.gpr[i] ^ b.gpr[i];
  diff |= (a.cr0 ^ b.cr0) | (a.cr4 ^ b.cr4) | (a.rflags ^ b.rflags) |
          static_cast<uint64_t>(a.cs_l != b.cs_l);
  if (completed) {
    uint64_t rip = b.rip + ev.exit.instruction_length;
    if (!b.in_64bit_mode()) rip &= kLow32;
    diff |= (a.rip ^ rip) | (a.interruptibility & kBlocking);
    const PendingException want =
        (b.rflags & kRflagsTf) != 0 ? PendingException::SingleStep() : PendingException{};
    return diff == 0 && a.pending == want;
  }
  diff |= (a.rip ^ b.rip) | (a.efer ^ b.efer) | (a.interruptibility ^ b.interruptibility);
  return diff == 0 && a.pending == PendingException::Gp0() && StateUnchanged();
}

// Fault atomicity's quick answer: true when no slot, handler state or guest memory changed
// (StateChanges says what did).
bool ExitChecker::StateUnchanged() {
  const Controller& ctl = *machine_->controller;
  if (!ctl.last_writes().empty()) return false;
  const std::vector<uint64_t>& vm = ctl.vm_slots();
  if (full_capture_) {
    if (!std::equal(pre_slots_.begin(), pre_slots_.end(), vcpu_->slots.begin(),
                    vcpu_->slots.end()) ||
        !std::equal(pre_vm_slots_.begin(), pre_vm_slots_.end(), vm.begin(), vm.end())) {
      return false;
    }
  } else {
    // Every entry equal to its slot: unchanged. (A later entry of a slot that changed and came
    // back differs; StateChanges then finds nothing to report.)
    for (const StateJournal::Entry& e : journal_.entries()) {
      if ((e.vm ? vm[e.id] : vcpu_->slots[e.id]) != e.before) return false;
    }
  }
  return ChangedHandler() < 0;
}

// The first handler whose SaveState bytes differ from before the exit (every handler after a
// full capture, those with internal state otherwise), or -1.
int ExitChecker::ChangedHandler() {
  const auto& handlers = machine_->controller->handlers();
  auto changed = [&](size_t h) {
    handlers[h]->SaveState(&scratch_);
    return scratch_ != pre_handler_states_[h];
  };
  if (full_capture_) {
    for (size_t h = 0; h < handlers.size() && h < pre_handler_states_.size(); ++h) {
      if (changed(h)) return static_cast<int>(h);
    }
  } else {
    for (const uint32_t h : stateful_) {
      if (changed(h)) return static_cast<int>(h);
    }
  }
  return -1;
}

// Slots (the first changed one of the vCPU's and of the VM's), handler state (the first changed
// handler) and guest memory; the same text from a full capture and from the journal.
void ExitChecker::StateChanges(std::string* what) {
  const Controller& ctl = *machine_->controller;
  if (full_capture_) {
    if (!std::equal(pre_slots_.begin(), pre_slots_.end(), vcpu_->slots.begin(),
                    vcpu_->slots.end())) {
      what->append(FirstSlotChange(pre_slots_, vcpu_->slots, true));
    }
    const std::vector<uint64_t>& vm = ctl.vm_slots();
    if (!std::equal(pre_vm_slots_.begin(), pre_vm_slots_.end(), vm.begin(), vm.end())) {
      what->append(FirstSlotChange(pre_vm_slots_, vm, false));
    }
  } else {
    JournalChanges(what);
  }
  if (const int h = ChangedHandler(); h >= 0) {
    absl::StrAppendFormat(what, "internal state of handler #%d; ", h);
  }
  if (!ctl.last_writes().empty()) what->append("guest memory written; ");
}

// The journal's slots: a slot changed when its first entry (its value before the exit) differs
// from its value now. Reports the lowest changed vCPU slot and the lowest changed VM slot, as
// FirstSlotChange does for a full capture.
void ExitChecker::JournalChanges(std::string* what) {
  const std::vector<StateJournal::Entry>& entries = journal_.entries();
  const std::vector<uint64_t>& vm = machine_->controller->vm_slots();
  auto now = [&](const StateJournal::Entry& e) { return e.vm ? vm[e.id] : vcpu_->slots[e.id]; };
  // A slot whose every entry still equals it is unchanged: the usual case, one pass.
  size_t first = 0;
  while (first < entries.size() && now(entries[first]) == entries[first].before) ++first;
  if (first == entries.size()) return;
  const StateJournal::Entry* lowest[2] = {nullptr, nullptr};  // vCPU, VM.
  for (size_t i = first; i < entries.size(); ++i) {
    const StateJournal::Entry& e = entries[i];
    if (now(e) == e.before) continue;
    bool seen = false;  // Only a slot's first entry holds its value before the exit.
    for (size_t j = 0; j < i && !seen; ++j) seen = entries[j].vm == e.vm && entries[j].id == e.id;
    if (seen) continue;
    const StateJournal::Entry*& low = lowest[e.vm ? 1 : 0];
    if (low == nullptr || e.id < low->id) low = &e;
  }
  for (const StateJournal::Entry* e : lowest) {
    if (e != nullptr) what->append(SlotChangeText(!e->vm, e->id, e->before, now(*e)));
  }
}

std::string ExitChecker::SlotChangeText(bool vcpu, size_t id, uint64_t pre, uint64_t now) const {
  const StateLayout& layout = machine_->controller->layout();
  const auto& infos = vcpu ? layout.vcpu_slots() : layout.vm_slots();
  const std::string name = id < infos.size() ? infos[id].name : absl::StrCat("#", id);
  return absl::StrFormat("%s slot %s %#x -> %#x; ", vcpu ? "vCPU" : "VM", name, pre, now);
}

std::string ExitChecker::FirstSlotChange(const std::vector<uint64_t>& pre,
                                         const std::vector<uint64_t>& now, bool vcpu) const {
  for (size_t i = 0; i < pre.size() && i < now.size(); ++i) {
    if (pre[i] != now[i]) return SlotChangeText(vcpu, i, pre[i], now[i]);
  }
  return "slots resized; ";
}

#undef MSRTRACE_REPORT_DIVERGENCE

constexpr EnumName<VolatilePolicy> kVolatilePolicyNames[] = {
    {VolatilePolicy::kAuto, "auto"},
    {VolatilePolicy::kExact, "exact"},
    {VolatilePolicy::kKindOnly, "kind-only"},
};

const char* VolatilePolicyName(VolatilePolicy p) { return NameOf(kVolatilePolicyNames, p, "auto"); }

absl::optional<VolatilePolicy> ParseVolatilePolicy(absl::string_view name) {
  return ValueOf(kVolatilePolicyNames, name);
}

const char* DivergenceKindName(DivergenceKind k) {
  switch (k) {
    case DivergenceKind::kOutcome:
      return "outcome";
    case DivergenceKind::kValue:
      return "value";
    case DivergenceKind::kRip:
      return "rip";
    case DivergenceKind::kPendingException:
      return "pending-exception";
    case DivergenceKind::kMemoryWrites:
      return "memory-writes";
    case DivergenceKind::kFinalState:
      return "final-state";
    case DivergenceKind::kNondeterministic:
      return "nondeterministic";
    case DivergenceKind::kResume:
      return "resume";
    case DivergenceKind::kArchRipAdvance:
      return "arch-rip-advance";
    case DivergenceKind::kArchUpperHalves:
      return "arch-upper-halves";
    case DivergenceKind::kArchGprClobbered:
      return "arch-gpr-clobbered";
    case DivergenceKind::kArchGpRipMoved:
      return "arch-gp-rip-moved";
    case DivergenceKind::kArchGpPending:
      return "arch-gp-pending";
    case DivergenceKind::kArchGpNotAtomic:
      return "arch-gp-not-atomic";
    case DivergenceKind::kArchSingleStep:
      return "arch-single-step";
    case DivergenceKind::kArchInterruptShadow:
      return "arch-interrupt-shadow";
    case DivergenceKind::kArchVmmErrorChangedState:
      return "arch-vmm-error-changed-state";
    case DivergenceKind::kArchControlRegs:
      return "arch-control-registers";
    case DivergenceKind::kArchNoOutcome:
      return "arch-no-outcome";
    case DivergenceKind::kRoute:
      return "route";
    case DivergenceKind::kArchHostRegisters:
      return "arch-host-registers";
    case DivergenceKind::kCount:
      break;
  }
  return "unknown";
}

}  // namespace msrtrace
