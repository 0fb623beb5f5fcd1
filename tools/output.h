// Small output helpers shared by the subcommands: XML escaping (JSON: harness/json.h), hex
// formatting, and the terminal check for progress display.
#ifndef MSRTRACE_TOOLS_OUTPUT_H_
#define MSRTRACE_TOOLS_OUTPUT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "harness/json.h"  // JsonString

namespace msrtrace::cli {

// `s` with &, <, >, " and ' escaped, and control characters other than tab and newline dropped.
std::string XmlEscape(absl::string_view s);
// "0x1b" (JSON keys documented as hex strings use this).
std::string Hex(uint64_t v);
// A JSON number for a double that is always valid JSON (no inf/nan).
std::string JsonDouble(double v);

}  // namespace msrtrace::cli

#endif  // MSRTRACE_TOOLS_OUTPUT_H_
