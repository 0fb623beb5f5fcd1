// Replay throughput, reader cost, exit-handling rate of the reference handler set, and heap
// allocations per event (docs/benchmarks.md sections 2 and 4).
//
//   build/default/bench/replay_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true --benchmark_counters_tabular=true  (one line)
//
// Traces are recorded once at start-up by the same code as `msrtrace record --workload=random
// --seed=1 --events=N` (workloads/record.h RecordWorkload) into a temporary directory, as a plain
// and a gzip file; the in-memory benchmarks read the plain file's bytes through
// TraceReader::FromBytes.
//
// Counters:
//   events/s          events replayed (or read, or exits handled) per second of process CPU
//                     time (the machine is shared: CPU time is the stable measure of cost).
//   allocs_per_event  operator new calls inside the measured call divided by events; for the
//                     whole-replay benchmarks this includes the per-trace set-up (machine build,
//                     snapshot restore, result), amortized over the trace.
//   BM_ReplaySteadyStateAllocs reports the marginal allocations per event between a shorter and a
//   longer replay of the same workload (10k/100k, 100k/1M events): the steady-state cost, set-up
//   cancelled out.
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "benchmark/benchmark.h"
#include "harness/replay/exit_check.h"
#include "harness/replay/replay.h"
#include "harness/trace/trace_file.h"
#include "harness/trace/trace_types.h"
#include "proto/trace.pb.h"
#include "workloads/record.h"

// --- Counting operator new (this binary only) --------------------------------------------------

