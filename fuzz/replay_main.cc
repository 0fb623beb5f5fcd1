// main() of `<name>_replay` (msrtrace_add_fuzzer, cmake/MsrtraceFuzz.cmake): exactly
// `<name>_msrtrace replay` (tools/cli.h) with the team's handler library linked in: the same
// flags (--repeat, --resume-after, --format=json, --junit, ...), the same output (each divergence
// once; --repeat and --resume-after failures are their own divergence kinds, nondeterministic and
// resume, naming the pass) and the same exit codes. `<name>_replay ARGS...` runs
// `replay ARGS...`; docs/cli.md documents them.
#include <vector>

#include "tools/cli.h"

int main(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  static char replay[] = "replay";
  args.insert(args.begin() + 1, replay);
  args.push_back(nullptr);
  return msrtrace::cli::RunMsrtraceCli(argc + 1, args.data());
}
