#include "triage/coverage.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "harness/core/enum_names.h"
#include "harness/core/status_macros.h"
#include "harness/replay/exit_check.h"
#include "harness/replay/replay.h"
#include "proto/report.pb.h"

namespace msrtrace::triage {
namespace {

constexpr uint64_t kLow32 = 0xffffffffull;

constexpr uint32_t Bit(CoverageCase c) { return 1u << static_cast<uint32_t>(c); }

// PAT memory types: UC, WC, WT, WP, WB, UC- (ref: SDM Vol3 §13.12.2); MTRR types lack UC-.
bool ValidPatType(uint8_t t) { return t == 0 || t == 1 || (t >= 4 && t <= 7); }
bool ValidMtrrType(uint8_t t) { return t == 0 || t == 1 || (t >= 4 && t <= 6); }

bool NonCanonical(uint64_t v, int bits) {
  const int shift = 64 - bits;
  return static_cast<uint64_t>(static_cast<int64_t>(v << shift) >> shift) != v;
}

// A fixed-range MTRR: every byte is a memory type (IA32_MTRR_FIX64K_00000 .. FIX4K_F8000).
bool FixedMtrr(uint32_t index) {
  return index == 0x250 || index == 0x258 || index == 0x259 || (index >= 0x268 && index <= 0x26f);
}

bool HasReservedBits(const MsrRow& row, const CpuProfile& profile, uint64_t v) {
  if ((v & row.reserved_mask) != 0) return true;
  if ((row.checks & kCheckMaxPhyAddr) != 0 && profile.maxphyaddr < 64 &&
      (v >> profile.maxphyaddr) != 0) {
    return true;
  }
  if ((row.checks & kCheckPatTypes) != 0) {
    for (int b = 0; b < 8; ++b) {
      if (!ValidPatType(static_cast<uint8_t>(v >> (8 * b)))) return true;
    }
  }
  if ((row.checks & kCheckMtrrTypes) != 0) {
    const int bytes = FixedMtrr(row.index) ? 8 : 1;
    for (int b = 0; b < bytes; ++b) {
      if (!ValidMtrrType(static_cast<uint8_t>(v >> (8 * b)))) return true;
    }
  }
  return false;
}

std::string Hex(uint64_t v) { return absl::StrFormat("%#x", v); }

}  // namespace

constexpr EnumName<CoverageCase> kCoverageCaseNames[] = {
    {CoverageCase::kReadOk, "read-ok"},
    {CoverageCase::kWriteOk, "write-ok"},
    {CoverageCase::kGpReserved, "gp-reserved"},
    {CoverageCase::kGpReadOnly, "gp-read-only"},
    {CoverageCase::kGpWriteOnly, "gp-write-only"},
    {CoverageCase::kGpCanonical, "gp-canonical"},
    {CoverageCase::kGpLock, "gp-lock"},
    {CoverageCase::kGpMode, "gp-mode"},
    {CoverageCase::kGpFeatureAbsent, "gp-feature-absent"},
    {CoverageCase::kGpOther, "gp-other"},
};
static_assert(sizeof(kCoverageCaseNames) / sizeof(kCoverageCaseNames[0]) ==
                  static_cast<size_t>(CoverageCase::kCount),
              "every CoverageCase has a name");

const char* CoverageCaseName(CoverageCase c) { return NameOf(kCoverageCaseNames, c, "unknown"); }

absl::optional<CoverageCase> ParseCoverageCase(absl::string_view name) {
  return ValueOf(kCoverageCaseNames, name);
}

uint32_t ApplicableCases(const MsrRow& row, bool present) {
  if (!present) return Bit(CoverageCase::kGpFeatureAbsent);
  uint32_t a = 0;
  const uint32_t c = row.checks;
  if ((c & kCheckWriteOnly) == 0) a |= Bit(CoverageCase::kReadOk);
  // Guest writes #GP on read-only rows and on host-only rows, unless the row drops them.
  const bool writes_gp = (c & kCheckReadOnly) != 0 ||
                         ((c & kCheckHostOnlyWrite) != 0 && (c & kCheckWritesIgnored) == 0);
  if (!writes_gp) a |= Bit(CoverageCase::kWriteOk);
  if ((c & kCheckWriteOnly) != 0) a |= Bit(CoverageCase::kGpWriteOnly);
  if (row.reserved_mask != 0 || (c & (kCheckMaxPhyAddr | kCheckPatTypes | kCheckMtrrTypes)) != 0) {
    a |= Bit(CoverageCase::kGpReserved);
  }
  if (writes_gp || row.read_only_mask != 0) {
    a |= Bit(CoverageCase::kGpReadOnly);
  }
  if ((c & kCheckCanonical) != 0) a |= Bit(CoverageCase::kGpCanonical);
  if ((c & kCheckLockBit) != 0) a |= Bit(CoverageCase::kGpLock);
  if ((c & kCheckX2ApicMode) != 0) a |= Bit(CoverageCase::kGpMode);
  // A row that only rejects (read-only and write-only: x2APIC holes) has no write-ok/read-ok.
  return a;
}

CoverageCase ClassifyGp(const MsrRow& row, const CpuProfile& profile, Access access,
                        absl::optional<uint64_t> value) {
  const uint32_t c = row.checks;
  if (access == Access::kRead) {
    if ((c & kCheckWriteOnly) != 0) return CoverageCase::kGpWriteOnly;
    if ((c & kCheckX2ApicMode) != 0) return CoverageCase::kGpMode;
    return CoverageCase::kGpOther;
  }
  if ((c & (kCheckReadOnly | kCheckHostOnlyWrite)) != 0) return CoverageCase::kGpReadOnly;
  if (value.has_value()) {
    if (HasReservedBits(row, profile, *value)) return CoverageCase::kGpReserved;
    if ((c & kCheckCanonical) != 0 && NonCanonical(*value, profile.canonical_bits())) {
      return CoverageCase::kGpCanonical;
    }
  }
  if ((c & kCheckLockBit) != 0) return CoverageCase::kGpLock;
  if ((c & kCheckX2ApicMode) != 0) return CoverageCase::kGpMode;
  if (row.read_only_mask != 0) return CoverageCase::kGpReadOnly;
  return CoverageCase::kGpOther;
}

int RowCoverage::applicable_count() const { return __builtin_popcount(applicable); }

int RowCoverage::covered_count() const {
  int n = 0;
  for (int i = 0; i < kNumCoverageCases; ++i) {
    if (((applicable >> i) & 1) != 0 && counts[i] > 0) ++n;
  }
  return n;
}

int ProfileCoverage::applicable_count() const {
  int n = 0;
  for (const RowCoverage& r : rows) n += r.applicable_count();
  return n;
}

int ProfileCoverage::covered_count() const {
  int n = 0;
  for (const RowCoverage& r : rows) n += r.covered_count();
  return n;
}

// --- Builder --------------------------------------------------------------------------------

absl::StatusOr<CoverageBuilder> CoverageBuilder::Create(const std::string& only_profile,
                                                        bool replay_unrecorded) {
  CoverageBuilder b;
  b.replay_unrecorded_ = replay_unrecorded;
  if (!only_profile.empty()) {
    const CpuProfile* p = FindProfile(only_profile);
    if (p == nullptr) {
      std::vector<std::string> names;
      for (const CpuProfile& q : BuiltinProfiles()) names.push_back(q.name);
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown CPU profile '", only_profile, "' (known: ", absl::StrJoin(names, ", "), ")"));
    }
    b.only_profile_ = only_profile;
    b.ProfileState(*p);
  }
  return b;
}

CoverageBuilder::PerProfile& CoverageBuilder::ProfileState(const CpuProfile& profile) {
  for (PerProfile& p : profiles_) {
    if (p.profile == &profile) return p;
  }
  PerProfile& p = profiles_.emplace_back();
  p.profile = &profile;
  p.coverage.profile = profile.name;
  const std::vector<MsrRow> present = MsrTable(profile);
  for (const MsrRow& row : MsrTable()) {
    RowCoverage rc;
    rc.row = row;
    rc.present = false;
    for (const MsrRow& r : present) {  // Once per profile: the resolved row, if it exists.
      if (r.index == row.index && r.last == row.last) {
        rc.row = r;
        rc.present = true;
        break;
      }
    }
    rc.applicable = ApplicableCases(rc.row, rc.present);
    (rc.present ? p.present : p.absent).push_back(p.coverage.rows.size());
    p.coverage.rows.push_back(rc);
  }
  return p;
}

namespace {

// The row (position in rows) covering `index` among `positions` (sorted by first index), or -1.
ptrdiff_t FindRow(const std::vector<RowCoverage>& rows, const std::vector<size_t>& positions,
                  uint32_t index) {
  auto it = std::upper_bound(positions.begin(), positions.end(), index,
                             [&](uint32_t i, size_t pos) { return i < rows[pos].row.index; });
  if (it == positions.begin()) return -1;
  --it;
  return index <= rows[*it].row.last ? static_cast<ptrdiff_t>(*it) : -1;
}

// Runs `e` on `machine` with the event's inputs set as replay sets them (ApplyEventInputs);
// returns the outcome it gets.
absl::StatusOr<RecordedKind> RunEvent(Machine& machine, const ExitEvent& e) {
  Vcpu* v = machine.FindVcpu(e.vcpu_id);
  if (v == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "event seq %u names vCPU %u, which the snapshot does not have", e.seq, e.vcpu_id));
  }
  ApplyEventInputs(e, &v->regs);
  const absl::StatusOr<Outcome> out = machine.controller->Handle(e.exit, *v, machine.memory);
  return out.ok() ? RecordedKindOf(out->kind) : RecordedKind::kVmmError;
}

}  // namespace

