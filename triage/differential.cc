#include "triage/differential.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <typeinfo>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "harness/core/status_macros.h"

namespace msrtrace {
namespace {

constexpr const char* kFieldNames[kNumDiffFields] = {"outcome", "value", "registers", "memory",
                                                     "state"};

// Counts nothing: the runner compares the two machines itself.
class NullSink : public DivergenceSink {
 public:
  Divergence* Add(DivergenceKind) override { return nullptr; }
};

bool ParseIndex(absl::string_view s, uint32_t* out) {
  uint64_t v = 0;
  bool ok = false;
  if (absl::StartsWithIgnoreCase(s, "0x")) {
    s.remove_prefix(2);
    ok = !s.empty() && s.size() <= 8 && absl::SimpleHexAtoi(s, &v);
  } else {
    ok = !s.empty() && absl::ascii_isdigit(static_cast<unsigned char>(s[0])) &&
         absl::SimpleAtoi(s, &v);
  }
  if (!ok || v > 0xffffffffull) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

std::string OutcomeText(const absl::StatusOr<Outcome>& r, Access access) {
  if (!r.ok()) return absl::StrCat("vmm-error (", r.status().message(), ")");
  switch (r->kind) {
    case Outcome::Kind::kRetired:
      return access == Access::kRead ? absl::StrFormat("retired, read %#x", r->value)
                                     : std::string("retired");
    case Outcome::Kind::kGpInjected:
      return "#GP(0)";
    case Outcome::Kind::kIgnored:
      return "ignored";
    case Outcome::Kind::kUnspecified:
      break;
  }
  return "no outcome";
}

bool SameOutcome(const absl::StatusOr<Outcome>& a, const absl::StatusOr<Outcome>& b) {
  if (a.ok() != b.ok()) return false;
  if (!a.ok()) return true;
  if (a->kind != b->kind) return false;
  return a->kind != Outcome::Kind::kRetired || a->access != Access::kRead || a->value == b->value;
}

// Registers the exit left different on the two machines. A register that already differed
// before the exit and that neither machine changed is not this exit's doing.
std::string RegisterDiff(const VcpuRegs& tb, const VcpuRegs& ta, const VcpuRegs& rb,
                         const VcpuRegs& ra) {
  std::string out;
  auto check = [&](const char* name, uint64_t t_before, uint64_t t_after, uint64_t r_before,
                   uint64_t r_after) {
    if (t_after == r_after) return;
    if (t_before != r_before && t_after == t_before && r_after == r_before) return;
    absl::StrAppend(&out, out.empty() ? "" : "; ", name,
                    absl::StrFormat(": team %#x, reference %#x", t_after, r_after));
  };
  for (int g = 0; g < kNumGprs; ++g) {
    check(GprName(static_cast<Gpr>(g)), tb.gpr[g], ta.gpr[g], rb.gpr[g], ra.gpr[g]);
  }
  check("rip", tb.rip, ta.rip, rb.rip, ra.rip);
  check("rflags", tb.rflags, ta.rflags, rb.rflags, ra.rflags);
  check("cr0", tb.cr0, ta.cr0, rb.cr0, ra.cr0);
  check("cr4", tb.cr4, ta.cr4, rb.cr4, ra.cr4);
  check("efer", tb.efer, ta.efer, rb.efer, ra.efer);
  check("cs.l", tb.cs_l, ta.cs_l, rb.cs_l, ra.cs_l);
  check("interruptibility", tb.interruptibility, ta.interruptibility, rb.interruptibility,
        ra.interruptibility);
  auto pending = [](const PendingException& p) -> uint64_t {
    return p.valid ? (1ull << 63) | (uint64_t{p.vector} << 32) | p.error_code : 0;
  };
  check("pending", pending(tb.pending), pending(ta.pending), pending(rb.pending),
        pending(ra.pending));
  return out;
}

}  // namespace

// --- Fields and the allowlist -------------------------------------------------------------------

const char* DiffFieldName(DiffField f) {
  const int i = static_cast<int>(f);
  return i >= 0 && i < kNumDiffFields ? kFieldNames[i] : "unknown";
}

absl::optional<DiffField> ParseDiffField(absl::string_view name) {
  for (int i = 0; i < kNumDiffFields; ++i) {
    if (name == kFieldNames[i]) return static_cast<DiffField>(i);
  }
  return absl::nullopt;
}

absl::StatusOr<Allowlist> Allowlist::Parse(absl::string_view text, absl::string_view name) {
  Allowlist list;
  list.name_.assign(name.data(), name.size());
  if (text.size() > kMaxBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: allowlist is %u bytes; at most %u", name, text.size(), kMaxBytes));
  }
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    auto error = [&](const std::string& what) {
      return absl::InvalidArgumentError(absl::StrFormat("%s:%d: %s", name, line_no, what));
    };
    // Up to three parts: index range, field, and the rest of the line (the reason).
    std::vector<absl::string_view> parts;
    absl::string_view rest = line;
    while (!rest.empty() && parts.size() < 2) {
      size_t end = 0;
      while (end < rest.size() && !absl::ascii_isspace(static_cast<unsigned char>(rest[end]))) {
        ++end;
      }
      parts.push_back(rest.substr(0, end));
      rest = absl::StripLeadingAsciiWhitespace(rest.substr(end));
    }
    if (!rest.empty()) parts.push_back(rest);
    if (parts.size() < 2) {
      return error("expected '<index>[-<last>] <field> <reason>'");
    }
    AllowEntry e;
    e.line = line_no;
    const std::pair<absl::string_view, absl::string_view> range =
        absl::StrSplit(parts[0], absl::MaxSplits('-', 1));
    if (!ParseIndex(range.first, &e.first)) {
      return error(absl::StrCat("'", range.first,
                                "' is not an MSR index (0x hex or decimal, at most 0xffffffff)"));
    }
    e.last = e.first;
    if (parts[0].find('-') != absl::string_view::npos) {
      if (!ParseIndex(range.second, &e.last)) {
        return error(absl::StrCat("'", range.second,
                                  "' is not an MSR index (0x hex or decimal, at most 0xffffffff)"));
      }
      if (e.last < e.first) {
        return error(absl::StrCat("range ", parts[0], " ends before it starts"));
      }
    }
    if (parts[1] == "any") {
      e.any_field = true;
    } else if (absl::optional<DiffField> f = ParseDiffField(parts[1]); f.has_value()) {
      e.field = *f;
    } else {
      return error(absl::StrCat("unknown field '", parts[1],
                                "' (outcome, value, registers, memory, state or any)"));
    }
    if (parts.size() < 3 || absl::StripAsciiWhitespace(parts[2]).empty()) {
      return error("entry without a reason (every intended deviation says why)");
    }
    e.reason = std::string(absl::StripAsciiWhitespace(parts[2]));
    for (const AllowEntry& other : list.entries_) {
      if (other.first == e.first && other.last == e.last && other.any_field == e.any_field &&
          other.field == e.field) {
        return error(absl::StrFormat("duplicate of the entry on line %d", other.line));
      }
    }
    list.entries_.push_back(std::move(e));
  }
  return list;
}

absl::StatusOr<Allowlist> Allowlist::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open allowlist: ", strerror(errno)));
  }
  std::string text;
  char buf[4096];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxBytes) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: allowlist is larger than %u bytes", path, kMaxBytes));
    }
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return Parse(text, path);
}

