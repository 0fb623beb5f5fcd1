#include "harness/replay.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "harness/status_macros.h"

namespace msrtrace {
namespace {

constexpr uint64_t kLow32 = 0xffffffffull;
constexpr uint32_t kBlocking = kBlockingBySti | kBlockingByMovSs;
constexpr uint64_t kProgressEvery = 1u << 16;
constexpr uint32_t kMaxReplayVcpus = 16384;  // vCPU ids 0..16383, as the importer accepts.

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

// Counters per MSR without the name (added once at the end).
struct Counts {
  uint64_t reads = 0, writes = 0, faults = 0, ignored = 0, vmm_errors = 0;
};

RecordedKind ObservedKind(const absl::StatusOr<Outcome>& out) {
  return out.ok() ? RecordedKindOf(out->kind) : RecordedKind::kVmmError;
}

// Records a divergence of `kind` at event `ev`. `expected_text` and `actual_text` (string
// expressions) are evaluated only when the divergence is kept with details, so events past
// max_divergences cost no formatting or allocation.
#define MSRTRACE_REPORT_DIVERGENCE(kind, ev, expected_text, actual_text) \
  do {                                                                   \
    Divergence* msrtrace_d_ = Add((kind), &(ev));                        \
    if (msrtrace_d_ != nullptr) {                                        \
      msrtrace_d_->expected = (expected_text);                           \
      msrtrace_d_->actual = (actual_text);                               \
    }                                                                    \
  } while (0)

// One streaming pass over a trace.
class Pass {
 public:
  Pass(const ReplayOptions& options, ReplayResult* result) : options_(options), result_(*result) {}

  absl::Status Run(TraceReader& reader) {
    result_.header = reader.header();
    ASSIGN_OR_RETURN(machine_, BuildMachine(reader.header()));
    absl::Status st = machine_->Restore(reader.snapshot());
    if (!st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "snapshot does not fit handler set '", reader.header().handler_set, "': ", st.message()));
    }
    const absl::Time start = absl::Now();
    ExitEvent ev;
    while (true) {
      absl::StatusOr<bool> more = reader.Next(&ev);
      if (!more.ok()) return more.status();
      if (!*more) break;
      if (absl::Status s = OnEvent(ev); ABSL_PREDICT_FALSE(!s.ok())) {
        return absl::Status(s.code(),
                            absl::StrFormat("byte %u (record %u): %s", reader.record_offset(),
                                            reader.record_number(), s.message()));
      }
      ++result_.events;
      if (options_.resume_after != 0 && result_.events == options_.resume_after) {
        RETURN_IF_ERROR(Resume());
      }
      if (options_.progress && result_.events % kProgressEvery == 0) {
        options_.progress(result_.events, reader.offset());
      }
    }
    const absl::Duration elapsed = absl::Now() - start;
    result_.seconds = absl::ToDoubleSeconds(elapsed);
    result_.events_per_second =
        result_.seconds > 0 ? static_cast<double>(result_.events) / result_.seconds : 0;
    result_.end = reader.end();
    result_.skipped = reader.skipped();
    result_.final_digest = machine_->Digest();
    if (result_.end == TraceEnd::kComplete) {
      result_.recorded_final_digest = reader.trailer().final_state_digest;
      if (result_.recorded_final_digest != 0 &&
          result_.recorded_final_digest != result_.final_digest) {
        Divergence* d = Add(DivergenceKind::kFinalState, nullptr);
        if (d != nullptr) {
          d->expected = absl::StrFormat("%#018x", result_.recorded_final_digest);
          d->actual = absl::StrFormat("%#018x", result_.final_digest);
        }
      }
    }
    FillPerMsr();
    return absl::OkStatus();
  }

 private:
  absl::Status Resume() {
    const Snapshot snap = CaptureSnapshot(*machine_->controller, machine_->vcpus, machine_->memory);
    ASSIGN_OR_RETURN(std::unique_ptr<Machine> fresh, BuildMachine(result_.header));
    RETURN_IF_ERROR(fresh->Restore(snap));
    machine_ = std::move(fresh);
    return absl::OkStatus();
  }