absl::Status CoverageBuilder::Add(TraceReader& reader) {
  const TraceHeader& h = reader.header();
  if (h.handler_set != "reference" || (!only_profile_.empty() && h.cpu_profile != only_profile_)) {
    ++skipped_;
    return absl::OkStatus();
  }
  const CpuProfile* profile = FindProfile(h.cpu_profile);
  if (profile == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown CPU profile '", h.cpu_profile, "' in the trace header"));
  }
  ++traces_;
  PerProfile& p = ProfileState(*profile);
  ProfileCoverage& cov = p.coverage;
  ++cov.traces;
  std::unique_ptr<Machine> machine;
  if (replay_unrecorded_) {
    ASSIGN_OR_RETURN(machine, BuildMachine(h));
    RETURN_IF_ERROR(machine->Restore(reader.snapshot()));
  }
  ExitEvent e;
  while (true) {
    absl::StatusOr<bool> more = reader.Next(&e);
    if (!more.ok()) return more.status();
    if (!*more) break;
    ++cov.events;
    if (machine != nullptr) {
      absl::StatusOr<RecordedKind> kind = RunEvent(*machine, e);
      if (!kind.ok()) return kind.status();
      if (e.kind == RecordedKind::kUnspecified) e.kind = *kind;
    }
    if (e.kind == RecordedKind::kUnspecified) {
      ++cov.no_outcome;
      continue;
    }
    if (e.kind == RecordedKind::kVmmError) {
      ++cov.vmm_errors;
      continue;
    }
    const absl::optional<Access> access = MsrAccessOf(e.exit);
    if (!access.has_value()) continue;
    const uint32_t index = e.index();
    ptrdiff_t pos = FindRow(cov.rows, p.present, index);
    const bool present = pos >= 0;
    if (!present) pos = FindRow(cov.rows, p.absent, index);
    if (pos < 0) {
      p.unknown.insert(index);
      if (e.kind == RecordedKind::kGpInjected) {
        ++cov.unknown_gp;
      } else if (e.kind == RecordedKind::kIgnored) {
        ++cov.unknown_ignored;
      } else {
        ++cov.unknown_retired;
      }
      continue;
    }
    RowCoverage& row = cov.rows[static_cast<size_t>(pos)];
    CoverageCase c;
    if (e.kind == RecordedKind::kGpInjected) {
      absl::optional<uint64_t> value;
      if ((e.known & kFieldRaxRdxIn) != 0) value = ((e.rdx & kLow32) << 32) | (e.rax & kLow32);
      c = present ? ClassifyGp(row.row, *profile, *access, value) : CoverageCase::kGpFeatureAbsent;
    } else {
      c = *access == Access::kRead ? CoverageCase::kReadOk : CoverageCase::kWriteOk;
    }
    ++row.counts[static_cast<size_t>(c)];
  }
  cov.unknown_indices = p.unknown.size();
  return absl::OkStatus();
}

