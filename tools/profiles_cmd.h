// `msrtrace profiles`: the built-in CPU profiles, their CPUID features, MAXPHYADDR and vPMU, and
// which MSR table rows depend on each (docs/cli.md).
#ifndef MSRTRACE_TOOLS_PROFILES_CMD_H_
#define MSRTRACE_TOOLS_PROFILES_CMD_H_

#include <ostream>
#include <string>
#include <vector>

namespace msrtrace::cli {

// Prints every profile (or --profile=NAME) as a table or JSON. Exit 0, or 2 on a bad flag or an
// unknown profile.
int RunProfiles(const std::string& profile, const std::string& format, std::ostream& out,
                std::ostream& err);
// Flag parsing for the subcommand (msrtrace_main.cc registers it).
int ProfilesMain(const std::vector<std::string>& args, bool tty);

}  // namespace msrtrace::cli

#endif  // MSRTRACE_TOOLS_PROFILES_CMD_H_
