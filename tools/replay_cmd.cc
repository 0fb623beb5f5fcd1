// msrtrace replay: replays traces against the handler set their headers name.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "harness/core/dir_walk.h"
#include "harness/replay/replay.h"
#include "harness/trace/atomic_file.h"
#include "proto/report.pb.h"
#include "tools/command.h"
#include "tools/output.h"
#include "tools/xml_writer.h"

namespace msrtrace::cli {
namespace {

bool IsTraceFile(const std::string& name) {
  return absl::EndsWith(name, ".trace") || absl::EndsWith(name, ".trace.gz");
}

int ExitCodeOf(const ReplayResult& r) {
  if (!r.clean()) return kExitDivergence;
  if (r.incomplete()) return kExitIncomplete;
  return kExitOk;
}

const char* StatusWord(int code) {
  switch (code) {
    case kExitOk:
      return "clean";
    case kExitDivergence:
      return "divergent";
    case kExitIncomplete:
      return "incomplete";
    default:
      return "error";
  }
}

std::string DivergenceLine(const Divergence& d) {
  if (d.msr_name.empty()) {
    return absl::StrFormat("%s: expected %s, actual %s", DivergenceKindName(d.kind), d.expected,
                           d.actual);
  }
  return absl::StrFormat("seq %u vCPU %u %s %s (%#x): %s: expected %s, actual %s", d.seq, d.vcpu_id,
                         AccessName(d.access), d.msr_name, d.index, DivergenceKindName(d.kind),
                         d.expected, d.actual);
}

void PrintText(const ReplayResult& r, std::ostream& out) {
  const int code = ExitCodeOf(r);
  out << r.name << ": " << StatusWord(code);
  if (!r.clean()) out << " (" << r.divergence_count << " divergences)";
  if (r.incomplete()) {
    out << " (";
    if (r.end != TraceEnd::kComplete) out << TraceEndName(r.end) << (r.skipped.empty() ? "" : ", ");
    if (!r.skipped.empty()) out << r.skipped.size() << " corrupt regions skipped";
    out << ")";
  }
  out << "\n";
  for (const CorruptRegion& c : r.skipped) out << "  skipped: " << c.message << "\n";
  out << absl::StrFormat("  profile %s, handler set %s, unknown-MSR policy %s, %u vCPUs\n",
                         r.header.cpu_profile, r.header.handler_set,
                         UnknownMsrPolicyName(r.header.unknown_msr_policy), r.header.vcpu_count);
  out << absl::StrFormat(
      "  events %u (reads %u, writes %u), faults %u, ignored %u, vmm errors %u, divergences %u\n",
      r.events, r.reads, r.writes, r.faults, r.ignored, r.vmm_errors, r.divergence_count);
  for (size_t i = 0; i < r.divergences.size(); ++i) {
    const Divergence& d = r.divergences[i];
    out << "  divergence " << (i + 1) << ": " << DivergenceLine(d) << "\n";
    if (!d.reg_diff.empty()) out << "      registers: " << d.reg_diff << "\n";
  }
  if (r.divergence_count > r.divergences.size()) {
    out << "  ... " << (r.divergence_count - r.divergences.size())
        << " more divergences (--max-divergences)\n";
  }
  if (!r.per_msr.empty()) {
    out << absl::StrFormat("  %-10s %-28s %10s %10s %8s %8s %8s\n", "index", "msr", "reads",
                           "writes", "faults", "ignored", "errors");
    for (const MsrCounts& m : r.per_msr) {
      out << absl::StrFormat("  %-10s %-28s %10u %10u %8u %8u %8u\n", Hex(m.index), m.name, m.reads,
                             m.writes, m.faults, m.ignored, m.vmm_errors);
    }
  }
  out << absl::StrFormat("  final state digest 0x%016x", r.final_digest);
  if (r.recorded_final_digest != 0) {
    out << (r.recorded_final_digest == r.final_digest ? " (matches the trailer)"
                                                      : " (trailer differs)");
  }
  out << "\n";
  out << absl::StrFormat("  %u events in %.3f s (%.0f events/s)\n", r.events, r.seconds,
                         r.events_per_second);
}

report::TraceReplay ToReport(const ReplayResult& r) {
  report::TraceReplay t;
  t.set_path(ValidUtf8(r.name));
  t.set_status(StatusWord(ExitCodeOf(r)));
  t.set_exit_code(ExitCodeOf(r));
  t.set_cpu_profile(ValidUtf8(r.header.cpu_profile));
  t.set_handler_set(ValidUtf8(r.header.handler_set));
  t.set_unknown_msr_policy(UnknownMsrPolicyName(r.header.unknown_msr_policy));
  t.set_vcpus(r.header.vcpu_count);
  t.set_events(r.events);
  t.set_reads(r.reads);
  t.set_writes(r.writes);
  t.set_faults(r.faults);
  t.set_ignored(r.ignored);
  t.set_vmm_errors(r.vmm_errors);
  t.set_divergence_count(r.divergence_count);
  for (const Divergence& d : r.divergences) {
    report::Divergence* p = t.add_divergences();
    p->set_kind(DivergenceKindName(d.kind));
    p->set_seq(d.seq);
    p->set_vcpu(d.vcpu_id);
    p->set_index(Hex(d.index));
    p->set_msr(ValidUtf8(d.msr_name));
    p->set_access(d.msr_name.empty() ? "" : AccessName(d.access));
    p->set_expected(ValidUtf8(d.expected));
    p->set_actual(ValidUtf8(d.actual));
    p->set_reg_diff(ValidUtf8(d.reg_diff));
  }
  for (const MsrCounts& m : r.per_msr) {
    report::MsrCounts* p = t.add_per_msr();
    p->set_index(Hex(m.index));
    p->set_name(ValidUtf8(m.name));
    p->set_reads(m.reads);
    p->set_writes(m.writes);
    p->set_faults(m.faults);
    p->set_ignored(m.ignored);
    p->set_vmm_errors(m.vmm_errors);
  }
  t.set_end(TraceEndName(r.end));
  for (const CorruptRegion& c : r.skipped) {
    report::SkippedRegion* p = t.add_skipped();
    p->set_offset(c.offset);
    p->set_record(c.record);
    p->set_bytes(c.bytes);
    p->set_message(ValidUtf8(c.message));
  }
  t.set_final_digest(absl::StrFormat("0x%016x", r.final_digest));
  t.set_recorded_final_digest(absl::StrFormat("0x%016x", r.recorded_final_digest));
  t.set_seconds(r.seconds);
  t.set_events_per_second(r.events_per_second);
  return t;
}

report::TraceReplay ErrorReport(const std::string& path, absl::string_view message) {
  report::TraceReplay t;
  t.set_path(ValidUtf8(path));
  t.set_status("error");
  t.set_exit_code(kExitBadInput);
  t.set_error(ValidUtf8(message));
  return t;
}

// One trace's outcome for the JUnit report.
struct JunitCase {
  std::string path;
  std::string error;  // Unusable input.
  std::vector<std::string> failures;
  uint64_t divergence_count = 0;
  double seconds = 0;
  bool incomplete = false;
  std::string end;
};

bool WriteJunit(const std::string& file, const std::vector<JunitCase>& cases, std::ostream& err) {
  size_t tests = 0, failures = 0, errors = 0;
  for (const JunitCase& c : cases) {
    tests += 1 + c.failures.size();
    failures += c.failures.size() + (c.divergence_count > c.failures.size() ? 1 : 0);
    errors += c.error.empty() ? 0 : 1;
  }
  XmlWriter x;
  x.Open("testsuites", {{"name", "msrtrace replay"},
                        {"tests", absl::StrCat(tests)},
                        {"failures", absl::StrCat(failures)},
                        {"errors", absl::StrCat(errors)}});
  for (const JunitCase& c : cases) {
    const std::string time = absl::StrFormat("%.3f", std::isfinite(c.seconds) ? c.seconds : 0.0);
    x.Open("testsuite", {{"name", c.path},
                         {"tests", absl::StrCat(1 + c.failures.size())},
                         {"failures", absl::StrCat(c.failures.size())},
                         {"errors", c.error.empty() ? "0" : "1"},
                         {"time", time}});
    x.Open("testcase", {{"classname", c.path}, {"name", "replay"}, {"time", time}});
    if (!c.error.empty()) {
      x.Element("error", {{"message", c.error}});
    } else if (c.divergence_count > 0) {
      x.Element("failure", {{"message", absl::StrCat(c.divergence_count, " divergences")}});
    } else if (c.incomplete) {
      x.Element("system-out", {},
                absl::StrCat("incomplete trace (", c.end, "): intact part clean"));
    }
    x.Close();  // testcase
    for (const std::string& fail : c.failures) {
      x.Open("testcase", {{"classname", c.path}, {"name", fail}});
      x.Element("failure", {{"message", fail}});
      x.Close();
    }
    x.Close();  // testsuite
  }
  const std::string f = x.Finish();
  // Atomic and checked: a failed write leaves no half report (and no old report replaced).
  absl::Status s = WriteFileAtomically(file, f);
  if (!s.ok()) {
    err << "msrtrace replay: cannot write --junit file " << s.message() << "\n";
    return false;
  }
  return true;
}

// Copies stdin to a temporary file, for the second passes of --repeat and --resume-after.
// Returns the file's path ("" and a message on `err` on failure); the caller unlinks it.
std::string SpoolStdin(std::ostream& err) {
  const char* base = getenv("TMPDIR");
  std::string templ =
      absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp", "/msrtrace-stdin-XXXXXX");
  const int fd = mkostemp(&templ[0], O_CLOEXEC);
  if (fd < 0) {
    err << "msrtrace replay: cannot spool stdin to " << templ << ": " << strerror(errno) << "\n";
    return "";
  }
  char buf[1 << 16];
  absl::Status s;
  for (;;) {
    const ssize_t n = read(0, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = absl::Status(absl::ErrnoToStatusCode(errno),
                       absl::StrCat("<stdin>: read failed: ", strerror(errno)));
      break;
    }
    if (n == 0) break;
    s = WriteFully(fd, absl::string_view(buf, static_cast<size_t>(n)), templ);
    if (!s.ok()) break;
  }
  close(fd);
  if (!s.ok()) {
    err << "msrtrace replay: cannot spool stdin: " << s.message() << "\n";
    unlink(templ.c_str());
    return "";
  }
  return templ;
}

}  // namespace

int CombineExitCodes(int a, int b) {
  auto rank = [](int c) {
    switch (c) {
      case kExitBadInput:
        return 3;
      case kExitDivergence:
        return 2;
      case kExitIncomplete:
        return 1;
      default:
        return 0;
    }
  };
  return rank(a) >= rank(b) ? a : b;
}

int ExpandTracePaths(const std::vector<std::string>& paths, std::vector<std::string>* files,
                     std::ostream& err) {
  int code = kExitOk;
  // One walker for every directory argument, so a trace reachable from two of them (or twice
  // through symlinks) is listed once.
  DirWalker walker(IsTraceFile);
  for (const std::string& p : paths) {
    struct stat st;
    if (p != "-" && stat(p.c_str(), &st) != 0) {
      err << "msrtrace: " << p << ": " << strerror(errno) << "\n";
      code = kExitBadInput;
      continue;
    }
    if (p != "-" && S_ISDIR(st.st_mode)) {
      std::vector<std::string> found, problems;
      if (walker.Entered(p)) continue;  // Already walked through an earlier argument.
      walker.Walk(p, &found, &problems);
      for (const std::string& problem : problems) err << "msrtrace: " << problem << "\n";
      if (!problems.empty()) code = kExitBadInput;
      if (found.empty() && problems.empty()) {
        err << "msrtrace: " << p
            << ": no *.trace files found (searched recursively for *.trace and *.trace.gz)\n";
        code = kExitBadInput;
      }
      files->insert(files->end(), found.begin(), found.end());
    } else {
      files->push_back(p);
    }
  }
  return code;
}

int RunReplay(const ReplayCommandOptions& o, std::ostream& out, std::ostream& err) {
  if (!o.against.empty() || !o.allowlist.empty()) return RunReplayAgainst(o, out, err);
  if (o.format != Format::kText && o.format != Format::kJson) {
    err << "msrtrace replay: --format must be text or json\n";
    return kExitBadInput;
  }
  if (o.shard_count == 0 || o.shard_index >= o.shard_count) {
    err << "msrtrace replay: --shard=K/N needs 0 <= K < N\n";
    return kExitBadInput;
  }
  if (o.repeat == 0 || o.repeat > 1000000) {
    err << "msrtrace replay: --repeat must be in 1..1000000\n";
    return kExitBadInput;
  }
  absl::optional<VolatilePolicy> vp = ParseVolatilePolicy(o.volatile_policy);
  if (!vp.has_value()) {
    err << "msrtrace replay: --volatile must be auto, exact or kind-only\n";
    return kExitBadInput;
  }
  if (o.paths.empty()) {
    err << "msrtrace replay: no traces given (see msrtrace replay --help)\n";
    return kExitBadInput;
  }
  std::vector<std::string> all;
  int code = ExpandTracePaths(o.paths, &all, err);
  if (all.empty()) return kExitBadInput;  // ExpandTracePaths said why.
  std::vector<std::string> files;
  for (size_t i = 0; i < all.size(); ++i) {
    if (i % o.shard_count == o.shard_index) files.push_back(all[i]);
  }

  msrtrace::ReplayOptions ro;
  ro.volatile_policy = *vp;
  ro.max_divergences = static_cast<uint32_t>(std::min<uint64_t>(o.max_divergences, UINT32_MAX));
  ro.repeat = static_cast<uint32_t>(o.repeat);
  ro.resume_after = o.resume_after;
  ro.skip_corrupt = o.skip_corrupt;
  ro.read_ahead = o.read_ahead;

  // --repeat and --resume-after read a trace more than once: stdin is spooled to a temporary
  // file first (removed at the end), and reported as <stdin>.
  std::string spooled;
  if ((o.repeat > 1 || o.resume_after != 0) &&
      std::find(files.begin(), files.end(), "-") != files.end()) {
    spooled = SpoolStdin(err);
    if (spooled.empty()) return kExitBadInput;
    std::replace(files.begin(), files.end(), std::string("-"), spooled);
  }
  struct Unlinker {
    const std::string& path;
    ~Unlinker() {
      if (!path.empty()) unlink(path.c_str());
    }
  } unlinker{spooled};

  const bool json = o.format == Format::kJson;
  report::ReplayReport json_report;
  std::vector<JunitCase> cases;
  uint64_t total_events = 0, total_divergences = 0, errors = 0, incomplete = 0;
  double total_seconds = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& path = files[i];
    if (o.progress) {
      ro.progress = [&err, &path](uint64_t n, uint64_t offset) {
        err << absl::StrFormat("\rreplaying %s: %u events (%u bytes)", path, n, offset);
        err.flush();
      };
    }
    absl::StatusOr<ReplayResult> r = ReplayFile(path, ro);
    if (o.progress) err << "\r\033[K";
    const bool is_spool = !spooled.empty() && path == spooled;
    const std::string name = is_spool ? "<stdin>" : path;
    JunitCase jc;
    jc.path = name;
    if (r.ok()) {
      r->name = name;
      if (is_spool) {
        for (CorruptRegion& c : r->skipped) {
          c.message = absl::StrReplaceAll(c.message, {{spooled, "<stdin>"}});
        }
      }
    }
    if (!r.ok()) {
      ++errors;
      code = CombineExitCodes(code, kExitBadInput);
      // One line naming the file (the reader's messages already name it and the offset).
      std::string msg(r.status().message());
      if (is_spool) msg = absl::StrReplaceAll(msg, {{spooled, "<stdin>"}});
      if (!absl::StrContains(msg, name)) msg = absl::StrCat(name, ": ", msg);
      err << "msrtrace replay: " << msg << "\n";
      if (json) *json_report.add_traces() = ErrorReport(name, msg);
      jc.error = msg;
      cases.push_back(std::move(jc));
      continue;
    }
    code = CombineExitCodes(code, ExitCodeOf(*r));
    total_events += r->events;
    total_divergences += r->divergence_count;
    total_seconds += r->seconds;
    if (r->incomplete()) ++incomplete;
    for (const CorruptRegion& c : r->skipped) {
      err << "msrtrace replay: skipped " << c.message << "\n";
    }
    if (json) {
      *json_report.add_traces() = ToReport(*r);
    } else {
      PrintText(*r, out);
    }
    for (const Divergence& d : r->divergences) jc.failures.push_back(DivergenceLine(d));
    jc.divergence_count = r->divergence_count;
    jc.seconds = r->seconds;
    jc.incomplete = r->incomplete();
    jc.end = r->skipped.empty() ? std::string(TraceEndName(r->end))
                                : absl::StrCat(TraceEndName(r->end), ", ", r->skipped.size(),
                                               " corrupt regions skipped");
    cases.push_back(std::move(jc));
  }
  const double eps = total_seconds > 0 ? static_cast<double>(total_events) / total_seconds : 0;
  if (json) {
    report::ReplaySummary* sum = json_report.mutable_summary();
    sum->set_traces(files.size());
    sum->set_events(total_events);
    sum->set_divergences(total_divergences);
    sum->set_errors(errors);
    sum->set_incomplete(incomplete);
    sum->set_seconds(total_seconds);
    sum->set_events_per_second(eps);
    sum->set_exit_code(code);
    const absl::Status st = PrintJsonReport(json_report, out);
    if (!st.ok()) {
      err << "msrtrace replay: " << st.message() << "\n";
      code = CombineExitCodes(code, kExitBadInput);
    }
  } else {
    out << absl::StrFormat(
        "summary: %u traces, %u events, %u divergences, %u unusable, %u incomplete; %.0f "
        "events/s; exit %d\n",
        files.size(), total_events, total_divergences, errors, incomplete, eps, code);
  }
  if (!o.junit.empty() && !WriteJunit(o.junit, cases, err)) {
    code = CombineExitCodes(code, kExitBadInput);
  }
  return code;
}

}  // namespace msrtrace::cli