namespace {
std::atomic<uint64_t> g_allocs{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  void* p = malloc(n == 0 ? 1 : n);
  if (p == nullptr) abort();
  return p;
}
void* operator new[](std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  void* p = malloc(n == 0 ? 1 : n);
  if (p == nullptr) abort();
  return p;
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { free(p); }
void operator delete[](void* p) noexcept { free(p); }
void operator delete(void* p, std::size_t) noexcept { free(p); }
void operator delete[](void* p, std::size_t) noexcept { free(p); }

namespace msrtrace {
namespace {

uint64_t Allocs() { return g_allocs.load(std::memory_order_relaxed); }

// --- Traces ------------------------------------------------------------------------------------

struct TraceFiles {
  std::string workload;
  uint64_t events = 0;  // As recorded (from the trailer).
  std::string plain;    // Path of the plain trace.
  std::string gz;       // Path of the gzip trace.
  std::string bytes;    // Contents of the plain trace.
  uint64_t plain_size = 0;
  uint64_t gz_size = 0;
};

const std::string& TempDir() {
  static const std::string* dir = [] {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                       "/msrtrace_replay_bench.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) {
      fprintf(stderr, "replay_bench: cannot create a directory from %s\n", tmpl.c_str());
      abort();
    }
    return new std::string(buf.data());
  }();
  return *dir;
}

std::vector<std::string>& CreatedFiles() {
  static auto* files = new std::vector<std::string>;
  return *files;
}

void RemoveTempFiles() {
  for (const std::string& f : CreatedFiles()) unlink(f.c_str());
  rmdir(TempDir().c_str());
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Record(const std::string& workload, uint64_t events, const std::string& path) {
  workloads::RecordRequest r;
  r.output = path;
  r.workload = workload;
  r.seed = 1;
  r.events = events;
  absl::StatusOr<workloads::RecordSummary> s = workloads::RecordWorkload(r);
  if (!s.ok()) {
    fprintf(stderr, "replay_bench: recording %s failed: %s\n", workload.c_str(),
            s.status().ToString().c_str());
    return false;
  }
  CreatedFiles().push_back(path);
  return true;
}

// The traces of `workload` with `events` events (ignored by fixed-length workloads), recorded
// on first use. Returns nullptr when recording failed.
const TraceFiles* GetTraces(const std::string& workload, uint64_t events) {
  static auto* cache = new std::vector<std::unique_ptr<TraceFiles>>;
  for (const auto& t : *cache) {
    if (t->workload == workload && t->events == events) return t.get();
  }
  auto t = std::make_unique<TraceFiles>();
  t->workload = workload;
  const std::string stem = TempDir() + "/" + workload + "_" + std::to_string(events);
  t->plain = stem + ".trace";
  t->gz = stem + ".trace.gz";
  if (!Record(workload, events, t->plain) || !Record(workload, events, t->gz)) return nullptr;
  t->bytes = ReadAll(t->plain);
  t->plain_size = t->bytes.size();
  t->gz_size = ReadAll(t->gz).size();
  t->events = events;
  cache->push_back(std::move(t));
  return cache->back().get();
}

void SetCounters(benchmark::State& state, uint64_t events, uint64_t allocs) {
  state.SetItemsProcessed(static_cast<int64_t>(events));
  state.counters["events/s"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
  state.counters["allocs_per_event"] =
      events == 0 ? 0.0 : static_cast<double>(allocs) / static_cast<double>(events);
}

// --- Whole replay ------------------------------------------------------------------------------

// Replay driver on a trace held in memory (TraceReader::FromBytes + ReplayReader). The copy of
// the bytes the reader takes is made outside the timed region.
void BM_ReplayInMemory(benchmark::State& state) {
  const TraceFiles* t = GetTraces("random", static_cast<uint64_t>(state.range(0)));
  if (t == nullptr) return state.SkipWithError("recording failed");
  uint64_t events = 0, allocs = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::string copy = t->bytes;
    state.ResumeTiming();
    const uint64_t a0 = Allocs();
    absl::StatusOr<std::unique_ptr<TraceReader>> reader =
        TraceReader::FromBytes(std::move(copy), t->plain);
    if (!reader.ok()) {
      return state.SkipWithError(static_cast<std::string>(reader.status().message()).c_str());
    }
    absl::StatusOr<ReplayResult> r = ReplayReader(**reader);
    allocs += Allocs() - a0;
    if (!r.ok()) return state.SkipWithError(static_cast<std::string>(r.status().message()).c_str());
    if (!r->clean()) return state.SkipWithError("replay diverged");
    events += r->events;
  }
  SetCounters(state, events, allocs);
}
BENCHMARK(BM_ReplayInMemory)->Arg(100000)->Unit(benchmark::kMillisecond);

// Replay driver on a file (ReplayFile): arg 0 = plain, 1 = gzip.
void BM_ReplayFile(benchmark::State& state) {
  const TraceFiles* t = GetTraces("random", static_cast<uint64_t>(state.range(1)));
  if (t == nullptr) return state.SkipWithError("recording failed");
  const bool gz = state.range(0) != 0;
  const std::string& path = gz ? t->gz : t->plain;
  uint64_t events = 0, allocs = 0;
  for (auto _ : state) {
    const uint64_t a0 = Allocs();
    absl::StatusOr<ReplayResult> r = ReplayFile(path);
    allocs += Allocs() - a0;
    if (!r.ok()) return state.SkipWithError(static_cast<std::string>(r.status().message()).c_str());
    if (!r->clean()) return state.SkipWithError("replay diverged");
    events += r->events;
  }
  SetCounters(state, events, allocs);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(gz ? t->gz_size : t->plain_size));
  state.SetLabel(gz ? "gzip" : "plain");
}
BENCHMARK(BM_ReplayFile)
    ->ArgNames({"gzip", "events"})
    ->Args({0, 100000})
    ->Args({1, 100000})
    ->Unit(benchmark::kMillisecond);

// Marginal heap allocations per event of the replay loop: one replay of a trace of range(0)
// events and one of range(1) events (same workload and seed), allocations in the second minus
// the first, divided by the extra events. Set-up cost cancels out; ~0 means the loop does not
// allocate per event (what remains grows with distinct MSR indices and guest pages, not events).
void BM_ReplaySteadyStateAllocs(benchmark::State& state) {
  const TraceFiles* small = GetTraces("random", static_cast<uint64_t>(state.range(0)));
  const TraceFiles* large = GetTraces("random", static_cast<uint64_t>(state.range(1)));
  if (small == nullptr || large == nullptr) return state.SkipWithError("recording failed");
  double per_event = 0;
  uint64_t small_allocs = 0, large_allocs = 0;
  for (auto _ : state) {
    uint64_t counts[2] = {0, 0};
    uint64_t evs[2] = {0, 0};
    const TraceFiles* ts[2] = {small, large};
    for (int i = 0; i < 2; ++i) {
      state.PauseTiming();
      std::string copy = ts[i]->bytes;
      state.ResumeTiming();
      const uint64_t a0 = Allocs();
      absl::StatusOr<std::unique_ptr<TraceReader>> reader =
          TraceReader::FromBytes(std::move(copy), ts[i]->plain);
      if (!reader.ok()) return state.SkipWithError("open failed");
      absl::StatusOr<ReplayResult> r = ReplayReader(**reader);
      counts[i] = Allocs() - a0;
      if (!r.ok()) {
        return state.SkipWithError(static_cast<std::string>(r.status().message()).c_str());
      }
      evs[i] = r->events;
    }
    if (evs[1] <= evs[0]) return state.SkipWithError("the second trace must be longer");
    small_allocs = counts[0];
    large_allocs = counts[1];
    per_event = (static_cast<double>(counts[1]) - static_cast<double>(counts[0])) /
                static_cast<double>(evs[1] - evs[0]);
  }
  state.counters["allocs_small"] = static_cast<double>(small_allocs);
  state.counters["allocs_large"] = static_cast<double>(large_allocs);
  state.counters["marginal_allocs_per_event"] = per_event;
}
BENCHMARK(BM_ReplaySteadyStateAllocs)
    ->ArgNames({"small", "large"})
    ->Args({10000, 100000})
    ->Args({100000, 1000000})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// --- The reader alone --------------------------------------------------------------------------

// TraceReader::Next over every event: arg 0 = in memory (FromBytes), 1 = plain file, 2 = gzip.
void BM_ReaderNext(benchmark::State& state) {
  const TraceFiles* t = GetTraces("random", static_cast<uint64_t>(state.range(1)));
  if (t == nullptr) return state.SkipWithError("recording failed");
  const int64_t source = state.range(0);
  uint64_t events = 0, allocs = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::string copy = source == 0 ? t->bytes : std::string();
    state.ResumeTiming();
    const uint64_t a0 = Allocs();
    absl::StatusOr<std::unique_ptr<TraceReader>> reader =
        source == 0 ? TraceReader::FromBytes(std::move(copy), t->plain)
                    : TraceReader::Open(source == 1 ? t->plain : t->gz);
    if (!reader.ok()) {
      return state.SkipWithError(static_cast<std::string>(reader.status().message()).c_str());
    }
    ExitEvent ev;
    uint64_t n = 0;
    while (true) {
      absl::StatusOr<bool> more = (*reader)->Next(&ev);
      if (!more.ok()) {
        return state.SkipWithError(static_cast<std::string>(more.status().message()).c_str());
      }
      if (!*more) break;
      ++n;
    }
    allocs += Allocs() - a0;
    events += n;
  }
  SetCounters(state, events, allocs);
  static const char* kLabels[] = {"memory", "plain", "gzip"};
  state.SetLabel(kLabels[source]);
  const uint64_t size = source == 2 ? t->gz_size : t->plain_size;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(size));
}
BENCHMARK(BM_ReaderNext)
    ->ArgNames({"source", "events"})
    ->Args({0, 100000})
    ->Args({1, 100000})
    ->Args({2, 100000})
    ->Unit(benchmark::kMillisecond);

// The same event records parsed with protobuf alone, the floor the reader is measured against
// (docs/benchmarks.md: the reader should stay within 2x of it). The record walk skips the prelude
// and non-event records by their length; no CRC check, no conversion to ExitEvent.
void BM_RawProtobufParse(benchmark::State& state) {
  const TraceFiles* t = GetTraces("random", static_cast<uint64_t>(state.range(0)));
  if (t == nullptr) return state.SkipWithError("recording failed");
  constexpr size_t kPrelude = 16, kRecordHeader = 9;
  constexpr uint8_t kEventRecord = 4;
  const std::string& b = t->bytes;
  msrtrace::proto::ExitEvent msg;
  uint64_t events = 0;
  for (auto _ : state) {
    size_t pos = kPrelude;
    uint64_t n = 0;
    while (pos + kRecordHeader <= b.size()) {
      uint32_t len;
      std::memcpy(&len, b.data() + pos, 4);
      const auto type = static_cast<uint8_t>(b[pos + 8]);
      const char* payload = b.data() + pos + kRecordHeader;
      if (type == kEventRecord) {
        if (!msg.ParseFromArray(payload, static_cast<int>(len))) {
          return state.SkipWithError("an event record does not parse");
        }
        ++n;
      }
      pos += kRecordHeader + len;
    }
    benchmark::DoNotOptimize(msg);
    events += n;
  }
  SetCounters(state, events, 0);
  state.SetLabel("memory");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(t->plain_size));
}
BENCHMARK(BM_RawProtobufParse)->ArgName("events")->Arg(100000)->Unit(benchmark::kMillisecond);