  // Reserves a divergence record: counts it, and returns storage for its details, or nullptr
  // when max_divergences are already kept.
  Divergence* Add(DivergenceKind kind, const ExitEvent* ev) {
    ++result_.divergence_count;
    if (result_.divergences.size() >= options_.max_divergences) return nullptr;
    result_.divergences.emplace_back();
    Divergence& d = result_.divergences.back();
    d.kind = kind;
    if (ev != nullptr) {
      d.seq = ev->seq;
      d.vcpu_id = ev->vcpu_id;
      d.index = ev->index();
      d.access = access_;
      d.msr_name = machine_->controller->MsrName(d.index);
      d.reg_diff = RegDiff(*ev);
    } else {
      d.seq = last_seq_;
    }
    return &d;
  }

  // The registers after the exit as the recording (where known) or the architecture expects
  // them, compared with the actual ones.
  std::string RegDiff(const ExitEvent& ev) const {
    VcpuRegs exp = before_;
    const VcpuRegs& act = *after_;
    const RecordedKind kind = ev.kind != RecordedKind::kUnspecified ? ev.kind : observed_;
    if (kind == RecordedKind::kRetired || kind == RecordedKind::kIgnored) {
      if (access_ == Access::kRead) {
        exp.reg(Gpr::kRax) = act.reg(Gpr::kRax) & kLow32;
        exp.reg(Gpr::kRdx) = act.reg(Gpr::kRdx) & kLow32;
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
    if ((ev.known & kFieldRaxRdxOut) != 0 && kind != RecordedKind::kVmmError) {
      exp.reg(Gpr::kRax) = ev.rax_out;
      exp.reg(Gpr::kRdx) = ev.rdx_out;
    }
    if ((ev.known & kFieldRipOut) != 0) exp.rip = ev.rip_out;
    if ((ev.known & kFieldPendingOut) != 0) exp.pending = ev.pending_out;
    std::string out;
    for (int i = 0; i < kNumGprs; ++i) {
      DiffU64(&out, GprName(static_cast<Gpr>(i)), exp.gpr[i], act.gpr[i]);
    }
    DiffU64(&out, "rip", exp.rip, act.rip);
    DiffU64(&out, "rflags", exp.rflags, act.rflags);
    DiffU64(&out, "efer", exp.efer, act.efer);
    DiffU64(&out, "interruptibility", exp.interruptibility, act.interruptibility);
    if (exp.pending != act.pending) {
      if (!out.empty()) out.append("; ");
      absl::StrAppend(&out, "pending: expected ", PendingText(exp.pending), " actual ",
                      PendingText(act.pending));
    }
    return out;
  }

  absl::Status OnEvent(const ExitEvent& ev) {
    last_seq_ = ev.seq;
    Vcpu* v = machine_->FindVcpu(ev.vcpu_id);
    if (ABSL_PREDICT_FALSE(v == nullptr)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "event seq %u names vCPU %u, which the snapshot does not have", ev.seq, ev.vcpu_id));
    }
    VcpuRegs& r = v->regs;
    r.pending = PendingException{};
    r.reg(Gpr::kRcx) = ev.rcx;
    if ((ev.known & kFieldRaxRdxIn) != 0) {
      r.reg(Gpr::kRax) = ev.rax;
      r.reg(Gpr::kRdx) = ev.rdx;
    }
    if ((ev.known & kFieldRip) != 0) r.rip = ev.rip;
    if ((ev.known & kFieldMode) != 0) {
      r.rflags = ev.rflags;
      r.cr0 = ev.cr0;
      r.cr4 = ev.cr4;
      r.efer = ev.efer;
      r.cs_l = ev.cs_l;
      r.interruptibility = ev.interruptibility;
    }
    before_ = r;
    pre_slots_.assign(v->slots.begin(), v->slots.end());
    Controller& ctl = *machine_->controller;
    pre_vm_slots_.assign(ctl.vm_slots().begin(), ctl.vm_slots().end());

    const absl::optional<Access> access = MsrAccessOf(ev.exit);
    access_ = access.value_or(Access::kRead);
    const absl::StatusOr<Outcome> out = ctl.Handle(ev.exit, *v, machine_->memory);
    after_ = &r;
    observed_ = ObservedKind(out);

    // Statistics.
    Counts& c = counts_[ev.index()];
    if (access_ == Access::kRead) {
      ++c.reads;
      ++result_.reads;
    } else {
      ++c.writes;
      ++result_.writes;
    }
    switch (observed_) {
      case RecordedKind::kGpInjected:
        ++c.faults;
        ++result_.faults;
        break;
      case RecordedKind::kIgnored:
        ++c.ignored;
        ++result_.ignored;
        break;
      case RecordedKind::kVmmError:
        ++c.vmm_errors;
        ++result_.vmm_errors;
        break;
      default:
        break;
    }

    CompareWithRecording(ev, out);
    CheckArchitecture(ev, *v);
    return absl::OkStatus();
  }

