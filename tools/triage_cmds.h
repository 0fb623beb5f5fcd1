// `msrtrace reduce` and `msrtrace coverage`: thin flag-parsing fronts of triage/reduce.h and
// triage/coverage.h. docs/triage.md describes both with examples; docs/cli.md lists the flags.
#ifndef MSRTRACE_TOOLS_TRIAGE_CMDS_H_
#define MSRTRACE_TOOLS_TRIAGE_CMDS_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace msrtrace::cli {

struct ReduceCmdOptions {
  std::string input;
  std::string output;       // Required; written atomically (temp file + rename).
  std::string divergence;   // A DivergenceKindName; empty = the first divergence.
  std::string msr;          // MSR index of the divergence ("0x277" or decimal); empty = any.
  bool any_values = false;  // Match the divergence's kind and MSR only, not its values.
  std::string volatile_policy = "auto";
  std::string oracle;       // An oracle name, or "any": reduce a failing oracle.
  std::string fuzz_target;  // A fuzz target binary: reduce its crash.
  std::string signature;    // The crash signature to keep (default: the original's).
  uint64_t timeout = 30;    // Seconds per fuzz-target run.
  uint64_t max_seconds = 300;
  bool no_snapshot = false;
  bool no_values = false;
  bool progress = false;  // Progress on `err` (set when stderr is a terminal).
};
// 0: reduced and written; 2: unusable input, usage, or a trace that does not show the finding.
int RunReduce(const ReduceCmdOptions& options, std::ostream& out, std::ostream& err);
int ReduceMain(const std::vector<std::string>& args, bool tty);

struct CoverageCmdOptions {
  std::vector<std::string> paths;  // Trace files or directories.
  std::string profile;             // Only traces of this CPU profile.
  bool replay = false;             // Replay events without a recorded outcome (fuzz corpora).
  bool skip_bad = false;           // Report an unreadable trace and go on (exit 0).
  std::string format = "text";     // stdout: text summary or the JSON report.
  std::string json;                // Also write the JSON report here.
  std::string html;                // Write the HTML heat map here.
  std::string baseline;            // A previous JSON report: exit 1 if a case it covers is lost.
};
// 0: ok; 1: coverage dropped against the baseline; 2: unusable input or usage.
int RunCoverage(const CoverageCmdOptions& options, std::ostream& out, std::ostream& err);
int CoverageMain(const std::vector<std::string>& args, bool tty);

}  // namespace msrtrace::cli

#endif  // MSRTRACE_TOOLS_TRIAGE_CMDS_H_
