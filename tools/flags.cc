#include "tools/flags.h"

#include <iostream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/command.h"

namespace msrtrace::cli {

FlagParser::FlagParser(std::string command, std::string usage, std::string description)
    : command_(std::move(command)),
      usage_(std::move(usage)),
      description_(std::move(description)) {}

void FlagParser::String(const char* name, std::string* out, const char* help, char short_name) {
  flags_.push_back({name, short_name, Type::kString, out, help,
                    out->empty() ? "" : absl::StrCat("\"", *out, "\"")});
}

void FlagParser::Uint(const char* name, uint64_t* out, const char* help) {
  flags_.push_back({name, 0, Type::kUint, out, help, absl::StrCat(*out)});
}

void FlagParser::Bool(const char* name, bool* out, const char* help) {
  flags_.push_back({name, 0, Type::kBool, out, help, *out ? "true" : ""});
}

void FlagParser::Positional(const char* name, std::vector<std::string>* out, const char* help,
                            size_t min, size_t max) {
  positional_name_ = name;
  positional_help_ = help;
  positional_ = out;
  min_positional_ = min;
  max_positional_ = max;
}

const FlagParser::Flag* FlagParser::Find(const std::string& name) const {
  for (const Flag& f : flags_) {
    if (f.name == name || (name.size() == 1 && f.short_name == name[0])) return &f;
  }
  return nullptr;
}

absl::Status FlagParser::Set(const Flag& flag, const std::string& value, bool has_value) {
  switch (flag.type) {
    case Type::kString:
      *static_cast<std::string*>(flag.out) = value;
      return absl::OkStatus();
    case Type::kUint: {
      uint64_t v = 0;
      bool ok = false;
      if (value.size() > 2 && value[0] == '0' && (value[1] == 'x' || value[1] == 'X')) {
        ok = absl::SimpleHexAtoi(value.substr(2), &v);
      } else {
        ok = !value.empty() && value[0] != '-' && absl::SimpleAtoi(value, &v);
      }
      if (!ok) {
        return absl::InvalidArgumentError(
            absl::StrFormat("--%s: '%s' is not a non-negative integer", flag.name, value));
      }
      *static_cast<uint64_t*>(flag.out) = v;
      return absl::OkStatus();
    }
    case Type::kBool:
      if (!has_value || value == "true" || value == "1") {
        *static_cast<bool*>(flag.out) = true;
      } else if (value == "false" || value == "0") {
        *static_cast<bool*>(flag.out) = false;
      } else {
        return absl::InvalidArgumentError(
            absl::StrFormat("--%s: '%s' is not true or false", flag.name, value));
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status FlagParser::Parse(const std::vector<std::string>& args) {
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (flags_done || a.size() < 2 || a[0] != '-') {
      if (positional_ == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrFormat("unexpected argument '%s' (see %s --help)", a, command_));
      }
      positional_->push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      help_ = true;
      return absl::OkStatus();
    }
    std::string name, value;
    bool has_value = false;
    if (a[1] == '-') {
      const size_t eq = a.find('=');
      name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        has_value = true;
      }
    } else {
      name = a.substr(1);
      if (name.size() != 1) {
        return absl::InvalidArgumentError(
            absl::StrFormat("unknown flag '%s' (see %s --help)", a, command_));
      }
    }
    const Flag* f = Find(name);
    if (f == nullptr || (a[1] != '-' && f->short_name != name[0])) {
      return absl::InvalidArgumentError(
          absl::StrFormat("unknown flag '%s' (see %s --help)", a, command_));
    }
    if (!has_value && f->type != Type::kBool) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrFormat("flag --%s needs a value", f->name));
      }
      value = args[++i];
      has_value = true;
    }
    absl::Status st = Set(*f, value, has_value);
    if (!st.ok()) return st;
  }
  if (positional_ != nullptr) {
    if (positional_->size() < min_positional_) {
      return absl::InvalidArgumentError(
          absl::StrFormat("missing %s (see %s --help)", positional_name_, command_));
    }
    if (positional_->size() > max_positional_) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "too many arguments: expected at most %u %s", max_positional_, positional_name_));
    }
  }
  return absl::OkStatus();
}

std::string FlagParser::Help() const {
  std::string s =
      absl::StrCat("Usage: ", command_, " [flags] ", usage_, "\n\n", description_, "\n");
  if (positional_ != nullptr) {
    absl::StrAppend(&s, "\nArguments:\n  ", positional_name_, "\n      ", positional_help_, "\n");
  }
  s.append("\nFlags:\n");
  for (const Flag& f : flags_) {
    std::string left = f.short_name != 0 ? absl::StrFormat("  -%c, --%s", f.short_name, f.name)
                                         : absl::StrCat("  --", f.name);
    if (f.type == Type::kString) left.append("=STRING");
    if (f.type == Type::kUint) left.append("=N");
    absl::StrAppend(&s, left, "\n      ", f.help);
    if (!f.default_text.empty()) absl::StrAppend(&s, " (default ", f.default_text, ")");
    s.append("\n");
  }
  s.append("  -h, --help\n      Show this help.\n");
  return s;
}

int FlagParser::ParseOrExit(const std::vector<std::string>& args) {
  const absl::Status st = Parse(args);
  if (!st.ok()) {
    std::cerr << "msrtrace: " << st.message() << "\n";
    return kExitBadInput;
  }
  if (help_requested()) {
    std::cout << Help();
    return kExitOk;
  }
  return -1;
}

}  // namespace msrtrace::cli