  void CompareWithRecording(const ExitEvent& ev, const absl::StatusOr<Outcome>& out) {
    const VcpuRegs& r = *after_;
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
        if (!out.ok()) absl::StrAppend(&s, " (", out.status().message(), ")");
        return s;
      };
      MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kOutcome, ev, expected(), actual());
      return;  // The value comparisons would only repeat this.
    }
    if (observed_ == RecordedKind::kVmmError) return;  // Nothing else happened.
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

  static std::string WritesText(const ExitEvent& ev) {
    if (ev.memory_writes.empty()) return "no writes";
    std::vector<std::string> parts;
    for (const RecordedMemoryWrite& w : ev.memory_writes) {
      parts.push_back(absl::StrFormat(
          "%u bytes at %#x: %s", w.bytes.size(), w.gpa,
          HexBytes(reinterpret_cast<const uint8_t*>(w.bytes.data()), w.bytes.size())));
    }
    return absl::StrJoin(parts, ", ");
  }
  static std::string LogText(const WriteLog& log) {
    if (log.empty()) return "no writes";
    std::vector<std::string> parts;
    for (const MemoryWrite& w : log.writes()) {
      const absl::Span<const uint8_t> b = log.BytesOf(w);
      parts.push_back(
          absl::StrFormat("%u bytes at %#x: %s", w.len, w.gpa, HexBytes(b.data(), b.size())));
    }
    return absl::StrJoin(parts, ", ");
  }
  static std::string HexBytes(const uint8_t* p, size_t n) {
    std::string s;
    for (size_t i = 0; i < n && i < 64; ++i) absl::StrAppendFormat(&s, "%02x", p[i]);
    if (n > 64) s.append("...");
    return s;
  }

  void CheckArchitecture(const ExitEvent& ev, const Vcpu& v) {
    const VcpuRegs& a = *after_;
    const VcpuRegs& b = before_;
    // GPRs the instruction may write: RAX and RDX of a completed RDMSR.
    const bool writes_rax_rdx = access_ == Access::kRead && (observed_ == RecordedKind::kRetired ||
                                                             observed_ == RecordedKind::kIgnored);
    for (int i = 0; i < kNumGprs && observed_ != RecordedKind::kVmmError; ++i) {
      const Gpr g = static_cast<Gpr>(i);
      if (writes_rax_rdx && (g == Gpr::kRax || g == Gpr::kRdx)) continue;
      if (a.gpr[i] != b.gpr[i]) {
        MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kArchGprClobbered, ev,
                                   absl::StrFormat("%s=%#x (unchanged)", GprName(g), b.gpr[i]),
                                   absl::StrFormat("%s=%#x", GprName(g), a.gpr[i]));
        break;
      }
    }
    switch (observed_) {
      case RecordedKind::kRetired:
      case RecordedKind::kIgnored: {
        uint64_t rip = b.rip + ev.exit.instruction_length;
        if (!b.in_64bit_mode()) rip &= kLow32;  // (ref: SDM Vol1 §3.5: EIP outside 64-bit mode)
        if (a.rip != rip) {
          MSRTRACE_REPORT_DIVERGENCE(
              DivergenceKind::kArchRipAdvance, ev,
              absl::StrFormat("rip=%#x (%#x + %u)", rip, b.rip, ev.exit.instruction_length),
              absl::StrFormat("rip=%#x", a.rip));
        }
        if (writes_rax_rdx && ((a.reg(Gpr::kRax) >> 32) != 0 || (a.reg(Gpr::kRdx) >> 32) != 0)) {
          MSRTRACE_REPORT_DIVERGENCE(
              DivergenceKind::kArchUpperHalves, ev, "rax[63:32]=0 rdx[63:32]=0",
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
        break;
      }
      case RecordedKind::kGpInjected: {
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
        if (a.rflags != b.rflags || a.cr0 != b.cr0 || a.cr4 != b.cr4 || a.cs_l != b.cs_l ||
            a.interruptibility != b.interruptibility) {
          what.append("control registers; ");
        }
        if (!std::equal(pre_slots_.begin(), pre_slots_.end(), v.slots.begin(), v.slots.end())) {
          what.append(FirstSlotChange(pre_slots_, v.slots, true));
        }
        const std::vector<uint64_t>& vm = machine_->controller->vm_slots();
        if (!std::equal(pre_vm_slots_.begin(), pre_vm_slots_.end(), vm.begin(), vm.end())) {
          what.append(FirstSlotChange(pre_vm_slots_, vm, false));
        }
        if (!machine_->controller->last_writes().empty()) what.append("guest memory written; ");
        if (!what.empty()) {
          what.resize(what.size() - 2);
          MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kArchGpNotAtomic, ev, "no state change", what);
        }
        break;
      }
      case RecordedKind::kVmmError:
        if (a != b) {
          MSRTRACE_REPORT_DIVERGENCE(DivergenceKind::kArchVmmErrorChangedState, ev,
                                     "registers unchanged", "registers changed");
        }
        break;
      default:
        break;
    }
  }

  std::string FirstSlotChange(const std::vector<uint64_t>& pre, const std::vector<uint64_t>& now,
                              bool vcpu) const {
    const StateLayout& layout = machine_->controller->layout();
    for (size_t i = 0; i < pre.size() && i < now.size(); ++i) {
      if (pre[i] == now[i]) continue;
      const auto& infos = vcpu ? layout.vcpu_slots() : layout.vm_slots();
      const std::string name = i < infos.size() ? infos[i].name : absl::StrCat("#", i);
      return absl::StrFormat("slot %s %#x -> %#x; ", name, pre[i], now[i]);
    }
    return "slots resized; ";
  }

  void FillPerMsr() {
    result_.per_msr.clear();
    result_.per_msr.reserve(counts_.size());
    for (const auto& [index, c] : counts_) {
      MsrCounts m;
      m.index = index;
      m.name = machine_->controller->MsrName(index);
      m.reads = c.reads;
      m.writes = c.writes;
      m.faults = c.faults;
      m.ignored = c.ignored;
      m.vmm_errors = c.vmm_errors;
      result_.per_msr.push_back(std::move(m));
    }
    std::sort(result_.per_msr.begin(), result_.per_msr.end(),
              [](const MsrCounts& x, const MsrCounts& y) { return x.index < y.index; });
  }

  const ReplayOptions& options_;
  ReplayResult& result_;
  std::unique_ptr<Machine> machine_;
  absl::flat_hash_map<uint32_t, Counts> counts_;
  // Per-event scratch (reused).
  VcpuRegs before_;
  const VcpuRegs* after_ = nullptr;
  Access access_ = Access::kRead;
  RecordedKind observed_ = RecordedKind::kUnspecified;
  std::vector<uint64_t> pre_slots_;
  std::vector<uint64_t> pre_vm_slots_;
  uint64_t last_seq_ = 0;
};