absl::Status CoverageBuilder::AddFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> reader, TraceReader::Open(path));
  return Add(*reader);
}

CoverageReport CoverageBuilder::Finish() const {
  CoverageReport r;
  r.traces = traces_;
  r.skipped_traces = skipped_;
  for (const PerProfile& p : profiles_) r.profiles.push_back(p.coverage);
  std::sort(
      r.profiles.begin(), r.profiles.end(),
      [](const ProfileCoverage& a, const ProfileCoverage& b) { return a.profile < b.profile; });
  return r;
}

// --- Output ---------------------------------------------------------------------------------

namespace {

double Percent(int covered, int applicable) {
  return applicable == 0 ? 100.0 : 100.0 * covered / applicable;
}

// Families in first-appearance order with their rows' positions.
std::vector<std::pair<std::string, std::vector<size_t>>> ByFamily(const ProfileCoverage& p) {
  std::vector<std::pair<std::string, std::vector<size_t>>> out;
  for (size_t i = 0; i < p.rows.size(); ++i) {
    const std::string family = p.rows[i].row.family;
    auto it =
        std::find_if(out.begin(), out.end(), [&](const auto& f) { return f.first == family; });
    if (it == out.end()) {
      out.emplace_back(family, std::vector<size_t>{});
      it = out.end() - 1;
    }
    it->second.push_back(i);
  }
  return out;
}

}  // namespace

