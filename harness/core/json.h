// JSON string literals for the hand-written JSON outputs (`msrtrace replay/stats/msrs
// --format=json`). One escaper, so every output escapes the same way.
#ifndef MSRTRACE_HARNESS_JSON_H_
#define MSRTRACE_HARNESS_JSON_H_

#include <string>

#include "absl/strings/string_view.h"

namespace msrtrace {

// `s` as a JSON string literal, quotes included (RFC 8259: quote, backslash and control
// characters escaped; valid UTF-8 copied). The result is always valid UTF-8: every byte that is
// not part of a valid UTF-8 sequence (a file name in another encoding, say) becomes U+FFFD.
std::string JsonString(absl::string_view s_in);

// `s` with every byte that is not part of a valid UTF-8 sequence (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF) replaced by U+FFFD.
std::string ValidUtf8(absl::string_view s);

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_JSON_H_
