#include "fuzz/oracles.h"

#include <algorithm>
#include <initializer_list>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "harness/core/enum_names.h"
#include "harness/core/snapshot.h"
#include "harness/core/status_macros.h"

namespace msrtrace {
namespace fuzz {
namespace {

constexpr uint64_t kLow32 = 0xffffffffull;

constexpr uint64_t Kinds(std::initializer_list<DivergenceKind> kinds) {
  uint64_t bits = 0;
  for (DivergenceKind k : kinds) bits |= 1ull << static_cast<int>(k);
  return bits;
}

// Registers with RCX/RAX/RDX[63:32] cleared (what upper-half independence compares).
VcpuRegs MaskUpper(VcpuRegs r) {
  r.reg(Gpr::kRcx) &= kLow32;
  r.reg(Gpr::kRax) &= kLow32;
  r.reg(Gpr::kRdx) &= kLow32;
  return r;
}

std::string DescribeOutcome(const absl::StatusOr<Outcome>& o) {
  if (!o.ok()) return absl::StrCat("error ", o.status().ToString());
  return absl::StrFormat("%s %s %#x value %#x%s", OutcomeKindName(o->kind), AccessName(o->access),
                         o->index, o->value, o->unknown_msr ? " (unknown msr)" : "");
}

std::string ValueText(const absl::optional<uint64_t>& x) {
  return x.has_value() ? absl::StrFormat("%#x", *x) : std::string("no value (#GP)");
}

// Bits a retired guest WRMSR to `row` must leave as they were (harness/core/declared_rows.h).
uint64_t KeptMask(const DeclaredRow& row) {
  if ((row.flags & kRowWritesIgnored) != 0) return ~0ull;
  return row.read_only_mask | row.ignored_mask;
}

bool SameOutcome(const Outcome& a, const Outcome& b) {
  return a.kind == b.kind && a.access == b.access && a.index == b.index && a.value == b.value &&
         a.unknown_msr == b.unknown_msr;
}

}  // namespace

constexpr EnumName<Oracle> kOracleNames[] = {
    {Oracle::kRipProgress, "rip-progress"},
    {Oracle::kRegisterHygiene, "register-hygiene"},
    {Oracle::kUpperHalfIndependence, "upper-half-independence"},
    {Oracle::kDeterminism, "determinism"},
    {Oracle::kSnapshotResume, "snapshot-resume"},
    {Oracle::kFaultAtomicity, "fault-atomicity"},
    {Oracle::kReadAfterWrite, "read-after-write"},
    {Oracle::kRecordedOutcome, "recorded-outcome"},
    {Oracle::kTableConformance, "table-conformance"},
    {Oracle::kIndexRouting, "index-routing"},
    {Oracle::kVcpuIsolation, "vcpu-isolation"},
};
static_assert(sizeof(kOracleNames) / sizeof(kOracleNames[0]) == static_cast<size_t>(Oracle::kCount),
              "every Oracle has a name");

const char* OracleName(Oracle o) { return NameOf(kOracleNames, o, "unknown"); }

const std::vector<OracleDef>& Oracles() {
  using D = DivergenceKind;
  static const auto* table = new std::vector<OracleDef>{
      {Oracle::kRipProgress, OracleMethod::kEngineCheck,
       Kinds({D::kArchRipAdvance, D::kArchGpRipMoved, D::kArchGpPending, D::kArchSingleStep,
              D::kArchInterruptShadow, D::kArchNoOutcome})},
      {Oracle::kRegisterHygiene, OracleMethod::kEngineCheck,
       Kinds({D::kArchUpperHalves, D::kArchGprClobbered, D::kArchControlRegs,
              D::kArchVmmErrorChangedState, D::kArchHostRegisters})},
      {Oracle::kFaultAtomicity, OracleMethod::kEngineCheck, Kinds({D::kArchGpNotAtomic})},
      {Oracle::kRecordedOutcome, OracleMethod::kEngineCheck,
       Kinds({D::kOutcome, D::kValue, D::kRip, D::kPendingException, D::kMemoryWrites, D::kRoute})},
      // Event rules in this order: routing first (a misrouted exit breaks every other rule).
      {Oracle::kIndexRouting, OracleMethod::kEventRule},
      {Oracle::kTableConformance, OracleMethod::kEventRule},
      {Oracle::kVcpuIsolation, OracleMethod::kEventRule},
      {Oracle::kReadAfterWrite, OracleMethod::kEventRule},
      {Oracle::kDeterminism, OracleMethod::kSecondRun, 0, SecondRun::kRepeat},
      {Oracle::kUpperHalfIndependence, OracleMethod::kSecondRun, 0, SecondRun::kJunk},
      {Oracle::kSnapshotResume, OracleMethod::kSecondRun, 0, SecondRun::kResumeMid},
  };
  return *table;
}

Oracle OracleOwning(DivergenceKind kind) {
  for (const OracleDef& def : Oracles()) {
    if ((def.divergence_kinds >> static_cast<int>(kind)) & 1) return def.oracle;
  }
  return Oracle::kCount;
}

EngineFactory ReferenceEngineFactory() {
  return [](Machine& machine) -> std::unique_ptr<ExitEngine> {
    return std::make_unique<ControllerEngine>(machine.controller.get());
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
  uint64_t final_digest = 0;  // Machine::StateHash, upper halves of RCX/RAX/RDX masked.
  uint64_t mid_digest = 0;    // The same before event `mid` (primary run, combined pass only).
  bool midpoint_taken = false;
};

// Keeps the first divergence of an oracle's kind (details formatted for it only).
class OracleRunner::FirstDivergence : public DivergenceSink {
 public:
  // The architectural checks come before the comparison with the recording: an engine that
  // breaks a rule on a recorded event is reported by the rule's oracle (the sink holds the
  // divergences of one event: the runner takes the failure after each event).
  Divergence* Add(DivergenceKind kind) override {
    if (OracleOwning(kind) == Oracle::kCount) return nullptr;
    const bool recorded = OracleOwning(kind) == Oracle::kRecordedOutcome;
    if (has_ && (recorded || !first_recorded_)) return nullptr;
    has_ = true;
    first_recorded_ = recorded;
    return &first_;
  }
  void Clear() { has_ = false; }
  bool has() const { return has_; }
  const Divergence& first() const { return first_; }

 private:
  bool has_ = false;
  bool first_recorded_ = false;
  Divergence first_;
};

OracleRunner::OracleRunner(EngineFactory factory, OracleOptions options)
    : factory_(std::move(factory)),
      options_(std::move(options)),
      sink_(std::make_unique<FirstDivergence>()),
      primary_(std::make_unique<RunResult>()),
      second_(std::make_unique<RunResult>()) {}

OracleRunner::~OracleRunner() = default;

bool OracleRunner::IsPlainStorage(uint32_t index) const {
  for (const MsrTarget& t : options_.plain_storage) {
    if (index >= t.first && index <= t.last) return true;
  }
  return false;
}

bool OracleRunner::Enabled(const OracleDef& def) const {
  switch (def.oracle) {
    case Oracle::kUpperHalfIndependence:
      return options_.upper_half_independence;
    case Oracle::kDeterminism:
      return options_.determinism;
    case Oracle::kSnapshotResume:
      return options_.snapshot_resume;
    case Oracle::kReadAfterWrite:
      return options_.read_after_write;
    case Oracle::kRecordedOutcome:
      return options_.recorded_outcome;
    case Oracle::kTableConformance:
      return options_.table_conformance;
    case Oracle::kIndexRouting:
      return options_.index_routing;
    case Oracle::kVcpuIsolation:
      return options_.vcpu_isolation;
    default:
      return true;
  }
}

// read-after-write: a retired WRMSR of v to a plain-storage MSR reads back v (on a copy of the
// vCPU, so the run itself is unchanged).
bool OracleRunner::ReadAfterWrite(const ExitEvent& e, size_t k) {
  const absl::StatusOr<Outcome>& r = checker_->result();
  if (!r.ok() || r->kind != Outcome::Kind::kRetired || r->access != Access::kWrite ||
      r->unknown_msr || !IsPlainStorage(r->index)) {
    return true;
  }
  const absl::optional<uint64_t> back = Probe(e.exit, checker_->vcpu(), r->index);
  if (back != r->value) {
    failure_ = OracleFailure{
        Oracle::kReadAfterWrite, k,
        absl::StrFormat("wrmsr %s <- %#x retired, then rdmsr gave %s",
                        machine_->controller->MsrName(r->index), r->value, ValueText(back))};
    return false;
  }
  return true;
}

const DeclaredRow* OracleRunner::RowOf(uint32_t index) const {
  auto it = std::upper_bound(rows_.begin(), rows_.end(), index,
                             [](uint32_t i, const DeclaredRow& r) { return i < r.first; });
  if (it == rows_.begin()) return nullptr;
  --it;
  return index <= it->last ? &*it : nullptr;
}

absl::optional<uint64_t> OracleRunner::Probe(const Exit& like, const Vcpu& vcpu, uint32_t index,
                                             const ExitEvent* inputs) {
  probe_vcpu_ = vcpu;  // Copy-assignment reuses the slot buffer: no allocation once grown.
  if (inputs != nullptr) ApplyEventInputs(*inputs, &probe_vcpu_.regs);
  probe_vcpu_.regs.reg(Gpr::kRcx) = index;
  probe_vcpu_.regs.pending = PendingException{};
  Exit rd = like;
  if (rd.vendor == Vendor::kAmdSvm) {
    rd.info1 = 0;
  } else {
    rd.reason = kVmxExitRdmsr;
  }
  absl::StatusOr<Outcome> back = engine_->Handle(rd, probe_vcpu_, machine_->memory);
  if (!back.ok() || back->kind != Outcome::Kind::kRetired) return absl::nullopt;
  return back->value;
}

// index-routing: the outcome names ECX; an index without a handler is an unknown MSR.
bool OracleRunner::IndexRouting(size_t k) {
  const absl::StatusOr<Outcome>& r = checker_->result();
  if (!r.ok()) return true;
  const uint32_t ecx = static_cast<uint32_t>(checker_->regs_before().reg(Gpr::kRcx));
  const uint64_t dispatches = dispatch_.count - dispatches_before_;
  std::string what;
  if (dispatches > 1) {
    what = absl::StrFormat("one exit at ECX %#x was dispatched %u times (last to %#x)", ecx,
                           dispatches, dispatch_.index);
  } else if (dispatches == 1 && dispatch_.index != ecx) {
    what = absl::StrFormat(
        "the controller handed index %#x to the handler, but ECX is %#x (the outcome names "
        "%#x)",
        dispatch_.index, ecx, r->index);
  } else if (r->index != ecx) {
    what = absl::StrFormat("ECX %#x but the outcome names %#x", ecx, r->index);
  } else if (!r->unknown_msr && machine_->controller->Find(ecx) == nullptr) {
    what = absl::StrFormat(
        "no handler is registered at ECX %#x, yet the outcome is not an "
        "unknown-MSR one (%s)",
        ecx, DescribeOutcome(r));
  } else {
    return true;
  }
  failure_ = OracleFailure{Oracle::kIndexRouting, k, what};
  return false;
}

// table-conformance: the outcome against the declared row of ECX (harness/core/declared_rows.h).
bool OracleRunner::TableConformance(const ExitEvent& e, size_t k) {
  const absl::StatusOr<Outcome>& r = checker_->result();
  if (!r.ok() || r->unknown_msr) return true;
  const bool retired = r->kind == Outcome::Kind::kRetired;
  const bool write = checker_->access() == Access::kWrite;
  const DeclaredRow* row = RowOf(r->index);
  if (row == nullptr) {
    if (retired && write) at_reset_ = false;
    return true;
  }
  const uint32_t f = row->flags;
  const uint64_t v = r->value;
  std::string what;
  if (write) {
    const bool ignored = (f & kRowWritesIgnored) != 0;
    if (retired) {
      if ((f & kRowReadOnly) != 0) {
        what = "the row is read-only, yet a guest WRMSR retired";
      } else if ((f & kRowHostOnlyWrite) != 0 && !ignored) {
        what = "the row is host-write-only, yet a guest WRMSR retired";
      } else if (!ignored && (v & row->reserved_mask) != 0) {
        what = absl::StrFormat("WRMSR %#x sets reserved bits %#x (mask %#x), yet retired", v,
                               v & row->reserved_mask, row->reserved_mask);
      } else if ((f & kRowCanonical) != 0 && !IsCanonicalAt(v, row->canonical_bits)) {
        what = absl::StrFormat("WRMSR %#x is not canonical at %u bits, yet retired", v,
                               row->canonical_bits);
      } else if (readback_armed_ && readback_before_.has_value() &&
                 ((*readback_before_ ^ v) & row->read_only_mask) != 0) {
        what =
            absl::StrFormat("WRMSR %#x changes read-only bits %#x (the vCPU read %#x), yet retired",
                            v, (*readback_before_ ^ v) & row->read_only_mask, *readback_before_);
      } else if (readback_armed_ && !ReadBackAfter(e, *row, v, &what)) {
        // `what` names the kept bits that changed.
      } else if ((f & kRowLockBit0) != 0) {
        const std::pair<uint32_t, uint32_t> key(e.vcpu_id, r->index);
        if (std::find(locked_.begin(), locked_.end(), key) != locked_.end()) {
          what = absl::StrFormat("WRMSR %#x retired after a write locked the MSR (bit 0)", v);
        } else if ((v & 1) != 0) {
          locked_.push_back(key);
        }
      }
      at_reset_ = false;
    }
  } else if (retired && (f & kRowWriteOnly) != 0) {
    what = "the row is write-only, yet a guest RDMSR retired";
  } else if (retired && at_reset_ && (f & kRowResetValue) != 0 &&
             checker_->vcpu().id == machine_->vcpus.front().id && v != row->reset) {
    what = absl::StrFormat("first RDMSR after reset gave %#x, the row's reset value is %#x", v,
                           row->reset);
  }
  if (what.empty()) return true;
  failure_ =
      OracleFailure{Oracle::kTableConformance, k,
                    absl::StrFormat("%s: %s", machine_->controller->MsrName(r->index), what)};
  return false;
}

void OracleRunner::ReadBackBefore(const ExitEvent& e) {
  readback_armed_ = false;
  if (MsrAccessOf(e.exit) != Access::kWrite) return;
  const DeclaredRow* row = RowOf(e.index());
  if (row == nullptr || (row->flags & (kRowVolatile | kRowWriteOnly)) != 0 || KeptMask(*row) == 0) {
    return;
  }
  const Vcpu* v = machine_->FindVcpu(e.vcpu_id);
  if (v == nullptr) return;  // The checker reports the event as unusable.
  readback_before_ = Probe(e.exit, *v, e.index(), &e);
  readback_armed_ = true;
}

// After a retired write: the kept bits read back as the vCPU read them just before.
bool OracleRunner::ReadBackAfter(const ExitEvent& e, const DeclaredRow& row, uint64_t written,
                                 std::string* what) {
  if (!readback_before_.has_value()) return true;  // The read #GPs: nothing to compare.
  const absl::optional<uint64_t> now = Probe(e.exit, checker_->vcpu(), e.index());
  const uint64_t kept = KeptMask(row);
  if (now.has_value() && ((*now ^ *readback_before_) & kept) == 0) return true;
  *what = absl::StrFormat(
      "WRMSR %#x retired and changed bits the row keeps (%s %#x): the vCPU read %#x before, "
      "%s after",
      written, (row.flags & kRowWritesIgnored) != 0 ? "writes ignored, mask" : "mask", kept,
      *readback_before_, ValueText(now));
  return false;
}

void OracleRunner::IsolationBefore(const ExitEvent& e) {
  isolation_armed_ = false;
  Machine& m = *machine_;
  if (m.vcpus.size() < 2 || MsrAccessOf(e.exit) != Access::kWrite) return;
  const DeclaredRow* row = RowOf(e.index());
  if (row == nullptr || (row->flags & kRowPerVcpu) == 0) return;
  others_.clear();
  for (size_t i = 0; i < m.vcpus.size(); ++i) {
    if (m.vcpus[i].id == e.vcpu_id) continue;
    // A volatile index itself is not compared (a write may legitimately resynchronize others:
    // KVM's TSC matching); its related MSRs are.
    if ((row->flags & kRowVolatile) == 0) {
      others_.push_back(OtherRead{i, e.index(), Probe(e.exit, m.vcpus[i], e.index())});
    }
    for (int r = 0; r < row->num_related; ++r) {
      for (uint64_t x = row->related[r].first; x <= row->related[r].last; ++x) {
        const auto index = static_cast<uint32_t>(x);
        const DeclaredRow* rel = RowOf(index);
        // Only per-vCPU state: a VM-wide related MSR may change for every vCPU.
        if (rel == nullptr || (rel->flags & kRowPerVcpu) == 0) continue;
        others_.push_back(OtherRead{i, index, Probe(e.exit, m.vcpus[i], index)});
      }
    }
  }
  isolation_armed_ = !others_.empty();
}

// vcpu-isolation: a retired write on one vCPU leaves the others' reads of the index and of its
// related MSRs unchanged.
bool OracleRunner::IsolationAfter(const ExitEvent& e, size_t k) {
  if (!isolation_armed_) return true;
  isolation_armed_ = false;
  const absl::StatusOr<Outcome>& r = checker_->result();
  if (!r.ok() || r->kind != Outcome::Kind::kRetired) return true;
  for (const OtherRead& o : others_) {
    const Vcpu& other = machine_->vcpus[o.pos];
    const absl::optional<uint64_t> now = Probe(e.exit, other, o.index);
    if (now == o.value) continue;
    failure_ = OracleFailure{
        Oracle::kVcpuIsolation, k,
        absl::StrFormat("WRMSR %s <- %#x on vCPU %u changed what vCPU %u reads at %s%s: %s -> %s",
                        machine_->controller->MsrName(e.index()), r->value, e.vcpu_id, other.id,
                        machine_->controller->MsrName(o.index),
                        o.index == e.index() ? "" : " (a related MSR)", ValueText(o.value),
                        ValueText(now))};
    return false;
  }
  return true;
}

bool OracleRunner::EventRule(Oracle o, const ExitEvent& e, size_t k) {
  switch (o) {
    case Oracle::kIndexRouting:
      return IndexRouting(k);
    case Oracle::kTableConformance:
      return TableConformance(e, k);
    case Oracle::kVcpuIsolation:
      return IsolationAfter(e, k);
    case Oracle::kReadAfterWrite:
      return ReadAfterWrite(e, k);
    default:
      return true;
  }
}

absl::Status OracleRunner::Run(const TraceModel& trace, size_t begin, size_t end,
                               const Snapshot& start, const RunKind& kind, RunResult* out,
                               size_t mid) {
  Machine& m = *machine_;
  // The midpoint snapshot's slot names are this machine's layout (it was captured here).
  RETURN_IF_ERROR(m.Restore(start, /*names_are_layout=*/&start == &midpoint_));
  ++stats_.runs;
  const bool primary = kind.primary;
  ExitCheckOptions co;
  co.check_architecture = primary;
  // recorded-outcome: replay's comparison on the events that still carry a recording.
  co.compare_recording = primary && options_.recorded_outcome;
  if (kind.junk) {
    co.junk_rcx = kJunkRcx;
    co.junk_rax = kJunkRax;
    co.junk_rdx = kJunkRdx;
  }
  checker_->Rebind(machine_, engine_);
  checker_->set_options(co);
  checker_->BeginRun();
  sink_->Clear();
  out->events.clear();
  out->midpoint_taken = false;
  const bool isolation = primary && options_.vcpu_isolation;
  if (primary) {
    at_reset_ = start.vcpus.empty() && start.vm_slots.empty() && start.handler_states.empty();
    locked_.clear();
  }
  for (size_t k = begin; k < end; ++k) {
    if (primary && k == mid && options_.snapshot_resume) {
      // The slot names are the machine's layout: copied only when the machine changed.
      CaptureSnapshotInto(*m.controller, m.vcpus, m.memory, &midpoint_,
                          /*names=*/midpoint_machine_ != machine_);
      midpoint_machine_ = machine_;
      out->midpoint_taken = true;
      // The combined pass compares its first half's end state with this one.
      if (kind.mid_digest) out->mid_digest = m.StateHash(/*mask_upper=*/true);
    }
    const ExitEvent& e = trace.events[k];
    if (isolation) IsolationBefore(e);
    if (primary && options_.table_conformance) ReadBackBefore(e);
    dispatches_before_ = dispatch_.count;
    RETURN_IF_ERROR(checker_->Run(e));
    ++stats_.events;
    const absl::StatusOr<Outcome>& r = checker_->result();
    EventResult& res = out->events.emplace_back();
    res.regs_after = checker_->vcpu().regs;
    if (!r.ok()) {
      res.code = r.status().code();
      res.error = static_cast<std::string>(r.status().message());
    } else {
      res.outcome = *r;
    }
    if (primary) {
      if (sink_->has()) {
        const Divergence& d = sink_->first();
        failure_ = OracleFailure{
            OracleOwning(d.kind), k,
            absl::StrFormat("%s: expected %s, actual %s%s", DivergenceKindName(d.kind), d.expected,
                            d.actual,
                            d.reg_diff.empty() ? "" : absl::StrCat(" (", d.reg_diff, ")"))};
        return absl::OkStatus();
      }
      for (const OracleDef& def : Oracles()) {
        if (def.method == OracleMethod::kEventRule && Enabled(def) &&
            !EventRule(def.oracle, e, k)) {
          return absl::OkStatus();
        }
      }
    }
    if (!r.ok()) break;  // The VM stopped.
  }
  out->final_digest = m.StateHash(/*mask_upper=*/true);
  return absl::OkStatus();
}

// Compares run `b` (the primary run's events [offset, end) from b's first) with the primary
// run, then `digest_b` with `digest_a` (the state after the range); on a difference records `o`.
bool OracleRunner::Compare(Oracle o, const RunResult& b, size_t offset, size_t end, bool masked,
                           uint64_t digest_a, uint64_t digest_b, size_t digest_event) {
  const RunResult& a = *primary_;
  const size_t a_count = std::min(a.events.size(), end) - offset;
  const size_t count = std::min(a_count, b.events.size());
  for (size_t k = 0; k < count; ++k) {
    const EventResult& x = a.events[offset + k];
    const EventResult& y = b.events[k];
    // Equal registers need no masked copies (the usual case).
    const bool same_regs = x.regs_after == y.regs_after ||
                           (masked && MaskUpper(x.regs_after) == MaskUpper(y.regs_after));
    if (x.code != y.code || x.error != y.error || !SameOutcome(x.outcome, y.outcome) ||
        !same_regs) {
      const VcpuRegs rx = masked ? MaskUpper(x.regs_after) : x.regs_after;
      const VcpuRegs ry = masked ? MaskUpper(y.regs_after) : y.regs_after;
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
  if (a_count != b.events.size()) {
    failure_ = OracleFailure{o, offset + count,
                             absl::StrFormat("first run stopped after %u events, other run "
                                             "after %u",
                                             a_count, b.events.size())};
    return false;
  }
  if (digest_a != digest_b) {
    failure_ = OracleFailure{
        o, digest_event,
        absl::StrFormat("%s hashes differ: %#x vs %#x",
                        digest_event == end ? "final-state" : "state", digest_a, digest_b)};
    return false;
  }
  return true;
}

absl::StatusOr<bool> OracleRunner::CombinedPassAgrees(const TraceModel& trace, size_t n,
                                                      size_t mid) {
  const bool junk = options_.upper_half_independence;
  const bool resume = options_.snapshot_resume && primary_->midpoint_taken;
  const bool from_start = options_.determinism || junk;
  // The oracle the pass reports for when no single second run reproduces its disagreement.
  const Oracle fallback = options_.determinism ? Oracle::kDeterminism
                          : junk               ? Oracle::kUpperHalfIndependence
                                               : Oracle::kSnapshotResume;
  RunKind kind;
  kind.junk = junk;
  // The resumed half first: the machine then holds the end state of the primary run, so
  // state that the midpoint snapshot misses is not silently still right.
  if (resume) {
    RETURN_IF_ERROR(Run(trace, mid, n, midpoint_, kind, second_.get(), 0));
    if (!Compare(fallback, *second_, mid, n, junk, primary_->final_digest, second_->final_digest,
                 n)) {
      return false;
    }
  }
  if (from_start && !(resume && mid == 0)) {
    const size_t end = resume ? mid : n;
    RETURN_IF_ERROR(Run(trace, 0, end, trace.snapshot, kind, second_.get(), 0));
    const uint64_t digest_a = resume ? primary_->mid_digest : primary_->final_digest;
    if (!Compare(fallback, *second_, 0, end, junk, digest_a, second_->final_digest, end)) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<absl::optional<OracleFailure>> OracleRunner::Check(const TraceModel& trace) {
  failure_.reset();
  // Every run restores its start snapshot (a reset first): the cached machine is not reset here.
  ASSIGN_OR_RETURN(machine_, machines_.GetUnreset(trace.header));
  engine_ = nullptr;
  for (auto& [mach, eng] : engines_) {
    if (mach == machine_) engine_ = eng.get();
  }
  if (engine_ == nullptr) {
    engines_.emplace_back(machine_, factory_(*machine_));
    engine_ = engines_.back().second.get();
  }
  if (checker_ == nullptr) {
    checker_ = std::make_unique<ExitChecker>(machine_, engine_, sink_.get());
  }
  // index-routing: the controller reports what it hands to handlers (nothing when disabled).
  machine_->controller->set_dispatch_trace(options_.index_routing ? &dispatch_ : nullptr);
  if (rows_machine_ != machine_) {
    rows_ = machine_->controller->declared_rows();
    std::sort(rows_.begin(), rows_.end(),
              [](const DeclaredRow& a, const DeclaredRow& b) { return a.first < b.first; });
    rows_machine_ = machine_;
  }
  const size_t n = std::min(trace.events.size(), options_.max_events);
  const size_t mid = n / 2;
  ++stats_.inputs;

  RunKind primary;
  primary.primary = true;
  // The combined pass compares the state before event `mid` when it resumes there.
  primary.mid_digest =
      options_.snapshot_resume && (options_.determinism || options_.upper_half_independence);
  RETURN_IF_ERROR(Run(trace, 0, n, trace.snapshot, primary, primary_.get(), mid));
  if (failure_.has_value()) return failure_;
  if (!options_.determinism && !options_.upper_half_independence && !options_.snapshot_resume) {
    return absl::optional<OracleFailure>();
  }
  ++stats_.combined_passes;
  ASSIGN_OR_RETURN(const bool agrees, CombinedPassAgrees(trace, n, mid));
  if (agrees) return absl::optional<OracleFailure>();
  // The combined pass disagrees: the single second runs, in the table's order, name the
  // oracle and give the report each gives on its own.
  ++stats_.attributions;
  const OracleFailure combined = *std::move(failure_);
  failure_.reset();
  for (const OracleDef& def : Oracles()) {
    if (def.method != OracleMethod::kSecondRun || !Enabled(def)) continue;
    RunKind kind;
    switch (def.second_run) {
      case SecondRun::kRepeat:
        RETURN_IF_ERROR(Run(trace, 0, n, trace.snapshot, kind, second_.get(), 0));
        if (!Compare(def.oracle, *second_, 0, n, false, primary_->final_digest,
                     second_->final_digest, n)) {
          return failure_;
        }
        break;
      case SecondRun::kJunk:
        kind.junk = true;
        RETURN_IF_ERROR(Run(trace, 0, n, trace.snapshot, kind, second_.get(), 0));
        if (!Compare(def.oracle, *second_, 0, n, true, primary_->final_digest,
                     second_->final_digest, n)) {
          return failure_;
        }
        break;
      case SecondRun::kResumeMid:
        if (!primary_->midpoint_taken) break;
        RETURN_IF_ERROR(Run(trace, mid, n, midpoint_, kind, second_.get(), 0));
        if (!Compare(def.oracle, *second_, mid, n, false, primary_->final_digest,
                     second_->final_digest, n)) {
          return failure_;
        }
        break;
      case SecondRun::kNone:
        break;
    }
  }
  // No single second run reproduces it: the outcome depends on more than the trace and its
  // snapshot (what earlier runs left behind, or chance), which is what determinism forbids.
  ++stats_.unattributed;
  failure_ = combined;
  failure_->detail = absl::StrFormat(
      "the combined check run (%s%s) disagreed with the first run, and no single second run "
      "did: %s",
      options_.upper_half_independence ? "junk upper halves" : "no junk",
      primary_->midpoint_taken && options_.snapshot_resume
          ? absl::StrFormat(", resumed at event %u", mid)
          : std::string(),
      combined.detail);
  return failure_;
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
