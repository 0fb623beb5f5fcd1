// libFuzzer dictionary encoding shared by fuzz/dict_gen.cc (the table's dictionaries) and
// `msrtrace seeds --dict` (a handler set's dictionary).
#ifndef MSRTRACE_FUZZ_DICT_FORMAT_H_
#define MSRTRACE_FUZZ_DICT_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_format.h"

namespace msrtrace::fuzz {

// Protobuf base-128 varint of `v` (how an index or value appears in an encoded event).
inline std::string DictVarint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

// libFuzzer dictionary escaping: printable ASCII except '"' and '\\' as is, others \xNN.
inline std::string DictEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "\\x%02X", c);
    }
  }
  return out;
}

}  // namespace msrtrace::fuzz

#endif  // MSRTRACE_FUZZ_DICT_FORMAT_H_
