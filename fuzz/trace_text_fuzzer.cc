// Fuzzer for the text-format and JSON trace parser (ReadTraceText: the `Trace` message as text
// proto or JSON, detected from content). Arbitrary text must give a clean error or a binary
// trace that the reader accepts.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "fuzz/trace_mutator.h"
#include "harness/trace/trace_file.h"

namespace {

// A memfd path, for the path-based text API. One per process, reused.
std::string MemfdPath(const char* name, int* fd_out) {
  const int fd = memfd_create(name, MFD_CLOEXEC);
  *fd_out = fd;
  return absl::StrCat("/proc/self/fd/", fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int in_fd = -1, out_fd = -1;
  static const std::string in_path = MemfdPath("msrtrace-fuzz-text-in", &in_fd);
  static const std::string out_path = MemfdPath("msrtrace-fuzz-text-out", &out_fd);
  if (in_fd < 0 || out_fd < 0) std::abort();
  if (ftruncate(in_fd, 0) != 0 || ftruncate(out_fd, 0) != 0) std::abort();
  if (size > 0 && pwrite(in_fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  if (!msrtrace::ReadTraceText(in_path, out_path).ok()) return 0;
  // Accepted: the binary result must read back.
  const off_t n = lseek(out_fd, 0, SEEK_END);
  std::string bytes(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0 && pread(out_fd, &bytes[0], bytes.size(), 0) != n) std::abort();
  absl::StatusOr<msrtrace::fuzz::TraceModel> back = msrtrace::fuzz::DecodeTrace(bytes);
  if (!back.ok()) {
    std::fprintf(stderr, "text parser accepted input whose binary form does not read: %s\n",
                 back.status().ToString().c_str());
    std::abort();
  }
  return 0;
}