std::string KnownNames(const std::vector<std::string>& names) {
  return names.empty() ? "none" : absl::StrJoin(names, ", ");
}

}  // namespace

#undef MSRTRACE_REPORT_DIVERGENCE

absl::Status Machine::Restore(const Snapshot& snapshot) {
  return RestoreSnapshot(snapshot, *controller, &vcpus, &memory);
}

absl::StatusOr<std::unique_ptr<Machine>> BuildMachine(const TraceHeader& header) {
  auto m = std::make_unique<Machine>();
  m->profile = FindProfile(header.cpu_profile);
  if (m->profile == nullptr) {
    std::vector<std::string> names;
    for (const CpuProfile& p : BuiltinProfiles()) names.push_back(p.name);
    return absl::InvalidArgumentError(absl::StrFormat("unknown CPU profile '%s' (known: %s)",
                                                      header.cpu_profile, KnownNames(names)));
  }
  m->handler_set = FindHandlerSet(header.handler_set);
  if (m->handler_set == nullptr || m->handler_set->install == nullptr) {
    std::vector<std::string> names;
    for (const HandlerSetDef* d : ListHandlerSets()) names.push_back(d->name);
    return absl::InvalidArgumentError(absl::StrFormat("unknown handler set '%s' (known: %s)",
                                                      header.handler_set, KnownNames(names)));
  }
  ControllerOptions co;
  co.unknown_msr_policy = header.unknown_msr_policy == UnknownMsrPolicy::kUnspecified
                              ? UnknownMsrPolicy::kInjectGp
                              : header.unknown_msr_policy;
  m->controller = std::make_unique<Controller>(co);
  absl::Status st = m->handler_set->install(*m->controller, *m->profile);
  if (!st.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("handler set '%s' failed to install: %s",
                                                      header.handler_set, st.message()));
  }
  const uint32_t n = header.vcpu_count == 0 ? 1 : header.vcpu_count;
  if (n > kMaxReplayVcpus) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "trace header asks for %u vCPUs; replay supports at most %u", n, kMaxReplayVcpus));
  }
  m->vcpus.reserve(n);
  for (uint32_t id = 0; id < n; ++id) m->vcpus.push_back(m->controller->CreateVcpu(id));
  return m;
}

