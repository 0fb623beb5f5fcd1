// Recording a built-in workload to a trace file: the one function behind `msrtrace record`,
// `msrtrace seeds`, the benchmarks' traces and the tests that need a recording. It builds the
// machine from a header (CPU profile, vCPUs, unknown-MSR policy, handler set, routing), runs
// the workload's simulated guest through a Recorder and closes the trace (or leaves it
// deliberately incomplete, as the workload says).
#ifndef MSRTRACE_WORKLOADS_RECORD_H_
#define MSRTRACE_WORKLOADS_RECORD_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/optional.h"
#include "harness/core/controller.h"
#include "harness/core/msr_filter.h"

namespace msrtrace::workloads {

struct RecordRequest {
  std::string output;    // Trace path ("x.trace", ".gz" = gzip). Required.
  std::string workload;  // A workload name (Workloads()); ignored when `golden` is set.
  std::string golden;    // A golden trace name (golden_traces.h): sets workload, profile, vCPUs,
                         // seed and events.
  std::string profile;   // CPU profile; empty = the workload's default.
  absl::optional<UnknownMsrPolicy> unknown_msr_policy;  // Unset = the workload's default.
  std::string handler_set = "reference";                // A registered handler set.
  uint64_t seed = 1;
  uint64_t events = 10000;   // random: number of exits.
  uint64_t vcpus = 0;        // 0 = the workload's default; at most 256.
  uint64_t flush_every = 0;  // RecorderOptions::flush_every.
  // Every N guest exits, a host save/restore round trip on the exiting vCPU; 0 = none.
  uint64_t host_save_restore = 0;
  MsrRouting routing;  // The header's MSR routing (docs/trace-format.md, "MSR routing").
  // Called every 2^16 exits with the exits so far and the expected total (0 = unknown); may be
  // empty.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

// What was recorded.
struct RecordSummary {
  uint64_t events = 0;
  std::string workload;
  std::string profile;
  uint32_t vcpus = 0;
  uint64_t seed = 0;
  std::string handler_set;
  std::string incomplete;  // "" or how the trace was deliberately left incomplete.
};

// Records the workload to `request.output`. Errors: InvalidArgument/NotFound for a request that
// names no workload, an unknown workload, golden trace, profile or handler set; the trace
// writer's errors (I/O) as they are.
absl::StatusOr<RecordSummary> RecordWorkload(const RecordRequest& request);

}  // namespace msrtrace::workloads

#endif  // MSRTRACE_WORKLOADS_RECORD_H_