AllowEntry* Allowlist::Match(uint32_t index, DiffField field) {
  for (AllowEntry& e : entries_) {
    if (index >= e.first && index <= e.last && (e.any_field || e.field == field)) {
      ++e.matched;
      return &e;
    }
  }
  return nullptr;
}

void Allowlist::ClearCounts() {
  for (AllowEntry& e : entries_) e.matched = 0;
}

uint64_t DiffIndexCounts::total() const {
  uint64_t n = 0;
  for (uint64_t f : fields) n += f;
  return n;
}

// --- The runner ----------------------------------------------------------------------------------

DifferentialRunner::DifferentialRunner(DiffOptions options, Allowlist* allowlist)
    : options_(std::move(options)),
      allowlist_(allowlist),
      null_sink_(std::make_unique<NullSink>()) {}

DifferentialRunner::~DifferentialRunner() = default;

void DifferentialRunner::BuildReferenceSnapshot(const Snapshot& team) {
  const Snapshot& s = team;
  Snapshot& r = ref_snapshot_;
  const StateLayout& layout = ref_->controller->layout();
  // Per-vCPU slots the reference reserves, by name.
  std::vector<size_t> keep;
  r.vcpu_slot_names.clear();
  for (size_t i = 0; i < s.vcpu_slot_names.size(); ++i) {
    if (layout.FindVcpuSlot(s.vcpu_slot_names[i]) >= 0) {
      keep.push_back(i);
      r.vcpu_slot_names.push_back(s.vcpu_slot_names[i]);
    }
  }
  r.vcpus.resize(s.vcpus.size());
  for (size_t k = 0; k < s.vcpus.size(); ++k) {
    r.vcpus[k].id = s.vcpus[k].id;
    r.vcpus[k].regs = s.vcpus[k].regs;
    r.vcpus[k].slots.clear();
    for (size_t i : keep) {
      if (i < s.vcpus[k].slots.size()) r.vcpus[k].slots.push_back(s.vcpus[k].slots[i]);
    }
  }
  r.vm_slot_names.clear();
  r.vm_slots.clear();
  for (size_t i = 0; i < s.vm_slot_names.size() && i < s.vm_slots.size(); ++i) {
    if (layout.FindVmSlot(s.vm_slot_names[i]) >= 0) {
      r.vm_slot_names.push_back(s.vm_slot_names[i]);
      r.vm_slots.push_back(s.vm_slots[i]);
    }
  }
  // Handler states: the leading handlers of the same type in both sets (a team's set built on
  // the reference installs the reference handlers first).
  r.handler_states.clear();
  const auto& th = team_->controller->handlers();
  const auto& rh = ref_->controller->handlers();
  for (size_t i = 0; i < s.handler_states.size() && i < th.size() && i < rh.size(); ++i) {
    const MsrHandler& a = *th[i];
    const MsrHandler& b = *rh[i];
    if (typeid(a) != typeid(b)) break;
    r.handler_states.push_back(s.handler_states[i]);
  }
  if (s.memory.PageCount() > 0 || r.memory.PageCount() > 0) r.memory = s.memory;
}