const char* VolatilePolicyName(VolatilePolicy p) {
  switch (p) {
    case VolatilePolicy::kAuto:
      return "auto";
    case VolatilePolicy::kExact:
      return "exact";
    case VolatilePolicy::kKindOnly:
      return "kind-only";
  }
  return "auto";
}

absl::optional<VolatilePolicy> ParseVolatilePolicy(absl::string_view name) {
  if (name == "auto") return VolatilePolicy::kAuto;
  if (name == "exact") return VolatilePolicy::kExact;
  if (name == "kind-only") return VolatilePolicy::kKindOnly;
  return absl::nullopt;
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
    case DivergenceKind::kCount:
      break;
  }
  return "unknown";
}

absl::StatusOr<ReplayResult> ReplayReader(TraceReader& reader, const ReplayOptions& options) {
  ReplayResult result;
  Pass pass(options, &result);
  RETURN_IF_ERROR(pass.Run(reader));
  return result;
}

absl::StatusOr<ReplayResult> ReplayFile(const std::string& path, const ReplayOptions& options) {
  ReplayOptions first = options;
  first.resume_after = 0;
  TraceReaderOptions reader_options;
  reader_options.skip_corrupt = options.skip_corrupt;
  ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> reader, TraceReader::Open(path, reader_options));
  ASSIGN_OR_RETURN(ReplayResult result, ReplayReader(*reader, first));
  result.name = path;

  auto add = [&](DivergenceKind kind, uint64_t want, uint64_t got, const std::string& what) {
    ++result.divergence_count;
    if (result.divergences.size() >= options.max_divergences) return;
    Divergence d;
    d.kind = kind;
    d.expected = absl::StrFormat("final digest %#018x", want);
    d.actual = absl::StrFormat("final digest %#018x (%s)", got, what);
    result.divergences.push_back(std::move(d));
  };
  // Later passes only compare digests; their own divergences repeat the first pass's.
  ReplayOptions again = first;
  again.max_divergences = 0;
  again.progress = nullptr;
  for (uint32_t i = 1; i < options.repeat; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> r, TraceReader::Open(path, reader_options));
    ASSIGN_OR_RETURN(ReplayResult rr, ReplayReader(*r, again));
    if (rr.final_digest != result.final_digest) {
      add(DivergenceKind::kNondeterministic, result.final_digest, rr.final_digest,
          absl::StrCat("replay ", i + 1, " of ", options.repeat));
    }
  }
  if (options.resume_after != 0) {
    again.resume_after = options.resume_after;
    ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> r, TraceReader::Open(path, reader_options));
    ASSIGN_OR_RETURN(ReplayResult rr, ReplayReader(*r, again));
    if (rr.final_digest != result.final_digest) {
      add(DivergenceKind::kResume, result.final_digest, rr.final_digest,
          absl::StrCat("resumed from a snapshot after event ", options.resume_after));
    }
  }
  return result;
}

}  // namespace msrtrace
