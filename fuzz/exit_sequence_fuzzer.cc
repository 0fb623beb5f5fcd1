// Exit-sequence fuzzer. The input is a trace file (harness/trace/trace_file.h): the fuzz corpus and
// the replay corpus are the same files, and every finding is a trace `msrtrace replay` runs.
// The trace's machine is built from its header (handler set, CPU profile, policy), its snapshot
// restored, and its events run through the engine under test (fuzz_hooks.h) while the oracles
// (oracles.h) watch. Inputs that do not decode or cannot be set up are skipped.
//
// Mutation is structure-aware (trace_mutator.h): libFuzzer's byte mutations cannot get through
// the record framing and varints to interesting MSR indices.
//
// Differential build (MSRTRACE_FUZZ_DIFFERENTIAL = the reference set's name, msrtrace_add_fuzzer
// ... DIFFERENTIAL): every input also runs on that set and the trace's own, compared by
// triage/differential.h before the oracles; a disagreement the allowlist (MSRTRACE_FUZZ_ALLOWLIST,
// or the file the MSRTRACE_ALLOWLIST environment variable names) does not cover is a finding. The
// allowlist summary (every entry with its match count) is printed at exit and with a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "fuzz/fuzz_hooks.h"
#include "fuzz/fuzz_setup.h"
#include "fuzz/oracles.h"
#include "fuzz/trace_mutator.h"
#ifdef MSRTRACE_FUZZ_DIFFERENTIAL
#include "triage/differential.h"
#endif

namespace msrtrace {
namespace fuzz {
namespace {

std::string& Reproducer() {
  static std::string* r = new std::string("exit_sequence_fuzzer");
  return *r;
}

struct FuzzState {
  std::unique_ptr<TraceMutator> mutator;
  std::unique_ptr<OracleRunner> runner;
#ifdef MSRTRACE_FUZZ_DIFFERENTIAL
  std::unique_ptr<Allowlist> allowlist;
  std::unique_ptr<DifferentialRunner> diff;
#endif
};

#ifdef MSRTRACE_FUZZ_DIFFERENTIAL
#ifndef MSRTRACE_FUZZ_ALLOWLIST
#define MSRTRACE_FUZZ_ALLOWLIST ""
#endif

FuzzState& State();

void SetUpDifferential(FuzzState* s) {
  const char* env = std::getenv("MSRTRACE_ALLOWLIST");
  const std::string path = env != nullptr ? env : MSRTRACE_FUZZ_ALLOWLIST;
  s->allowlist = std::make_unique<Allowlist>();
  if (!path.empty()) {
    absl::StatusOr<Allowlist> list = Allowlist::Load(path);
    if (!list.ok()) {
      std::fprintf(stderr, "exit_sequence_fuzzer: %s\n", list.status().ToString().c_str());
      std::abort();
    }
    *s->allowlist = *std::move(list);
  }
  DiffOptions options;
  options.reference_set = MSRTRACE_FUZZ_DIFFERENTIAL;
  options.max_details = 1;
  s->diff = std::make_unique<DifferentialRunner>(options, s->allowlist.get());
  std::atexit([] {
    const Allowlist& list = *State().allowlist;
    if (!list.entries().empty()) std::fputs(FormatAllowlistSummary(list).c_str(), stderr);
  });
}

// Runs `trace` on both sets; on a finding prints the report and aborts.
void CheckDifferential(FuzzState& state, const TraceModel& trace) {
  DifferentialRunner& diff = *state.diff;
  if (trace.header.handler_set == MSRTRACE_FUZZ_DIFFERENTIAL) return;
  if (!diff.Begin(trace.header, trace.snapshot).ok()) return;  // Not runnable: not a finding.
  for (const ExitEvent& e : trace.events) {
    absl::StatusOr<size_t> added = diff.Step(e);
    if (!added.ok()) return;
    if (*added == 0) continue;
    const DiffResult& r = diff.result();
    std::string report = "==msrtrace-oracle== FAILED: differential\n  ";
    if (!r.details.empty()) {
      report += FormatDiffFinding(r.details.front(), r.team_set, r.reference_set);
    }
    const char* allowlist = std::getenv("MSRTRACE_ALLOWLIST");
    const std::string allow_arg =
        allowlist != nullptr ? allowlist : std::string(MSRTRACE_FUZZ_ALLOWLIST);
    report += "\n  reproduce: " + Reproducer() + " <input>\n             " + FuzzCliName() +
              " replay --against=" + MSRTRACE_FUZZ_DIFFERENTIAL +
              (allow_arg.empty() ? "" : " --allowlist=" + allow_arg) + " <input>\n";
    if (!state.allowlist->entries().empty()) report += FormatAllowlistSummary(*state.allowlist);
    std::fputs(report.c_str(), stderr);
    std::fflush(stderr);
    std::abort();
  }
}
#endif

FuzzState& State() {
  static FuzzState* state = [] {
    auto* s = new FuzzState;
    absl::StatusOr<MutatorConfig> config = MakeMutatorConfig(FuzzHandlerSetName());
    if (!config.ok()) {
      std::fprintf(stderr, "exit_sequence_fuzzer: cannot set up handler set '%s': %s\n",
                   FuzzHandlerSetName(), config.status().ToString().c_str());
      std::abort();
    }
    absl::StatusOr<TraceModel> fallback = FuzzFallbackTrace();
    if (!fallback.ok()) {
      std::fprintf(stderr, "exit_sequence_fuzzer: cannot make the fallback trace: %s\n",
                   fallback.status().ToString().c_str());
      std::abort();
    }
    config->fallback = *std::move(fallback);
    s->mutator = std::make_unique<TraceMutator>(*std::move(config));
    s->runner = std::make_unique<OracleRunner>(FuzzEngineFactory(), MakeOracleOptions());
#ifdef MSRTRACE_FUZZ_DIFFERENTIAL
    SetUpDifferential(s);
#endif
    return s;
  }();
  return *state;
}

}  // namespace
}  // namespace fuzz
}  // namespace msrtrace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  if (argc != nullptr && *argc > 0) msrtrace::fuzz::Reproducer() = (*argv)[0];
  msrtrace::fuzz::State();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace msrtrace::fuzz;  // NOLINT
  FuzzState& state = State();
  static TraceModel* decoded = new TraceModel;  // Reused across inputs (no per-input alloc).
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  // A mutation result is run right after the mutator made it: its model is at hand.
  const TraceModel* trace = state.mutator->LastOutput(bytes);
  if (trace == nullptr) {
    if (!DecodeTraceInto(bytes, state.mutator->config().max_events, decoded).ok()) return 0;
    trace = decoded;
  }
#ifdef MSRTRACE_FUZZ_DIFFERENTIAL
  CheckDifferential(state, *trace);
#endif
  absl::StatusOr<absl::optional<OracleFailure>> failure = state.runner->Check(*trace);
  if (!failure.ok() || !failure->has_value()) return 0;
  const std::string report = FormatFailure(**failure, *trace, Reproducer(), FuzzCliName());
  std::fputs(report.c_str(), stderr);
  std::fflush(stderr);
  std::abort();
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  return msrtrace::fuzz::State().mutator->MutateBytes(data, size, max_size, seed);
}

extern "C" size_t LLVMFuzzerCustomCrossOver(const uint8_t* data1, size_t size1,
                                            const uint8_t* data2, size_t size2, uint8_t* out,
                                            size_t max_out_size, unsigned int seed) {
  return msrtrace::fuzz::State().mutator->CrossOverBytes(data1, size1, data2, size2, out,
                                                         max_out_size, seed);
}