// --- Controller::Handle with the reference handler set -----------------------------------------

// Exits through Controller::Handle of the reference set on the machine a recorded trace
// describes, with the trace's events as the mix (decoded beforehand): 0 = "random" (uniform over
// the profile's MSR table and neighbours, many #GPs), 1 = "linux-boot" (a Linux boot's MSR
// sequence). Per exit: the event's inputs are set on its vCPU as the replay driver does, then
// Handle. No comparison or architectural check: this is the handlers' and controller's cost.
void BM_ReferenceHandle(benchmark::State& state) {
  const bool boot = state.range(0) != 0;
  const TraceFiles* t = GetTraces(boot ? "linux-boot" : "random", 100000);
  if (t == nullptr) return state.SkipWithError("recording failed");
  absl::StatusOr<std::unique_ptr<TraceReader>> reader = TraceReader::FromBytes(t->bytes, t->plain);
  if (!reader.ok()) return state.SkipWithError("open failed");
  std::vector<ExitEvent> events;
  ExitEvent ev;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&ev);
    if (!more.ok() || !*more) break;
    events.push_back(ev);
  }
  if (events.empty()) return state.SkipWithError("no events");
  absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine((*reader)->header());
  if (!m.ok()) return state.SkipWithError(static_cast<std::string>(m.status().message()).c_str());
  Machine& machine = **m;
  if (!machine.Restore((*reader)->snapshot()).ok()) return state.SkipWithError("restore failed");
  Controller& ctl = *machine.controller;

  size_t i = 0;
  uint64_t retired = 0, faults = 0, errors = 0;
  const uint64_t a0 = Allocs();
  for (auto _ : state) {
    const ExitEvent& e = events[i];
    if (++i == events.size()) i = 0;
    Vcpu* v = machine.FindVcpu(e.vcpu_id);
    ApplyEventInputs(e, &v->regs);
    absl::StatusOr<Outcome> out = ctl.Handle(e.exit, *v, machine.memory);
    if (!out.ok()) {
      ++errors;
    } else if (out->kind == Outcome::Kind::kGpInjected) {
      ++faults;
    } else {
      ++retired;
    }
  }
  const uint64_t allocs = Allocs() - a0;
  SetCounters(state, state.iterations(), allocs);
  const double n = static_cast<double>(state.iterations());
  state.counters["gp_share"] = static_cast<double>(faults) / n;
  state.counters["vmm_error_share"] = static_cast<double>(errors) / n;
  state.counters["mix_events"] = static_cast<double>(events.size());
  state.SetLabel(boot ? "linux-boot" : "random");
  benchmark::DoNotOptimize(retired);
}
BENCHMARK(BM_ReferenceHandle)->ArgName("linux_boot")->Arg(0)->Arg(1);

}  // namespace
}  // namespace msrtrace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  msrtrace::RemoveTempFiles();
  return 0;
}
