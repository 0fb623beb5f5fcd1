#include "tools/output.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace msrtrace::cli {

std::string XmlEscape(absl::string_view s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\n' || c == '\t') out += c;
    }
  }
  return out;
}

std::string Hex(uint64_t v) { return absl::StrFormat("0x%x", v); }

std::string JsonDouble(double v) {
  if (!std::isfinite(v)) return "0";
  return absl::StrFormat("%.3f", v);
}

}  // namespace msrtrace::cli
