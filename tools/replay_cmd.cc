// msrtrace replay: replays traces against the handler set their headers name.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
#include "tools/command.h"
#include "tools/output.h"

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

std::string Json(const ReplayResult& r) {
  std::string s = "{";
  absl::StrAppend(&s, "\"path\":", JsonString(r.name),
                  ",\"status\":", JsonString(StatusWord(ExitCodeOf(r))),
                  ",\"exit_code\":", ExitCodeOf(r));
  absl::StrAppend(&s, ",\"cpu_profile\":", JsonString(r.header.cpu_profile),
                  ",\"handler_set\":", JsonString(r.header.handler_set), ",\"unknown_msr_policy\":",
                  JsonString(UnknownMsrPolicyName(r.header.unknown_msr_policy)),
                  ",\"vcpus\":", r.header.vcpu_count);
  absl::StrAppend(&s, ",\"events\":", r.events, ",\"reads\":", r.reads, ",\"writes\":", r.writes,
                  ",\"faults\":", r.faults, ",\"ignored\":", r.ignored,
                  ",\"vmm_errors\":", r.vmm_errors, ",\"divergence_count\":", r.divergence_count);
  s += ",\"divergences\":[";
  for (size_t i = 0; i < r.divergences.size(); ++i) {
    const Divergence& d = r.divergences[i];
    if (i > 0) s += ",";
    absl::StrAppend(&s, "{\"kind\":", JsonString(DivergenceKindName(d.kind)), ",\"seq\":", d.seq,
                    ",\"vcpu\":", d.vcpu_id, ",\"index\":", JsonString(Hex(d.index)),
                    ",\"msr\":", JsonString(d.msr_name),
                    ",\"access\":", JsonString(d.msr_name.empty() ? "" : AccessName(d.access)),
                    ",\"expected\":", JsonString(d.expected), ",\"actual\":", JsonString(d.actual),
                    ",\"reg_diff\":", JsonString(d.reg_diff), "}");
  }
  s += "],\"per_msr\":[";
  for (size_t i = 0; i < r.per_msr.size(); ++i) {
    const MsrCounts& m = r.per_msr[i];
    if (i > 0) s += ",";
    absl::StrAppend(&s, "{\"index\":", JsonString(Hex(m.index)), ",\"name\":", JsonString(m.name),
                    ",\"reads\":", m.reads, ",\"writes\":", m.writes, ",\"faults\":", m.faults,
                    ",\"ignored\":", m.ignored, ",\"vmm_errors\":", m.vmm_errors, "}");
  }
  s += "],\"skipped\":[";
  for (size_t i = 0; i < r.skipped.size(); ++i) {
    const CorruptRegion& c = r.skipped[i];
    if (i > 0) s += ",";
    absl::StrAppend(&s, "{\"offset\":", c.offset, ",\"record\":", c.record, ",\"bytes\":", c.bytes,
                    ",\"message\":", JsonString(c.message), "}");
  }
  absl::StrAppend(&s, "],\"end\":", JsonString(TraceEndName(r.end)),
                  ",\"final_digest\":", JsonString(absl::StrFormat("0x%016x", r.final_digest)),
                  ",\"recorded_final_digest\":",
                  JsonString(absl::StrFormat("0x%016x", r.recorded_final_digest)),
                  ",\"seconds\":", JsonDouble(r.seconds),
                  ",\"events_per_second\":", JsonDouble(r.events_per_second), "}");
  return s;
}

std::string JsonError(const std::string& path, absl::string_view message) {
  return absl::StrCat("{\"path\":", JsonString(path), ",\"status\":\"error\",\"exit_code\":2",
                      ",\"error\":", JsonString(message), "}");
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
  std::string f;
  f += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  absl::StrAppend(&f, "<testsuites name=\"msrtrace replay\" tests=\"", tests, "\" failures=\"",
                  failures, "\" errors=\"", errors, "\">\n");
  for (const JunitCase& c : cases) {
    absl::StrAppend(&f, "  <testsuite name=\"", XmlEscape(c.path), "\" tests=\"",
                    1 + c.failures.size(), "\" failures=\"", c.failures.size(), "\" errors=\"",
                    c.error.empty() ? 0 : 1, "\" time=\"", JsonDouble(c.seconds), "\">\n");
    absl::StrAppend(&f, "    <testcase classname=\"", XmlEscape(c.path),
                    "\" name=\"replay\" time=\"", JsonDouble(c.seconds), "\">");
    if (!c.error.empty()) {
      absl::StrAppend(&f, "<error message=\"", XmlEscape(c.error), "\"/>");
    } else if (c.divergence_count > 0) {
      absl::StrAppend(&f, "<failure message=\"", c.divergence_count, " divergences\"/>");
    } else if (c.incomplete) {
      absl::StrAppend(&f, "<system-out>incomplete trace (", XmlEscape(c.end),
                      "): intact part clean</system-out>");
    }
    f += "</testcase>\n";
    for (const std::string& fail : c.failures) {
      absl::StrAppend(&f, "    <testcase classname=\"", XmlEscape(c.path), "\" name=\"",
                      XmlEscape(fail), "\"><failure message=\"", XmlEscape(fail),
                      "\"/></testcase>\n");
    }
    f += "  </testsuite>\n";
  }
  f += "</testsuites>\n";
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

int RunReplay(const ReplayOptions& o, std::ostream& out, std::ostream& err) {
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
  if (json) out << "{\"traces\":[";
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
    if (json && i > 0) out << ",";
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
      if (json) out << JsonError(name, msg);
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
      out << Json(*r);
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
    out << "],\"summary\":{\"traces\":" << files.size() << ",\"events\":" << total_events
        << ",\"divergences\":" << total_divergences << ",\"errors\":" << errors
        << ",\"incomplete\":" << incomplete << ",\"seconds\":" << JsonDouble(total_seconds)
        << ",\"events_per_second\":" << JsonDouble(eps) << ",\"exit_code\":" << code << "}}\n";
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
