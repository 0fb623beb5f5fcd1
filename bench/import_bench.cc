// Throughput of the KVM tracepoint importer (docs/import.md "Throughput").
//   build-x/bench/import_bench --benchmark_counters_tabular=true
// Bytes/s counters are bytes of capture text.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "benchmark/benchmark.h"
#include "handlers/cpu_profile.h"
#include "handlers/handler_set.h"
#include "importers/kvm_trace_importer.h"
#include "importers/kvm_trace_parser.h"

namespace {

using msrtrace::importers::ImportConfig;
using msrtrace::importers::ImportFromBuffer;
using msrtrace::importers::ImportSummary;

// A capture of `events` MSR exits in the recent ftrace rendering, 4 vCPUs interleaved, each exit
// as kvm_exit + kvm_msr + kvm_entry (the lines `trace-cmd record -e kvm:kvm_exit -e kvm:kvm_msr
// -e kvm:kvm_entry` gives).
const std::string& Capture(int events) {
  static std::string* text = [events] {
    auto* s = new std::string;
    const uint32_t msrs[] = {0x1b, 0x277, 0xc0000080, 0xc0000082, 0x6e0, 0x10, 0x174, 0x3a};
    uint64_t rip = 0xffffffff81000000ull;
    for (int i = 0; i < events; ++i) {
      const int vcpu = i % 4;
      const uint32_t msr = msrs[(i / 4) % 8];
      const bool write = (i % 3) == 0;
      const uint64_t value = 0x7040600070406ull + (i & 0xff);
      const std::string prefix =
          absl::StrFormat("       CPU %d/KVM-%d    [%03d] d.... %d.%06d: ", vcpu, 4242 + vcpu,
                          vcpu * 2, 1404 + i / 100000, i % 1000000);
      absl::StrAppendFormat(s,
                            "%skvm_exit: vcpu %d reason %s rip 0x%x info1 0x0000000000000000 "
                            "info2 0x0000000000000000 intr_info 0x00000000 error_code "
                            "0x00000000\n",
                            prefix, vcpu, write ? "MSR_WRITE" : "MSR_READ", rip);
      absl::StrAppendFormat(s, "%skvm_msr: msr_%s %x = 0x%x\n", prefix, write ? "write" : "read",
                            msr, value);
      absl::StrAppendFormat(s, "%skvm_entry: vcpu %d, rip 0x%x\n", prefix, vcpu, rip + 2);
      rip += 0x40;
    }
    return s;
  }();
  return *text;
}

constexpr int kEvents = 100000;

void BM_ParseLine(benchmark::State& state) {
  const std::string& text = Capture(kEvents);
  msrtrace::importers::ParsedLine p;
  msrtrace::importers::LineError e;
  for (auto _ : state) {
    absl::string_view rest(text);
    int n = 0;
    while (!rest.empty()) {
      size_t nl = rest.find('\n');
      absl::string_view line = rest.substr(0, nl);
      rest.remove_prefix(nl == absl::string_view::npos ? rest.size() : nl + 1);
      n += msrtrace::importers::ParseLine(line, &p, &e) == msrtrace::importers::LineStatus::kEvent;
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * text.size());
}
BENCHMARK(BM_ParseLine)->Unit(benchmark::kMillisecond);

// Pass 1 only: parse, assemble per vCPU, statistics, inference bookkeeping.
void BM_ImportSummaryOnly(benchmark::State& state) {
  const std::string& text = Capture(kEvents);
  ImportConfig config;
  for (auto _ : state) {
    absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, config);
    if (!s.ok() || s->events != kEvents) state.SkipWithError("import failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * text.size());
}
BENCHMARK(BM_ImportSummaryOnly)->Unit(benchmark::kMillisecond);

// Both passes with the comparison against the reference handler set (no trace written).
void BM_ImportCompareReference(benchmark::State& state) {
  const std::string& text = Capture(kEvents);
  const msrtrace::CpuProfile& profile = msrtrace::DefaultProfile();
  const msrtrace::HandlerSetDef* set = msrtrace::FindHandlerSet("reference");
  ImportConfig config;
  config.install = [set, &profile](msrtrace::Controller& c) { return set->install(c, profile); };
  for (auto _ : state) {
    absl::StatusOr<ImportSummary> s = ImportFromBuffer(text, config);
    if (!s.ok() || s->events != kEvents) state.SkipWithError("import failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * text.size());
}
BENCHMARK(BM_ImportCompareReference)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
