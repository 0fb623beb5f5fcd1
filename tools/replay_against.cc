// msrtrace replay --against=SET: every event of each trace runs on the trace's own handler set
// and on SET, and the two are compared (triage/differential.h), instead of comparing with the
// recording. Text, JSON and JUnit reports list the disagreements per trace and per index, and the
// allowlist's entries with their match counts.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "harness/core/utf8.h"
#include "harness/trace/atomic_file.h"
#include "harness/trace/read_ahead.h"
#include "harness/trace/trace_file.h"
#include "proto/report.pb.h"
#include "tools/command.h"
#include "tools/output.h"
#include "tools/xml_writer.h"
#include "triage/differential.h"

namespace msrtrace::cli {
namespace {

struct TraceOutcome {
  std::string path;
  std::string error;  // Unusable input.
  DiffResult result;
  double seconds = 0;
};

std::string RangeText(const AllowEntry& e) {
  return e.first == e.last ? absl::StrFormat("%#x", e.first)
                           : absl::StrFormat("%#x-%#x", e.first, e.last);
}

// Runs one trace through `runner`. Errors: unreadable trace, unusable header or snapshot.
absl::Status RunOne(const std::string& path, DifferentialRunner& runner, bool read_ahead,
                    bool progress, std::ostream& err) {
  TraceReaderOptions ro;
  absl::StatusOr<std::unique_ptr<TraceReader>> opened = TraceReader::Open(path, ro);
  if (!opened.ok()) return opened.status();
  std::unique_ptr<TraceReader> reader = *std::move(opened);
  if (read_ahead) reader = ReadAhead(std::move(reader));
  absl::Status s = runner.Begin(reader->header(), reader->snapshot());
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  uint64_t n = 0;
  for (;;) {
    const ExitEvent* event = nullptr;
    absl::StatusOr<bool> more = reader->NextView(&event);
    if (!more.ok()) return more.status();
    if (!*more) break;
    absl::StatusOr<size_t> step = runner.Step(*event);
    if (!step.ok()) {
      return absl::Status(step.status().code(), absl::StrCat(path, ": ", step.status().message()));
    }
    if (progress && (++n & 0xffff) == 0) {
      err << absl::StrFormat("\rcomparing %s: %u events", path, n);
      err.flush();
    }
  }
  if (progress) err << "\r\033[K";
  runner.Finish();
  return absl::OkStatus();
}

void PrintText(const TraceOutcome& t, std::ostream& out) {
  const DiffResult& r = t.result;
  out << t.path << ": " << (r.findings == 0 ? "agrees" : "disagrees") << " with "
      << r.reference_set;
  if (r.findings > 0) out << " (" << r.findings << " disagreements)";
  if (r.allowed > 0) out << " (" << r.allowed << " allowed differences)";
  out << "\n";
  out << absl::StrFormat(
      "  handler set %s against %s: events %u, compared %u (both implement "
      "the index)\n",
      r.team_set, r.reference_set, r.events, r.compared);
  // The KVM citation is printed with the first disagreement of each index only.
  std::vector<uint32_t> cited;
  for (size_t i = 0; i < r.details.size(); ++i) {
    DiffFinding f = r.details[i];
    if (std::find(cited.begin(), cited.end(), f.index) != cited.end()) {
      f.citation.clear();
    } else {
      cited.push_back(f.index);
    }
    out << "  disagreement " << (i + 1) << ": " << FormatDiffFinding(f, r.team_set, r.reference_set)
        << "\n";
  }
  if (r.findings > r.details.size()) {
    out << "  ... " << (r.findings - r.details.size()) << " more (--max-divergences)\n";
  }
  if (!r.per_index.empty()) {
    out << absl::StrFormat("  %-10s %-24s %8s %8s %9s %8s %8s %8s\n", "index", "msr", "outcome",
                           "value", "registers", "memory", "state", "allowed");
    for (const DiffIndexCounts& c : r.per_index) {
      out << absl::StrFormat("  %-10s %-24s %8u %8u %9u %8u %8u %8u\n", Hex(c.index), c.msr_name,
                             c.fields[0], c.fields[1], c.fields[2], c.fields[3], c.fields[4],
                             c.allowed);
    }
  }
}

report::AgainstTrace TraceReport(const TraceOutcome& t) {
  report::AgainstTrace out;
  out.set_path(ValidUtf8(t.path));
  if (!t.error.empty()) {
    out.set_status("error");
    out.set_error(ValidUtf8(t.error));
    return out;
  }
  const DiffResult& r = t.result;
  out.set_status(r.findings == 0 ? "agrees" : "disagrees");
  out.set_handler_set(ValidUtf8(r.team_set));
  out.set_against(ValidUtf8(r.reference_set));
  out.set_events(r.events);
  out.set_compared(r.compared);
  out.set_disagreement_count(r.findings);
  out.set_allowed(r.allowed);
  for (const DiffFinding& f : r.details) {
    report::AgainstDisagreement* d = out.add_disagreements();
    d->set_event(f.event);
    d->set_seq(f.seq);
    d->set_vcpu(f.vcpu_id);
    d->set_index(Hex(f.index));
    d->set_msr(ValidUtf8(f.msr_name));
    d->set_access(AccessName(f.access));
    d->set_field(DiffFieldName(f.field));
    d->set_team(ValidUtf8(f.team));
    d->set_reference(ValidUtf8(f.reference));
    d->set_detail(ValidUtf8(f.detail));
    d->set_kvm(ValidUtf8(f.citation));
  }
  for (const DiffIndexCounts& c : r.per_index) {
    report::AgainstIndexCounts* p = out.add_per_index();
    p->set_index(Hex(c.index));
    p->set_msr(ValidUtf8(c.msr_name));
    p->set_outcome(c.fields[static_cast<int>(DiffField::kOutcome)]);
    p->set_value(c.fields[static_cast<int>(DiffField::kValue)]);
    p->set_registers(c.fields[static_cast<int>(DiffField::kRegisters)]);
    p->set_memory(c.fields[static_cast<int>(DiffField::kMemory)]);
    p->set_state(c.fields[static_cast<int>(DiffField::kState)]);
    p->set_allowed(c.allowed);
  }
  out.set_seconds(std::isfinite(t.seconds) ? t.seconds : 0.0);
  return out;
}

void AllowlistToReport(const Allowlist& list, report::AllowlistReport* out) {
  out->set_path(ValidUtf8(list.name()));
  for (const AllowEntry& e : list.entries()) {
    report::AllowlistEntry* r = out->add_entries();
    r->set_line(e.line);
    r->set_index(RangeText(e));
    r->set_field(e.any_field ? "any" : DiffFieldName(e.field));
    r->set_reason(ValidUtf8(e.reason));
    r->set_matched(e.matched);
  }
}

// One test suite per trace; one test case per index compared with a disagreement (failed) and
// one for the trace as a whole.
bool WriteJunit(const std::string& file, const std::vector<TraceOutcome>& traces,
                const Allowlist& list, std::ostream& err) {
  size_t tests = 0, failures = 0, errors = 0;
  for (const TraceOutcome& t : traces) {
    tests += 1 + t.result.per_index.size();
    errors += t.error.empty() ? 0 : 1;
    failures += t.result.findings > 0 ? 1 : 0;
    for (const DiffIndexCounts& c : t.result.per_index) failures += c.total() > 0 ? 1 : 0;
  }
  XmlWriter x;
  x.Open("testsuites", {{"name", "msrtrace replay --against"},
                        {"tests", absl::StrCat(tests)},
                        {"failures", absl::StrCat(failures)},
                        {"errors", absl::StrCat(errors)}});
  for (const TraceOutcome& t : traces) {
    const DiffResult& r = t.result;
    const std::string time = absl::StrFormat("%.3f", std::isfinite(t.seconds) ? t.seconds : 0.0);
    x.Open("testsuite",
           {{"name", t.path}, {"tests", absl::StrCat(1 + r.per_index.size())}, {"time", time}});
    x.Open("testcase", {{"classname", t.path},
                        {"name", absl::StrCat("against ", r.reference_set)},
                        {"time", time}});
    if (!t.error.empty()) {
      x.Element("error", {{"message", t.error}});
    } else if (r.findings > 0) {
      x.Element("failure", {{"message", absl::StrCat(r.findings, " disagreements")}});
    }
    x.Close();  // testcase
    for (const DiffIndexCounts& c : r.per_index) {
      x.Open("testcase", {{"classname", t.path}, {"name", Hex(c.index) + " " + c.msr_name}});
      if (c.total() > 0) {
        std::string msg = absl::StrCat(c.total(), " disagreements");
        for (const DiffFinding& d : r.details) {
          if (d.index == c.index) {
            msg = FormatDiffFinding(d, r.team_set, r.reference_set);
            break;
          }
        }
        x.Element("failure", {{"message", msg}});
      } else {
        x.Element("system-out", {},
                  absl::StrCat(c.allowed, " differences covered by the allowlist"));
      }
      x.Close();  // testcase
    }
    x.Close();  // testsuite
  }
  if (!list.entries().empty()) {
    x.Open("testsuite", {{"name", "allowlist"}, {"tests", "0"}});
    x.Element("system-out", {}, FormatAllowlistSummary(list));
    x.Close();
  }
  // Atomic and checked: a failed write leaves no half report (and no old report replaced).
  absl::Status s = WriteFileAtomically(file, x.Finish());
  if (!s.ok()) {
    err << "msrtrace replay: cannot write --junit file " << s.message() << "\n";
    return false;
  }
  return true;
}

}  // namespace

int RunReplayAgainst(const ReplayCommandOptions& o, std::ostream& out, std::ostream& err) {
  if (o.against.empty()) {
    err << "msrtrace replay: --allowlist needs --against=SET\n";
    return kExitBadInput;
  }
  if (o.format != Format::kText && o.format != Format::kJson) {
    err << "msrtrace replay: --format must be text or json\n";
    return kExitBadInput;
  }
  if (o.repeat != 1 || o.resume_after != 0 || o.skip_corrupt) {
    err << "msrtrace replay: --against does not combine with --repeat, --resume-after or "
           "--skip-corrupt\n";
    return kExitBadInput;
  }
  if (o.shard_count == 0 || o.shard_index >= o.shard_count) {
    err << "msrtrace replay: --shard=K/N needs 0 <= K < N\n";
    return kExitBadInput;
  }
  if (o.paths.empty()) {
    err << "msrtrace replay: no traces given (see msrtrace replay --help)\n";
    return kExitBadInput;
  }
  Allowlist allowlist;
  if (!o.allowlist.empty()) {
    absl::StatusOr<Allowlist> list = Allowlist::Load(o.allowlist);
    if (!list.ok()) {
      err << "msrtrace replay: " << list.status().message() << "\n";
      return kExitBadInput;
    }
    allowlist = *std::move(list);
  }
  std::vector<std::string> all;
  int code = ExpandTracePaths(o.paths, &all, err);
  if (all.empty()) return kExitBadInput;
  msrtrace::DiffOptions options;
  options.reference_set = o.against;
  options.max_details = o.max_divergences;
  DifferentialRunner runner(options, &allowlist);

  std::vector<TraceOutcome> traces;
  uint64_t events = 0, findings = 0, allowed = 0, errors = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    if (i % o.shard_count != o.shard_index) continue;
    TraceOutcome t;
    t.path = all[i] == "-" ? "<stdin>" : all[i];
    const double start = absl::ToUnixSeconds(absl::Now());
    absl::Status s = RunOne(all[i], runner, o.read_ahead, o.progress, err);
    t.seconds = absl::ToUnixSeconds(absl::Now()) - start;
    if (!s.ok()) {
      ++errors;
      t.error.assign(s.message().data(), s.message().size());
      err << "msrtrace replay: " << t.error << "\n";
      code = CombineExitCodes(code, kExitBadInput);
    } else {
      t.result = runner.result();
      events += t.result.events;
      findings += t.result.findings;
      allowed += t.result.allowed;
      if (t.result.findings > 0) code = CombineExitCodes(code, kExitDivergence);
      if (o.format == Format::kText) PrintText(t, out);
    }
    traces.push_back(std::move(t));
  }
  if (o.format == Format::kJson) {
    report::AgainstReport rep;
    for (const TraceOutcome& t : traces) *rep.add_traces() = TraceReport(t);
    AllowlistToReport(allowlist, rep.mutable_allowlist());
    report::AgainstSummary* sum = rep.mutable_summary();
    sum->set_traces(traces.size());
    sum->set_events(events);
    sum->set_disagreements(findings);
    sum->set_allowed(allowed);
    sum->set_errors(errors);
    sum->set_exit_code(code);
    absl::Status st = PrintJsonReport(rep, out);
    if (!st.ok()) {
      err << "msrtrace replay: " << st.message() << "\n";
      code = CombineExitCodes(code, kExitBadInput);
    }
  } else {
    out << absl::StrFormat(
        "summary: %u traces, %u events against %s, %u disagreements, %u allowed, %u unusable; "
        "exit %d\n",
        traces.size(), events, o.against, findings, allowed, errors, code);
    if (!allowlist.entries().empty()) out << FormatAllowlistSummary(allowlist);
  }
  if (!o.junit.empty() && !WriteJunit(o.junit, traces, allowlist, err)) {
    code = CombineExitCodes(code, kExitBadInput);
  }
  return code;
}

}  // namespace msrtrace::cli