report::CoverageReport CoverageMessage(const CoverageReport& report) {
  report::CoverageReport o;
  o.set_format("msrtrace-coverage-1");
  o.set_traces(report.traces);
  o.set_skipped_traces(report.skipped_traces);
  for (int i = 0; i < kNumCoverageCases; ++i) {
    o.add_cases(CoverageCaseName(static_cast<CoverageCase>(i)));
  }
  for (const ProfileCoverage& p : report.profiles) {
    report::CoverageProfile* po = o.add_profiles();
    const int cov = p.covered_count(), app = p.applicable_count();
    po->set_profile(p.profile);
    po->set_traces(p.traces);
    po->set_events(p.events);
    po->set_covered(static_cast<uint32_t>(cov));
    po->set_applicable(static_cast<uint32_t>(app));
    po->set_percent(std::round(Percent(cov, app) * 10) / 10);
    report::CoverageUnknown* u = po->mutable_unknown();
    u->set_indices(p.unknown_indices);
    u->set_gp(p.unknown_gp);
    u->set_ignored(p.unknown_ignored);
    u->set_retired(p.unknown_retired);
    po->set_vmm_errors(p.vmm_errors);
    po->set_no_outcome(p.no_outcome);
    for (const auto& [family, rows] : ByFamily(p)) {
      int fc = 0, fa = 0;
      for (size_t i : rows) {
        fc += p.rows[i].covered_count();
        fa += p.rows[i].applicable_count();
      }
      report::CoverageFamily* f = po->add_families();
      f->set_family(family);
      f->set_covered(static_cast<uint32_t>(fc));
      f->set_applicable(static_cast<uint32_t>(fa));
    }
    for (const RowCoverage& r : p.rows) {
      report::CoverageRow* ro = po->add_rows();
      ro->set_index(Hex(r.row.index));
      ro->set_last(Hex(r.row.last));
      ro->set_name(r.row.name);
      ro->set_family(r.row.family);
      ro->set_present(r.present);
      for (int i = 0; i < kNumCoverageCases; ++i) {
        const bool applicable = ((r.applicable >> i) & 1) != 0;
        if (!applicable && r.counts[i] == 0) continue;
        (*ro->mutable_cases())[CoverageCaseName(static_cast<CoverageCase>(i))] = r.counts[i];
      }
    }
  }
  return o;
}

std::string CoverageJson(const CoverageReport& report) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  options.add_whitespace = true;  // A file people diff and read.
  std::string json;
  // Cannot fail: every string is an MSR-table or profile name (ASCII).
  (void)google::protobuf::util::MessageToJsonString(CoverageMessage(report), &json, options);
  return json;
}

std::string CoverageSummary(const CoverageReport& report) {
  std::string o;
  for (const ProfileCoverage& p : report.profiles) {
    const int cov = p.covered_count(), app = p.applicable_count();
    int rows_hit = 0, rows_present = 0;
    for (const RowCoverage& r : p.rows) {
      if (!r.present) continue;
      ++rows_present;
      if (r.covered_count() > 0) ++rows_hit;
    }
    absl::StrAppendFormat(&o,
                          "coverage %s: %d/%d cases (%.1f%%), %d/%d rows touched, %u traces, "
                          "%u events, %u unknown MSRs\n",
                          p.profile, cov, app, Percent(cov, app), rows_hit, rows_present, p.traces,
                          p.events, p.unknown_indices);
  }
  if (report.profiles.empty()) o += "coverage: no traces of the reference handler set\n";
  if (report.skipped_traces > 0) {
    absl::StrAppend(&o, "coverage: ", report.skipped_traces,
                    " trace(s) skipped (other handler set or profile)\n");
  }
  return o;
}

