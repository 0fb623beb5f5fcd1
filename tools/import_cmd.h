// `msrtrace import`: imports production KVM tracepoint captures (raw ftrace, trace-cmd report,
// perf script, bare tracepoint lines; trace-cmd's binary trace.dat; files, "-" for stdin, .gz)
// into an msrtrace trace, infers what the capture does
// not say (initial MSR values, volatile MSRs), and compares the capture with a handler set:
// "N of M production MSRs handled, K disagree". See docs/import.md.
#ifndef MSRTRACE_TOOLS_IMPORT_CMD_H_
#define MSRTRACE_TOOLS_IMPORT_CMD_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace msrtrace::cli {

struct ImportOptions {
  std::vector<std::string> inputs;  // Capture files; "-" = stdin; .gz detected by content.
  std::string output;               // -o: trace to write; empty = summary only.
  std::string profile;              // CPU profile; empty = the default profile.
  std::string handler_set = "reference";
  std::string unknown_msr_policy = "inject-gp";  // inject-gp | ignore | fail.
  std::string vendor;                 // intel | amd for captures without kvm_exit; empty =
                                      // the profile's vendor.
  bool strict = false;                // A bad line or a tolerated line shape is an error (exit 2).
  bool accept_truncated = false;      // Import a cut capture (labelled truncated).
  bool compare = true;                // Compare the capture with the handler set.
  bool fail_on_disagreement = false;  // Exit 1 when a handled MSR disagrees.
  std::string format = "text";        // Summary: text | json.
  bool progress = false;              // Progress on `err` (set when stderr is a terminal).
  uint64_t max_bad_lines = 100;       // Bad lines reported individually.
};

// Returns 0 (ok), 1 (disagreement, only with fail_on_disagreement) or 2 (bad input or usage).
int RunImport(const ImportOptions& options, std::ostream& out, std::ostream& err);

// Flag parsing for msrtrace_main.cc: `args` are the arguments after "import".
int ImportMain(const std::vector<std::string>& args, bool tty);

}  // namespace msrtrace::cli

#endif  // MSRTRACE_TOOLS_IMPORT_CMD_H_
