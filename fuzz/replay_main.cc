// A replayer for the handler sets linked into this binary (msrtrace_add_fuzzer builds one per
// team library): `<name>_replay <trace>...` replays each trace twice (determinism) and from a
// mid-trace snapshot (resume), with the replay driver's architectural checks, and prints every
// divergence. A directory argument stands for the *.trace and *.trace.gz files under it
// (harness/dir_walk.h: recursive, sorted, symlinks followed, each file once). Exit
// status: 0 all clean (an incomplete trace whose intact part is clean counts as clean), 1 a
// divergence, 2 an unusable trace.
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "harness/dir_walk.h"
#include "harness/replay.h"

namespace {

std::vector<std::string> ExpandPaths(int argc, char** argv) {
  std::vector<std::string> out;
  msrtrace::DirWalker walker([](const std::string& name) {
    return absl::EndsWith(name, ".trace") || absl::EndsWith(name, ".trace.gz");
  });
  for (int i = 1; i < argc; ++i) {
    std::error_code ec;
    if (!std::filesystem::is_directory(argv[i], ec)) {
      out.emplace_back(argv[i]);
      continue;
    }
    std::vector<std::string> problems;
    walker.Walk(argv[i], &out, &problems);
    for (const std::string& p : problems) std::fprintf(stderr, "%s\n", p.c_str());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int status = 0;
  const std::vector<std::string> paths = ExpandPaths(argc, argv);
  for (const std::string& path_string : paths) {
    const char* path = path_string.c_str();
    msrtrace::ReplayOptions options;
    options.repeat = 2;
    absl::StatusOr<msrtrace::ReplayResult> r = msrtrace::ReplayFile(path, options);
    if (!r.ok()) {
      std::fprintf(stderr, "%s: %s\n", path, r.status().ToString().c_str());
      status = 2;
      continue;
    }
    if (r->events > 1) {
      options.repeat = 1;
      options.resume_after = r->events / 2;
      absl::StatusOr<msrtrace::ReplayResult> resumed = msrtrace::ReplayFile(path, options);
      if (resumed.ok()) {
        r->divergence_count += resumed->divergence_count;
        for (auto& d : resumed->divergences) r->divergences.push_back(d);
      }
    }
    std::printf("%s: %llu events, %llu divergences\n", path,
                static_cast<unsigned long long>(r->events),
                static_cast<unsigned long long>(r->divergence_count));
    for (const msrtrace::Divergence& d : r->divergences) {
      std::printf("  seq %llu vcpu %u %s %s (%#x): %s: expected %s, actual %s %s\n",
                  static_cast<unsigned long long>(d.seq), d.vcpu_id, msrtrace::AccessName(d.access),
                  d.msr_name.c_str(), d.index, msrtrace::DivergenceKindName(d.kind),
                  d.expected.c_str(), d.actual.c_str(), d.reg_diff.c_str());
    }
    if (!r->clean() && status == 0) status = 1;
  }
  return status;
}