namespace {

std::string HtmlEscape(absl::string_view s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '&':
        o += "&amp;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

// Heat colour of a count: red for an applicable case never hit, then greens by log10(count).
std::string CellColor(uint64_t count) {
  if (count == 0) return "#d7301f";
  const double l = std::min(1.0, std::log10(static_cast<double>(count)) / 4.0);
  const int g = static_cast<int>(200 - 110 * l);
  const int rb = static_cast<int>(190 - 170 * l);
  return absl::StrFormat("#%02x%02x%02x", rb, g + 40, rb);
}

// Colour of a row's covered fraction: red (0) through amber to green (all).
std::string FractionColor(int covered, int applicable) {
  if (applicable == 0) return "#e0e0e0";
  const double f = static_cast<double>(covered) / applicable;
  if (f <= 0) return "#d7301f";
  if (f < 0.5) return "#fc8d59";
  if (f < 1) return "#fee08b";
  return "#1a9850";
}

}  // namespace

std::string CoverageHtml(const CoverageReport& report) {
  std::string o =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<title>msrtrace coverage</title>\n<style>\n"
      "body{font:13px/1.4 sans-serif;margin:16px;color:#222;background:#fff}\n"
      "h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:20px 0 6px}\n"
      ".map{display:grid;grid-template-columns:170px 1fr 110px;gap:3px 10px;align-items:center}\n"
      ".fam{font-weight:bold}.pct{text-align:right;color:#555}\n"
      ".sq{display:inline-block;width:14px;height:14px;margin:1px;border-radius:2px}\n"
      "table.rows{border-collapse:collapse;margin-top:8px}\n"
      "table.rows td,table.rows th{border:1px solid #fff;padding:1px 4px;font-size:11px}\n"
      "table.rows th{background:#444;color:#fff;writing-mode:vertical-rl;transform:rotate(180deg)"
      ";height:90px;text-align:left}\n"
      "table.rows th.h{writing-mode:horizontal-tb;transform:none;vertical-align:bottom}\n"
      "td.na{background:#eee}td.c{min-width:22px;text-align:right;color:#fff}\n"
      "tr.famrow td{background:#ddd;font-weight:bold}\n"
      ".legend span{display:inline-block;padding:1px 6px;margin-right:6px;color:#fff}\n"
      "</style>\n</head>\n<body>\n<h1>msrtrace coverage map</h1>\n";
  absl::StrAppend(&o, "<p class=\"summary\">", report.traces, " trace(s)",
                  report.skipped_traces ? absl::StrCat(", ", report.skipped_traces,
                                                       " skipped (other handler set or profile)")
                                        : std::string(),
                  ". Each square is one MSR-table row, coloured by the share of its applicable "
                  "cases the traces exercise; the table below shows every case.</p>\n"
                  "<p class=\"legend\"><span style=\"background:#d7301f\">none</span>"
                  "<span style=\"background:#fc8d59\">&lt; half</span>"
                  "<span style=\"background:#fee08b;color:#222\">&ge; half</span>"
                  "<span style=\"background:#1a9850\">all</span>"
                  "<span style=\"background:#e0e0e0;color:#222\">n/a</span></p>\n");
  for (const ProfileCoverage& p : report.profiles) {
    const int cov = p.covered_count(), app = p.applicable_count();
    absl::StrAppend(&o, "<section class=\"profile\" id=\"", HtmlEscape(p.profile), "\">\n<h2>",
                    HtmlEscape(p.profile),
                    absl::StrFormat(": %d/%d cases (%.1f%%)", cov, app, Percent(cov, app)),
                    "</h2>\n<p>", p.traces, " trace(s), ", p.events,
                    " events; unknown MSRs: ", p.unknown_indices, " (", p.unknown_gp, " #GP, ",
                    p.unknown_ignored, " ignored); VMM errors: ", p.vmm_errors,
                    "</p>\n<div class=\"map\">\n");
    const auto families = ByFamily(p);
    for (const auto& [family, positions] : families) {
      int fc = 0, fa = 0;
      std::string squares;
      for (size_t i : positions) {
        const RowCoverage& r = p.rows[i];
        fc += r.covered_count();
        fa += r.applicable_count();
        absl::StrAppend(&squares, "<span class=\"sq\" style=\"background:",
                        FractionColor(r.covered_count(), r.applicable_count()), "\" title=\"",
                        HtmlEscape(absl::StrFormat("%s %#x: %d/%d", r.row.name, r.row.index,
                                                   r.covered_count(), r.applicable_count())),
                        "\"></span>");
      }
      absl::StrAppend(&o, "<div class=\"fam\">", HtmlEscape(family), "</div><div>", squares,
                      "</div><div class=\"pct\">",
                      absl::StrFormat("%d/%d (%.0f%%)", fc, fa, Percent(fc, fa)), "</div>\n");
    }
    o += "</div>\n<table class=\"rows\">\n<tr><th class=\"h\">index</th><th class=\"h\">name</th>";
    for (int i = 0; i < kNumCoverageCases; ++i) {
      absl::StrAppend(&o, "<th>", CoverageCaseName(static_cast<CoverageCase>(i)), "</th>");
    }
    o += "</tr>\n";
    for (const auto& [family, positions] : families) {
      absl::StrAppend(&o, "<tr class=\"famrow\"><td colspan=\"", 2 + kNumCoverageCases, "\">",
                      HtmlEscape(family), "</td></tr>\n");
      for (size_t i : positions) {
        const RowCoverage& r = p.rows[i];
        absl::StrAppend(&o, "<tr><td>",
                        r.row.last != r.row.index
                            ? absl::StrFormat("%#x-%#x", r.row.index, r.row.last)
                            : Hex(r.row.index),
                        "</td><td>", HtmlEscape(r.row.name), r.present ? "" : " (absent)", "</td>");
        for (int c = 0; c < kNumCoverageCases; ++c) {
          const bool applicable = ((r.applicable >> c) & 1) != 0;
          if (!applicable && r.counts[c] == 0) {
            o += "<td class=\"na\"></td>";
          } else {
            absl::StrAppend(&o, "<td class=\"c\" style=\"background:",
                            applicable ? CellColor(r.counts[c]) : "#888", "\">", r.counts[c],
                            "</td>");
          }
        }
        o += "</tr>\n";
      }
    }
    o += "</table>\n</section>\n";
  }
  o += "</body>\n</html>\n";
  return o;
}

absl::StatusOr<std::vector<std::string>> CoverageDrops(const CoverageReport& report,
                                                       absl::string_view baseline_json) {
  report::CoverageReport baseline;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // A newer report's additions.
  const auto st = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(baseline_json.data(), baseline_json.size()), &baseline,
      options);
  auto bad = [](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("baseline is not a coverage report: ", why));
  };
  if (!st.ok()) {  // Protobuf's message points at the token on extra lines: keep one line.
    std::string why(st.message());
    why = why.substr(0, why.find('\n'));
    return bad(absl::StrCat("not JSON of the report's schema (", why, ")"));
  }
  if (baseline.format() != "msrtrace-coverage-1") {
    return bad("no \"format\": \"msrtrace-coverage-1\"");
  }
  std::vector<std::string> drops;
  for (const report::CoverageProfile& bp : baseline.profiles()) {
    if (bp.profile().empty()) return bad("a profile without \"profile\"");
    const ProfileCoverage* now = nullptr;
    for (const ProfileCoverage& p : report.profiles) {
      if (p.profile == bp.profile()) now = &p;
    }
    for (const report::CoverageRow& br : bp.rows()) {
      if (br.index().empty()) return bad("a row without \"index\"");
      const RowCoverage* row = nullptr;
      if (now != nullptr) {
        for (const RowCoverage& r : now->rows) {
          if (Hex(r.row.index) == br.index()) row = &r;
        }
      }
      // Sorted case names, so the drops list is deterministic.
      for (const auto& [c, count] :
           std::map<std::string, uint64_t>(br.cases().begin(), br.cases().end())) {
        if (count == 0) continue;
        const absl::optional<CoverageCase> cc = ParseCoverageCase(c);
        if (!cc.has_value() || *cc == CoverageCase::kGpOther) continue;
        if (row != nullptr && row->counts[static_cast<size_t>(*cc)] > 0) continue;
        drops.push_back(absl::StrCat(bp.profile(), " ", br.name(), " (", br.index(), ") ", c));
      }
    }
  }
  return drops;
}

}  // namespace msrtrace::triage
