// A private temporary directory per test process, for tests that write files: created with
// mkdtemp under $TEST_TMPDIR, $TMPDIR or /tmp, and removed with everything in it at exit. Two CI
// runs or parallel ctest invocations never share a name. Header-only; tests only.
#ifndef MSRTRACE_HARNESS_TEST_TMPDIR_H_
#define MSRTRACE_HARNESS_TEST_TMPDIR_H_

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

namespace msrtrace {
namespace testing_util {

inline int RemoveTreeEntry(const char* path, const struct stat*, int, struct FTW*) {
  return remove(path);
}

// The directory (no trailing slash); the first call creates it and registers its removal.
inline const std::string& TestTempDir() {
  static const std::string* dir = [] {
    const char* base = getenv("TEST_TMPDIR");
    if (base == nullptr || *base == '\0') base = getenv("TMPDIR");
    if (base == nullptr || *base == '\0') base = "/tmp";
    std::string templ = std::string(base) + "/msrtrace_test_XXXXXX";
    if (mkdtemp(&templ[0]) == nullptr) {
      perror("mkdtemp");
      abort();
    }
    auto* d = new std::string(templ);
    atexit([] { nftw(TestTempDir().c_str(), RemoveTreeEntry, 16, FTW_DEPTH | FTW_PHYS); });
    return d;
  }();
  return *dir;
}

// TestTempDir()/name.
inline std::string TestTempPath(const std::string& name) { return TestTempDir() + "/" + name; }

}  // namespace testing_util
}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_TEST_TMPDIR_H_
