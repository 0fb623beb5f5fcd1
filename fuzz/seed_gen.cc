// Writes generated seed traces for the fuzzers into a directory (run at build time, so seed
// corpora exist even before corpus/ has recordings, and follow the handler table):
//   reset.trace        the reference machine at reset, no events;
//   reads-<k>.trace    RDMSR of the first and last index of every table row (64-bit mode),
//                      kSeedEvents events per file;
//   writes-<k>.trace   WRMSR of every row's reset value, each followed by an RDMSR, the same;
//   mutated-<n>.trace  the first 16 reads after n rounds of the structure-aware mutator (seed n);
//   smp-<k>.trace      two vCPUs: WRMSR of every row's reset value on vCPU 0, then an RDMSR of
//                      it on vCPU 1 (where vcpu-isolation looks), kSeedEvents events per file;
// Every seed is compact: an empty snapshot (the machine at reset, harness/core/snapshot.h), so an
// input is a header and tens of events, a few hundred bytes.
// with --text <dir> also mutated-{1,8}.{textproto,json} there (for the text-format fuzzer).
//
// Usage: seed_gen <out-dir> [--text <text-dir>]
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_setup.h"
#include "fuzz/trace_mutator.h"
#include "handlers/msr_table.h"
#include "harness/trace/trace_file.h"

namespace msrtrace {
namespace fuzz {
namespace {

constexpr size_t kSeedEvents = 32;

bool Write(const std::string& path, const TraceModel& t) {
  TraceModel copy = t;
  for (size_t i = 0; i < copy.events.size(); ++i) copy.events[i].seq = i + 1;
  absl::StatusOr<std::string> bytes = EncodeTrace(copy);
  if (!bytes.ok()) {
    std::fprintf(stderr, "seed_gen: %s: %s\n", path.c_str(), bytes.status().ToString().c_str());
    return false;
  }
  std::ofstream(path, std::ios::binary) << *bytes;
  return true;
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: seed_gen <out-dir> [--text <text-dir>]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const bool text = argc > 3 && std::string(argv[2]) == "--text";
  const std::string text_dir = text ? argv[3] : "";
  absl::StatusOr<MutatorConfig> config = MakeMutatorConfig("reference");
  if (!config.ok()) {
    std::fprintf(stderr, "seed_gen: %s\n", config.status().ToString().c_str());
    return 1;
  }
  const TraceModel& reset = config->fallback;
  TraceModel reads = reset, writes = reset;
  absl::StatusOr<TraceModel> smp_reset = ResetTrace("reference", 2);
  if (!smp_reset.ok()) {
    std::fprintf(stderr, "seed_gen: %s\n", smp_reset.status().ToString().c_str());
    return 1;
  }
  TraceModel smp = *smp_reset;
  for (const MsrRow& row : MsrTable()) {
    smp.events.push_back(MakeEvent(*smp_reset, Access::kWrite, row.index, row.reset));
    smp.events.push_back(MakeEvent(*smp_reset, Access::kRead, row.index, 0));
    smp.events.back().vcpu_id = 1;
    reads.events.push_back(MakeEvent(reset, Access::kRead, row.index, 0));
    if (row.last != row.index) reads.events.push_back(MakeEvent(reset, Access::kRead, row.last, 0));
    writes.events.push_back(MakeEvent(reset, Access::kWrite, row.index, row.reset));
    writes.events.push_back(MakeEvent(reset, Access::kRead, row.index, 0));
  }
  bool ok = Write(dir + "/reset.trace", reset);
  for (const auto& [name, all] : {std::pair<const char*, const TraceModel*>{"reads", &reads},
                                  {"writes", &writes},
                                  {"smp", &smp}}) {
    for (size_t first = 0, k = 1; ok && first < all->events.size(); first += kSeedEvents, ++k) {
      TraceModel part = all == &smp ? *smp_reset : reset;
      const size_t last = std::min(all->events.size(), first + kSeedEvents);
      part.events.assign(all->events.begin() + static_cast<std::ptrdiff_t>(first),
                         all->events.begin() + static_cast<std::ptrdiff_t>(last));
      ok = Write(absl::StrCat(dir, "/", name, "-", k, ".trace"), part);
    }
  }
  TraceMutator mutator(*config);
  for (int n = 1; n <= 8 && ok; ++n) {
    TraceModel m = reads;
    m.events.resize(std::min<size_t>(m.events.size(), 16));
    Rng rng(static_cast<uint64_t>(n));
    for (int k = 0; k < n; ++k) mutator.Mutate(&m, rng);
    ok = Write(absl::StrCat(dir, "/mutated-", n, ".trace"), m);
  }
  if (ok && text) {
    // Small traces (16 events): text parsing of a whole-table trace is slow under ASan.
    for (const char* base : {"mutated-1", "mutated-8"}) {
      for (auto [ext, fmt] :
           {std::pair<const char*, TraceTextFormat>{"textproto", TraceTextFormat::kTextProto},
            {"json", TraceTextFormat::kJson}}) {
        absl::Status s = WriteTraceText(absl::StrCat(dir, "/", base, ".trace"),
                                        absl::StrCat(text_dir, "/", base, ".", ext), fmt);
        if (!s.ok()) {
          std::fprintf(stderr, "seed_gen: %s\n", s.ToString().c_str());
          ok = false;
        }
      }
    }
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace fuzz
}  // namespace msrtrace

int main(int argc, char** argv) { return msrtrace::fuzz::Main(argc, argv); }
