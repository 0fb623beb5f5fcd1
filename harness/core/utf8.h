// UTF-8 validation for text that reaches a report (JSON strings must be UTF-8; the JUnit XML
// declares it): trace paths, file names and messages may hold any bytes.
#ifndef MSRTRACE_HARNESS_CORE_UTF8_H_
#define MSRTRACE_HARNESS_CORE_UTF8_H_

#include <string>

#include "absl/strings/string_view.h"

namespace msrtrace {

// `s` with every byte that is not part of a valid UTF-8 sequence (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF) replaced by U+FFFD.
std::string ValidUtf8(absl::string_view s);

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_CORE_UTF8_H_
