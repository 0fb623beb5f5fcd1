// msrtrace replay --against=SET: every event of each trace runs on the trace's own handler set
// and on SET, and the two are compared (triage/differential.h), instead of comparing with the
// recording. Text, JSON and JUnit reports list the disagreements per trace and per index, and the
// allowlist's entries with their match counts.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "harness/trace/atomic_file.h"
#include "harness/trace/trace_file.h"
#include "tools/command.h"
#include "tools/output.h"
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
absl::Status RunOne(const std::string& path, DifferentialRunner& runner, bool progress,
                    std::ostream& err) {
  TraceReaderOptions ro;
  auto reader = TraceReader::Open(path, ro);
  if (!reader.ok()) return reader.status();
  absl::Status s = runner.Begin((*reader)->header(), (*reader)->snapshot());
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  ExitEvent event;
  uint64_t n = 0;
  for (;;) {
    absl::StatusOr<bool> more = (*reader)->Next(&event);
    if (!more.ok()) return more.status();
    if (!*more) break;
    absl::StatusOr<size_t> step = runner.Step(event);
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

std::string Json(const TraceOutcome& t) {
  if (!t.error.empty()) {
    return absl::StrCat("{\"path\":", JsonString(t.path),
                        ",\"status\":\"error\",\"error\":", JsonString(t.error), "}");
  }
  const DiffResult& r = t.result;
  std::string s = absl::StrCat(
      "{\"path\":", JsonString(t.path),
      ",\"status\":", JsonString(r.findings == 0 ? "agrees" : "disagrees"),
      ",\"handler_set\":", JsonString(r.team_set), ",\"against\":", JsonString(r.reference_set),
      ",\"events\":", r.events, ",\"compared\":", r.compared,
      ",\"disagreement_count\":", r.findings, ",\"allowed\":", r.allowed, ",\"disagreements\":[");
  for (size_t i = 0; i < r.details.size(); ++i) {
    const DiffFinding& f = r.details[i];
    absl::StrAppend(&s, i > 0 ? "," : "", "{\"event\":", f.event, ",\"seq\":", f.seq,
                    ",\"vcpu\":", f.vcpu_id, ",\"index\":", JsonString(Hex(f.index)),
                    ",\"msr\":", JsonString(f.msr_name),
                    ",\"access\":", JsonString(AccessName(f.access)),
                    ",\"field\":", JsonString(DiffFieldName(f.field)),
                    ",\"team\":", JsonString(f.team), ",\"reference\":", JsonString(f.reference),
                    ",\"detail\":", JsonString(f.detail), ",\"kvm\":", JsonString(f.citation), "}");
  }
  s += "],\"per_index\":[";
  for (size_t i = 0; i < r.per_index.size(); ++i) {
    const DiffIndexCounts& c = r.per_index[i];
    absl::StrAppend(&s, i > 0 ? "," : "", "{\"index\":", JsonString(Hex(c.index)),
                    ",\"msr\":", JsonString(c.msr_name));
    for (int f = 0; f < kNumDiffFields; ++f) {
      absl::StrAppend(&s, ",", JsonString(DiffFieldName(static_cast<DiffField>(f))), ":",
                      c.fields[f]);
    }
    absl::StrAppend(&s, ",\"allowed\":", c.allowed, "}");
  }
  absl::StrAppend(&s, "],\"seconds\":", JsonDouble(t.seconds), "}");
  return s;
}

std::string AllowlistJson(const Allowlist& list) {
  std::string s = absl::StrCat("{\"path\":", JsonString(list.name()), ",\"entries\":[");
  for (size_t i = 0; i < list.entries().size(); ++i) {
    const AllowEntry& e = list.entries()[i];
    absl::StrAppend(&s, i > 0 ? "," : "", "{\"line\":", e.line,
                    ",\"index\":", JsonString(RangeText(e)),
                    ",\"field\":", JsonString(e.any_field ? "any" : DiffFieldName(e.field)),
                    ",\"reason\":", JsonString(e.reason), ",\"matched\":", e.matched, "}");
  }
  return s + "]}";
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
  std::string f = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  absl::StrAppend(&f, "<testsuites name=\"msrtrace replay --against\" tests=\"", tests,
                  "\" failures=\"", failures, "\" errors=\"", errors, "\">\n");
  for (const TraceOutcome& t : traces) {
    const DiffResult& r = t.result;
    absl::StrAppend(&f, "  <testsuite name=\"", XmlEscape(t.path), "\" tests=\"",
                    1 + r.per_index.size(), "\" time=\"", JsonDouble(t.seconds), "\">\n");
    absl::StrAppend(&f, "    <testcase classname=\"", XmlEscape(t.path), "\" name=\"against ",
                    XmlEscape(r.reference_set), "\" time=\"", JsonDouble(t.seconds), "\">");
    if (!t.error.empty()) {
      absl::StrAppend(&f, "<error message=\"", XmlEscape(t.error), "\"/>");
    } else if (r.findings > 0) {
      absl::StrAppend(&f, "<failure message=\"", r.findings, " disagreements\"/>");
    }
    f += "</testcase>\n";
    for (const DiffIndexCounts& c : r.per_index) {
      absl::StrAppend(&f, "    <testcase classname=\"", XmlEscape(t.path), "\" name=\"",
                      Hex(c.index), " ", XmlEscape(c.msr_name), "\">");
      if (c.total() > 0) {
        std::string msg = absl::StrCat(c.total(), " disagreements");
        for (const DiffFinding& d : r.details) {
          if (d.index == c.index) {
            msg = FormatDiffFinding(d, r.team_set, r.reference_set);
            break;
          }
        }
        absl::StrAppend(&f, "<failure message=\"", XmlEscape(msg), "\"/>");
      } else {
        absl::StrAppend(&f, "<system-out>", c.allowed,
                        " differences covered by the allowlist</system-out>");
      }
      f += "</testcase>\n";
    }
    f += "  </testsuite>\n";
  }
  if (!list.entries().empty()) {
    f += "  <testsuite name=\"allowlist\" tests=\"0\"><system-out>";
    f += XmlEscape(FormatAllowlistSummary(list));
    f += "</system-out></testsuite>\n";
  }
  f += "</testsuites>\n";
  absl::Status s = WriteFileAtomically(file, f);
  if (!s.ok()) {
    err << "msrtrace replay: cannot write --junit file " << s.message() << "\n";
    return false;
  }
  return true;
}

}  // namespace

int RunReplayAgainst(const ReplayOptions& o, std::ostream& out, std::ostream& err) {
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
    absl::Status s = RunOne(all[i], runner, o.progress, err);
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
    out << "{\"traces\":[";
    for (size_t i = 0; i < traces.size(); ++i) out << (i > 0 ? "," : "") << Json(traces[i]);
    out << "],\"allowlist\":" << AllowlistJson(allowlist)
        << ",\"summary\":{\"traces\":" << traces.size() << ",\"events\":" << events
        << ",\"disagreements\":" << findings << ",\"allowed\":" << allowed
        << ",\"errors\":" << errors << ",\"exit_code\":" << code << "}}\n";
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
