// Small output helpers shared by the subcommands: hex formatting, the JSON report printer and
// checked writes to stdout. (XML: tools/xml_writer.h.)
#ifndef MSRTRACE_TOOLS_OUTPUT_H_
#define MSRTRACE_TOOLS_OUTPUT_H_

#include <cstdint>
#include <ostream>
#include <streambuf>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "harness/core/utf8.h"  // ValidUtf8: report strings must be UTF-8.
#include "harness/trace/trace_file.h"

namespace msrtrace::cli {

// "0x1b" (JSON keys documented as hex strings use this).
std::string Hex(uint64_t v);
// Prints a `--format=json` report (a message of proto/report.proto) with protobuf's JSON printer
// on one line and a newline: proto field names, every field printed even at its default value
// (fields marked `optional` only when set). Fails only if a string field is not valid UTF-8.
absl::Status PrintJsonReport(const google::protobuf::Message& report, std::ostream& out);

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
