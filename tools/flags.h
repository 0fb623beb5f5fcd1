// A small command-line flag parser for msrtrace's subcommands.
//
// Why not CLI11 (libcli11-dev 2.1.2)? It compiles under -fno-exceptions, but it reports every
// parse error (unknown flag, bad number) by throwing, which with exceptions disabled aborts the
// process: a crash on bad input. This parser returns absl::Status instead.
//
// Syntax: --name=value, --name value, --bool / --bool=true|false, -o value for flags given a
// short name, -h / --help; "--" ends the flags; everything else is a positional argument.
// Not thread-safe; one parser per subcommand invocation.
#ifndef MSRTRACE_TOOLS_FLAGS_H_
#define MSRTRACE_TOOLS_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace msrtrace::cli {

class FlagParser {
 public:
  // `command` ("msrtrace replay"), `usage` ("PATH..."), `description` (a paragraph).
  FlagParser(std::string command, std::string usage, std::string description);

  // Registers flags. `out` must outlive Parse(); it holds the default and receives the value.
  // `short_name` is 0 or a letter for a one-dash alias.
  void String(const char* name, std::string* out, const char* help, char short_name = 0);
  void Uint(const char* name, uint64_t* out, const char* help);
  void Bool(const char* name, bool* out, const char* help);
  // Positional arguments land in *out; Parse fails if fewer than `min` or more than `max`.
  void Positional(const char* name, std::vector<std::string>* out, const char* help, size_t min = 0,
                  size_t max = SIZE_MAX);

  // Parses `args` (without the program and subcommand names). Errors are one line naming the
  // flag. After --help, Parse returns OK and help_requested() is true.
  [[nodiscard]] absl::Status Parse(const std::vector<std::string>& args);
  bool help_requested() const { return help_; }
  std::string Help() const;
  // Parse() for a subcommand's entry point: on an error prints "msrtrace: <error>" to stderr and
  // returns kExitBadInput; after --help prints Help() to stdout and returns kExitOk; else -1
  // (go on).
  int ParseOrExit(const std::vector<std::string>& args);

 private:
  enum class Type : uint8_t { kString, kUint, kBool };
  struct Flag {
    std::string name;
    char short_name;
    Type type;
    void* out;
    std::string help;
    std::string default_text;
  };
  const Flag* Find(const std::string& name) const;
  absl::Status Set(const Flag& flag, const std::string& value, bool has_value);

  std::string command_, usage_, description_;
  std::vector<Flag> flags_;
  std::string positional_name_, positional_help_;
  std::vector<std::string>* positional_ = nullptr;
  size_t min_positional_ = 0, max_positional_ = 0;
  bool help_ = false;
};

}  // namespace msrtrace::cli

#endif  // MSRTRACE_TOOLS_FLAGS_H_
