// A replayer for the handler sets linked into this binary (msrtrace_add_fuzzer builds one per
// team library): `<name>_replay <trace>...` replays each trace twice (determinism) and from a
// mid-trace snapshot (resume), with the replay driver's architectural checks, and prints every
// divergence. Exit status: 0 all clean, 1 a divergence, 2 an unusable trace.
#include <cstdio>
#include <string>

#include "harness/replay.h"

int main(int argc, char** argv) {
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    msrtrace::ReplayOptions options;
    options.repeat = 2;
    absl::StatusOr<msrtrace::ReplayResult> r = msrtrace::ReplayFile(argv[i], options);
    if (!r.ok()) {
      std::fprintf(stderr, "%s: %s\n", argv[i], r.status().ToString().c_str());
      status = 2;
      continue;
    }
    if (r->events > 1) {
      options.repeat = 1;
      options.resume_after = r->events / 2;
      absl::StatusOr<msrtrace::ReplayResult> resumed = msrtrace::ReplayFile(argv[i], options);
      if (resumed.ok()) {
        r->divergence_count += resumed->divergence_count;
        for (auto& d : resumed->divergences) r->divergences.push_back(d);
      }
    }
    std::printf("%s: %llu events, %llu divergences\n", argv[i],
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