void DifferentialRunner::PrepareRows() {
  if (ref_->profile == rows_profile_) return;
  rows_profile_ = ref_->profile;
  rows_ = MsrTable(*ref_->profile);
  related_.assign(rows_.size(), {});
  for (size_t i = 0; i < rows_.size(); ++i) {
    for (size_t j = 0; j < rows_.size() && related_[i].size() < options_.max_related_probes; ++j) {
      if (j != i && std::strcmp(rows_[i].family, rows_[j].family) == 0) {
        related_[i].push_back(rows_[j].index);
      }
    }
  }
}

absl::Status DifferentialRunner::Begin(const TraceHeader& header, const Snapshot& snapshot) {
  if (header.handler_set == options_.reference_set) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the trace's handler set is '%s' itself: nothing to compare against",
                        options_.reference_set));
  }
  Machine* team_before = team_;
  Machine* ref_before = ref_;
  ASSIGN_OR_RETURN(team_, machines_.Get(header));
  ref_header_ = header;
  ref_header_.handler_set = options_.reference_set;
  absl::StatusOr<Machine*> ref = machines_.Get(ref_header_);
  if (!ref.ok()) {
    team_ = nullptr;
    return absl::Status(ref.status().code(),
                        absl::StrCat("reference machine: ", ref.status().message()));
  }
  ref_ = *ref;
  RETURN_IF_ERROR(team_->Restore(snapshot));
  BuildReferenceSnapshot(snapshot);
  absl::Status s = ref_->Restore(ref_snapshot_);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("reference machine: ", s.message()));
  }
  ExitCheckOptions co;
  co.check_architecture = false;
  co.compare_recording = false;
  if (team_checker_ == nullptr || team_ != team_before) {
    team_engine_ = std::make_unique<ControllerEngine>(team_->controller.get());
    team_checker_ = std::make_unique<ExitChecker>(team_, team_engine_.get(), null_sink_.get(), co);
  }
  if (ref_checker_ == nullptr || ref_ != ref_before) {
    ref_engine_ = std::make_unique<ControllerEngine>(ref_->controller.get());
    ref_checker_ = std::make_unique<ExitChecker>(ref_, ref_engine_.get(), null_sink_.get(), co);
  }
  team_checker_->BeginRun();
  ref_checker_->BeginRun();
  PrepareRows();
  result_ = DiffResult();
  result_.team_set = header.handler_set;
  result_.reference_set = options_.reference_set;
  per_index_pos_.clear();
  position_ = 0;
  return absl::OkStatus();
}

const MsrRow* DifferentialRunner::RowOf(uint32_t index) const {
  auto it = std::upper_bound(rows_.begin(), rows_.end(), index,
                             [](uint32_t i, const MsrRow& r) { return i < r.index; });
  if (it == rows_.begin()) return nullptr;
  --it;
  return index <= it->last ? &*it : nullptr;
}

