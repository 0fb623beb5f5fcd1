#include "tools/output.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "harness/core/enum_names.h"
#include "tools/command.h"

namespace msrtrace::cli {

std::string Hex(uint64_t v) { return absl::StrFormat("0x%x", v); }

absl::Status PrintJsonReport(const google::protobuf::Message& report, std::ostream& out) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  const auto st = google::protobuf::util::MessageToJsonString(report, &json, options);
  if (!st.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print the JSON report: ", st.message().ToString()));
  }
  out << json << "\n";
  return absl::OkStatus();
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
