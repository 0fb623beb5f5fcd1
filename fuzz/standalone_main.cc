// A main() for fuzz targets built without libFuzzer (GCC, or MSRTRACE_BUILD_FUZZERS=OFF): feeds
// every file named on the command line, and every regular file under every directory named
// (recursively, in sorted order, each file once: harness/core/dir_walk.h), to
// LLVMFuzzerTestOneInput once. A crash or an oracle abort fails the run, so ctest replays each
// target's seed corpus as a regression test.
//
// Usage: <target> [-flags ignored] <file-or-dir>...
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "harness/core/dir_walk.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

// A file is itself; a directory stands for every regular file under it, by the walker's rules
// (harness/core/dir_walk.h: sorted, symlinks followed, cycle-safe, every file once).
void Collect(const std::string& path, msrtrace::DirWalker* walker, std::vector<std::string>* out) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    std::fprintf(stderr, "standalone: cannot stat %s\n", path.c_str());
    return;
  }
  if (S_ISREG(st.st_mode)) {
    out->push_back(path);
    return;
  }
  if (!S_ISDIR(st.st_mode)) return;
  std::vector<std::string> problems;
  walker->Walk(path, out, &problems);
  for (const std::string& p : problems) std::fprintf(stderr, "standalone: %s\n", p.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<std::string> files;
  msrtrace::DirWalker walker([](const std::string&) { return true; });
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] == '-') continue;  // libFuzzer flags: accepted and ignored.
    Collect(argv[i], &walker, &files);
  }
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "standalone: running %s (%zu bytes)\n", f.c_str(), bytes.size());
    // A copy in an exactly sized heap buffer, so ASan catches reads past the end as libFuzzer
    // would.
    std::vector<uint8_t> data(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
  }
  std::fprintf(stderr, "standalone: %zu inputs ran without a finding\n", files.size());
  return 0;
}