absl::StatusOr<Outcome> DifferentialRunner::Probe(Machine& machine, const Exit& like,
                                                  const Vcpu& vcpu, uint32_t index, Vcpu* scratch) {
  *scratch = vcpu;  // Reuses the scratch's slot storage.
  scratch->regs.reg(Gpr::kRcx) = index;
  scratch->regs.pending = PendingException{};
  Exit rd = like;
  if (rd.vendor == Vendor::kAmdSvm) {
    rd.info1 = 0;
  } else {
    rd.reason = kVmxExitRdmsr;
  }
  return machine.controller->Handle(rd, *scratch, machine.memory);
}

DiffFinding* DifferentialRunner::Report(const ExitEvent& ev, DiffField field, uint32_t probe_index,
                                        bool* finding) {
  const uint32_t index = ev.index();
  AllowEntry* allowed = nullptr;
  if (allowlist_ != nullptr) {
    allowed = allowlist_->Match(index, field);
    if (allowed == nullptr && field == DiffField::kState) {
      allowed = allowlist_->Match(probe_index, DiffField::kValue);
    }
  }
  auto [it, inserted] = per_index_pos_.try_emplace(index, result_.per_index.size());
  if (inserted) {
    DiffIndexCounts c;
    c.index = index;
    c.msr_name = ref_->controller->MsrName(index);
    result_.per_index.push_back(std::move(c));
  }
  DiffIndexCounts& counts = result_.per_index[it->second];
  if (allowed != nullptr) {
    ++counts.allowed;
    ++result_.allowed;
    *finding = false;
    return nullptr;
  }
  ++counts.fields[static_cast<int>(field)];
  ++result_.findings;
  *finding = true;
  if (result_.details.size() >= options_.max_details) return nullptr;
  DiffFinding& f = result_.details.emplace_back();
  f.event = position_;
  f.seq = ev.seq;
  f.vcpu_id = ev.vcpu_id;
  f.index = index;
  f.access = team_checker_->access();
  f.field = field;
  f.msr_name = counts.msr_name;
  if (const MsrRow* row = RowOf(index); row != nullptr) f.citation = row->note;
  return &f;
}

void DifferentialRunner::Compare(const ExitEvent& ev, size_t* added) {
  const absl::StatusOr<Outcome>& tr = team_checker_->result();
  const absl::StatusOr<Outcome>& rr = ref_checker_->result();
  const Access access = team_checker_->access();
  bool finding = false;
  if (team_checker_->observed() != ref_checker_->observed()) {
    if (DiffFinding* f = Report(ev, DiffField::kOutcome, ev.index(), &finding)) {
      f->team = OutcomeText(tr, access);
      f->reference = OutcomeText(rr, access);
    }
    *added += finding ? 1 : 0;
    return;  // Value, registers and state follow from the outcome.
  }
  if (!tr.ok()) return;  // VMM errors on both.
  const bool retired = tr->kind == Outcome::Kind::kRetired;
  if (retired && access == Access::kRead && tr->value != rr->value) {
    if (DiffFinding* f = Report(ev, DiffField::kValue, ev.index(), &finding)) {
      f->team = OutcomeText(tr, access);
      f->reference = OutcomeText(rr, access);
    }
    *added += finding ? 1 : 0;
  } else {
    const VcpuRegs& ta = team_checker_->vcpu().regs;
    const VcpuRegs& ra = ref_checker_->vcpu().regs;
    if (ta != ra) {
      std::string diff =
          RegisterDiff(team_checker_->regs_before(), ta, ref_checker_->regs_before(), ra);
      if (!diff.empty()) {
        if (DiffFinding* f = Report(ev, DiffField::kRegisters, ev.index(), &finding)) {
          f->team = OutcomeText(tr, access);
          f->reference = OutcomeText(rr, access);
          f->detail = absl::StrCat("registers after the exit: ", diff);
        }
        *added += finding ? 1 : 0;
      }
    }
  }
  const WriteLog& tw = team_->controller->last_writes();
  const WriteLog& rw = ref_->controller->last_writes();
  if (tw.Digest() != rw.Digest()) {
    if (DiffFinding* f = Report(ev, DiffField::kMemory, ev.index(), &finding)) {
      f->team = absl::StrFormat("%s, %u guest-memory writes", OutcomeText(tr, access),
                                tw.writes().size());
      f->reference = absl::StrFormat("%s, %u guest-memory writes", OutcomeText(rr, access),
                                     rw.writes().size());
      f->detail = "the guest-memory writes (addresses or bytes) differ";
    }
    *added += finding ? 1 : 0;
  }
  if (retired && access == Access::kWrite) ProbeState(ev, added);
}

