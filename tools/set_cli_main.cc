// main() of `<name>_msrtrace`, the msrtrace CLI that msrtrace_add_cli / msrtrace_add_fuzzer
// (cmake/MsrtraceFuzz.cmake) build for a team: the team's handler library is linked in
// whole-archive, so its RegisterHandlerSet() calls run and every subcommand knows its sets.
// MSRTRACE_CLI_HANDLER_SET is the set record, msrs and seeds use by default (the team's).
#include "tools/cli.h"

#ifndef MSRTRACE_CLI_HANDLER_SET
#define MSRTRACE_CLI_HANDLER_SET "reference"
#endif

int main(int argc, char** argv) {
  msrtrace::cli::CliConfig config;
  config.default_handler_set = MSRTRACE_CLI_HANDLER_SET;
  return msrtrace::cli::RunMsrtraceCli(argc, argv, config);
}
