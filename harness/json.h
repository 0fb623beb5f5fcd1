// JSON string literals for the hand-written JSON outputs (`msrtrace replay/stats/msrs
// --format=json`). One escaper, so every output escapes the same way.
#ifndef MSRTRACE_HARNESS_JSON_H_
#define MSRTRACE_HARNESS_JSON_H_

#include <string>

#include "absl/strings/string_view.h"

namespace msrtrace {

// `s` as a JSON string literal, quotes included (RFC 8259: quote, backslash and control
// characters escaped; other bytes copied).
std::string JsonString(absl::string_view s);

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_JSON_H_