void DifferentialRunner::ProbeState(const ExitEvent& ev, size_t* added) {
  const uint32_t index = ev.index();
  const Exit& like = ev.exit;
  auto differ = [&](uint32_t probe_index, const Vcpu& tv, const Vcpu& rv, const char* where) {
    absl::StatusOr<Outcome> t = Probe(*team_, like, tv, probe_index, &scratch_team_);
    absl::StatusOr<Outcome> r = Probe(*ref_, like, rv, probe_index, &scratch_ref_);
    if (SameOutcome(t, r)) return false;
    bool finding = false;
    if (DiffFinding* f = Report(ev, DiffField::kState, probe_index, &finding)) {
      f->team = "retired";
      f->reference = "retired";
      f->detail =
          absl::StrFormat("after the write, rdmsr %s (%#x) on vCPU %u%s: team %s, reference %s",
                          ref_->controller->MsrName(probe_index), probe_index, tv.id, where,
                          OutcomeText(t, Access::kRead), OutcomeText(r, Access::kRead));
    }
    *added += finding ? 1 : 0;
    return true;
  };
  // The index on every vCPU, the writing one first.
  const Vcpu& tw = team_checker_->vcpu();
  const Vcpu& rw = ref_checker_->vcpu();
  if (differ(index, tw, rw, "")) return;
  const size_t n = std::min(team_->vcpus.size(), ref_->vcpus.size());
  for (size_t k = 0; k < n; ++k) {
    const Vcpu& tv = team_->vcpus[k];
    if (tv.id == tw.id) continue;
    if (differ(index, tv, ref_->vcpus[k], " (another vCPU)")) return;
  }
  // The same family's rows on the writing vCPU.
  const MsrRow* row = RowOf(index);
  if (row == nullptr) return;
  const size_t pos = static_cast<size_t>(row - rows_.data());
  for (uint32_t j : related_[pos]) {
    if (team_->controller->Find(j) == nullptr || ref_->controller->Find(j) == nullptr) continue;
    if (differ(j, tw, rw, " (a related MSR)")) return;
  }
}

absl::StatusOr<size_t> DifferentialRunner::Step(const ExitEvent& ev) {
  if (team_ == nullptr || ref_ == nullptr) {
    return absl::FailedPreconditionError("DifferentialRunner::Step before Begin");
  }
  RETURN_IF_ERROR(team_checker_->Run(ev));
  RETURN_IF_ERROR(ref_checker_->Run(ev));
  ++result_.events;
  size_t added = 0;
  const uint32_t index = ev.index();
  if (MsrAccessOf(ev.exit).has_value() && team_->controller->Find(index) != nullptr &&
      ref_->controller->Find(index) != nullptr) {
    ++result_.compared;
    Compare(ev, &added);
  }
  ++position_;
  return added;
}

void DifferentialRunner::Finish() {
  std::sort(result_.per_index.begin(), result_.per_index.end(),
            [](const DiffIndexCounts& a, const DiffIndexCounts& b) { return a.index < b.index; });
  per_index_pos_.clear();
  for (size_t i = 0; i < result_.per_index.size(); ++i) {
    per_index_pos_[result_.per_index[i].index] = i;
  }
}

std::string FormatDiffFinding(const DiffFinding& f, absl::string_view team_set,
                              absl::string_view reference_set) {
  std::string s =
      absl::StrFormat("event %u (seq %u) vCPU %u %s %s (%#x): %s: %s %s, %s %s", f.event, f.seq,
                      f.vcpu_id, AccessName(f.access), f.msr_name, f.index, DiffFieldName(f.field),
                      team_set, f.team, reference_set, f.reference);
  if (!f.detail.empty()) absl::StrAppend(&s, "\n    detail: ", f.detail);
  if (!f.citation.empty()) absl::StrAppend(&s, "\n    kvm: ", f.citation);
  return s;
}

std::string FormatAllowlistSummary(const Allowlist& allowlist) {
  std::string s =
      absl::StrFormat("allowlist %s: %u entries\n", allowlist.name(), allowlist.entries().size());
  for (const AllowEntry& e : allowlist.entries()) {
    const std::string range = e.first == e.last ? absl::StrFormat("%#x", e.first)
                                                : absl::StrFormat("%#x-%#x", e.first, e.last);
    absl::StrAppend(&s, absl::StrFormat("  line %d: %s %s: ", e.line, range,
                                        e.any_field ? "any" : DiffFieldName(e.field)));
    if (e.matched == 0) {
      absl::StrAppend(&s, "never matched");
    } else {
      absl::StrAppend(&s, "matched ", e.matched, e.matched == 1 ? " time" : " times");
    }
    absl::StrAppend(&s, " (", e.reason, ")\n");
  }
  return s;
}

}  // namespace msrtrace
