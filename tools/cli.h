// The msrtrace command line as a library: `msrtrace` is a two-line main() around
// RunMsrtraceCli, and msrtrace_add_cli / msrtrace_add_fuzzer (cmake/MsrtraceFuzz.cmake) build the
// same CLI for a team, with the team's handler library linked in, as `<name>_msrtrace`. Every
// subcommand then knows the team's handler sets (replay, show, stats and diff find them by the
// name in a trace header; record, msrs and seeds default to the team's set).
#ifndef MSRTRACE_TOOLS_CLI_H_
#define MSRTRACE_TOOLS_CLI_H_

#include <string>

namespace msrtrace::cli {

struct CliConfig {
  // Shown in usage lines ("acme_msrtrace"); empty = the basename of argv[0].
  std::string program;
  // The handler set `record`, `msrs` and `seeds` use when --handler-set is not given.
  std::string default_handler_set = "reference";
};

// Runs `argv[1]` (a subcommand) with the flags and arguments after it and returns the process
// exit code (tools/command.h ExitCode). Output goes to stdout, diagnostics to stderr.
int RunMsrtraceCli(int argc, char** argv, const CliConfig& config = {});

}  // namespace msrtrace::cli

#endif  // MSRTRACE_TOOLS_CLI_H_
