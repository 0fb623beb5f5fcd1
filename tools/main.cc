// The `msrtrace` binary: the CLI of tools/cli.h with the built-in handler sets. A team's own
// `<name>_msrtrace` is the same CLI with its handler library linked in (tools/set_cli_main.cc).
#include "tools/cli.h"

int main(int argc, char** argv) { return msrtrace::cli::RunMsrtraceCli(argc, argv); }
