// `msrtrace coverage`: flags -> triage::CoverageBuilder -> summary, JSON, HTML, baseline check.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "tools/command.h"
#include "tools/flags.h"
#include "tools/triage_cmds.h"
#include "triage/coverage.h"

namespace msrtrace::cli {
namespace {

bool WriteFile(const std::string& path, const std::string& data, std::ostream& err) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  f.close();
  if (!f) {
    err << "msrtrace coverage: " << path << ": cannot write\n";
    return false;
  }
  return true;
}

}  // namespace

int RunCoverage(const CoverageCmdOptions& o, std::ostream& out, std::ostream& err) {
  if (o.format != "text" && o.format != "json") {
    err << "msrtrace coverage: --format: unknown format '" << o.format << "' (text or json)\n";
    return kExitBadInput;
  }
  std::vector<std::string> files;
  if (int c = ExpandTracePaths(o.paths, &files, err); c != kExitOk) return c;
  absl::StatusOr<triage::CoverageBuilder> builder =
      triage::CoverageBuilder::Create(o.profile, o.replay);
  if (!builder.ok()) {
    err << "msrtrace coverage: --profile: " << builder.status().message() << "\n";
    return kExitBadInput;
  }
  uint64_t bad = 0;
  for (const std::string& f : files) {
    absl::Status st = builder->AddFile(f);
    if (!st.ok()) {
      // The reader's errors name the file already.
      err << "msrtrace coverage: " << (absl::StrContains(st.message(), f) ? "" : f + ": ")
          << st.message() << "\n";
      if (!o.skip_bad) return kExitBadInput;
      ++bad;  // Its events up to the bad record count.
    }
  }
  if (bad > 0) err << "msrtrace coverage: " << bad << " unreadable trace(s) skipped\n";
  const triage::CoverageReport report = builder->Finish();
  const std::string json = triage::CoverageJson(report);
  if (!o.json.empty() && !WriteFile(o.json, json, err)) return kExitBadInput;
  if (!o.html.empty() && !WriteFile(o.html, triage::CoverageHtml(report), err)) {
    return kExitBadInput;
  }
  out << (o.format == "json" ? json : triage::CoverageSummary(report));
  if (o.baseline.empty()) return kExitOk;
  std::ifstream b(o.baseline, std::ios::binary);
  if (!b) {
    err << "msrtrace coverage: --baseline: " << o.baseline << ": cannot read\n";
    return kExitBadInput;
  }
  std::stringstream text;
  text << b.rdbuf();
  absl::StatusOr<std::vector<std::string>> drops = triage::CoverageDrops(report, text.str());
  if (!drops.ok()) {
    err << "msrtrace coverage: --baseline: " << o.baseline << ": " << drops.status().message()
        << "\n";
    return kExitBadInput;
  }
  if (drops->empty()) return kExitOk;
  constexpr size_t kShown = 5;
  std::vector<std::string> shown(
      drops->begin(), drops->begin() + static_cast<ptrdiff_t>(std::min(kShown, drops->size())));
  err << "msrtrace coverage: coverage dropped against " << o.baseline << ": " << drops->size()
      << " case(s) no longer exercised: " << absl::StrJoin(shown, ", ")
      << (drops->size() > kShown ? ", ..." : "") << "\n";
  return kExitDivergence;
}

int CoverageMain(const std::vector<std::string>& args, bool) {
  CoverageCmdOptions o;
  FlagParser p("msrtrace coverage", "PATH...",
               "Reports which cases of every MSR-table row (read ok, write ok, each #GP reason) "
               "the traces exercise, per CPU profile, as a summary, JSON and an HTML heat map."
               "\nExit status: 0 ok, 1 coverage dropped against --baseline, 2 bad input.\n"
               "Example:\n  msrtrace coverage corpus/ --html=coverage.html "
               "--json=coverage.json --baseline=ci/coverage.json");
  p.Positional("PATH...", &o.paths, "Trace files or directories (searched for *.trace[.gz]).", 1);
  p.String("profile", &o.profile, "Only traces of this CPU profile.");
  p.Bool("replay", &o.replay,
         "Replay events without a recorded outcome (fuzz corpora) to classify them.");
  p.Bool("skip-bad", &o.skip_bad,
         "Report an unreadable trace on stderr and go on (fuzz corpora); else exit 2.");
  p.String("format", &o.format, "stdout: text (summary) or json (the report).");
  p.String("json", &o.json, "Also write the JSON report to this file.");
  p.String("html", &o.html, "Write the HTML heat map (one self-contained page) to this file.");
  p.String("baseline", &o.baseline,
           "A previous JSON report: exit 1 when a case it covers is no longer covered.");
  if (int c = p.ParseOrExit(args); c >= 0) return c;
  return RunCoverage(o, std::cout, std::cerr);
}

}  // namespace msrtrace::cli
