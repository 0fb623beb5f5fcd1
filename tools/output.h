// Small output helpers shared by the subcommands: XML escaping (JSON: harness/core/json.h), hex
// formatting, and the terminal check for progress display.
#ifndef MSRTRACE_TOOLS_OUTPUT_H_
#define MSRTRACE_TOOLS_OUTPUT_H_

#include <cstdint>
#include <ostream>
#include <streambuf>
#include <string>

#include "absl/strings/string_view.h"
#include "harness/core/json.h"  // JsonString

namespace msrtrace::cli {

// `s` with &, <, >, " and ' escaped, control characters other than tab and newline dropped,
// and bytes that are not valid UTF-8 replaced by U+FFFD (the report declares UTF-8).
std::string XmlEscape(absl::string_view in);
// "0x1b" (JSON keys documented as hex strings use this).
std::string Hex(uint64_t v);
// A JSON number for a double that is always valid JSON (no inf/nan).
std::string JsonDouble(double v);

// A stream buffer over a file descriptor that checks every write(2) and remembers the first
// error (errno), which std::ostream alone would reduce to a bad bit.
class CheckedFdBuf : public std::streambuf {
 public:
  explicit CheckedFdBuf(int fd) : fd_(fd) { setp(buf_, buf_ + sizeof(buf_)); }
  // 0, or the errno of the first failed write.
  int error() const { return error_; }

 protected:
  int_type overflow(int_type c) override;
  int sync() override;

 private:
  bool Drain();
  int fd_;
  int error_ = 0;
  char buf_[1 << 16];
};

// Makes std::cout write through a CheckedFdBuf on fd 1.
void CheckStdout();
// Flushes std::cout; if a write to stdout failed, says so on `err` ("msrtrace: cannot write
// standard output: No space left on device") and returns CombineExitCodes(code, 2).
int FinishStdout(int code, std::ostream& err);

}  // namespace msrtrace::cli

#endif  // MSRTRACE_TOOLS_OUTPUT_H_
