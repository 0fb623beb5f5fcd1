#include "tools/output.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <cmath>
#include <iostream>

#include "absl/strings/str_format.h"
#include "tools/command.h"

namespace msrtrace::cli {

std::string XmlEscape(absl::string_view in) {
  const std::string s = ValidUtf8(in);
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

CheckedFdBuf::int_type CheckedFdBuf::overflow(int_type c) {
  if (!Drain()) return traits_type::eof();
  if (!traits_type::eq_int_type(c, traits_type::eof())) {
    *pptr() = traits_type::to_char_type(c);
    pbump(1);
  }
  return traits_type::not_eof(c);
}

int CheckedFdBuf::sync() { return Drain() ? 0 : -1; }

bool CheckedFdBuf::Drain() {
  const char* p = pbase();
  size_t len = static_cast<size_t>(pptr() - pbase());
  while (len > 0 && error_ == 0) {
    const ssize_t n = write(fd_, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      error_ = errno;
      break;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  setp(buf_, buf_ + sizeof(buf_));  // Drop what could not be written.
  return error_ == 0;
}

namespace {
CheckedFdBuf* g_stdout = nullptr;
}  // namespace

void CheckStdout() {
  if (g_stdout != nullptr) return;
  std::cout.flush();
  g_stdout = new CheckedFdBuf(1);  // Never freed: std::cout may be used until exit.
  std::cout.rdbuf(g_stdout);
}

int FinishStdout(int code, std::ostream& err) {
  std::cout.flush();
  if (g_stdout == nullptr || g_stdout->error() == 0) return code;
  err << "msrtrace: cannot write standard output: " << strerror(g_stdout->error()) << "\n";
  return CombineExitCodes(code, kExitBadInput);
}

}  // namespace msrtrace::cli
