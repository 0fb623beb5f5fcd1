// Importing production KVM tracepoint captures (ftrace, trace-cmd report, perf script; plain,
// stdin or .gz) into msrtrace traces, with snapshot inference and a comparison of the capture
// against a handler set ("replaying production against handlers").
//
// Two streaming passes over the text (constant memory; stdin is spooled to an unnamed temporary
// file for the second pass):
//   1. parse, assemble per-vCPU events, count everything, and note each (vCPU, MSR)'s first
//      read that no write precedes: the value production had before the capture started.
//   2. build the controller (ImportConfig::install), apply the inferred values with
//      Controller::HostWrite (volatile MSRs are not applied), capture the snapshot, then
//      re-assemble the events and write them through TraceWriter (when `output` is set) and
//      handle each one on the controller, comparing with what production did.
// Under UnknownMsrPolicy::kIgnore (production ran with KVM's ignore_msrs=1), a retired access of
// an MSR the handler set lacks is recorded as RecordedKind::kIgnored.
// A vCPU whose RIPs exceed 4 GiB starts in 64-bit mode (CR0.PG, CR4.PAE, EFER.LME|LMA, CS.L).
// What was inferred is labelled in the trace header ("inferred.msr.<vcpu>.<index>" = value,
// "inferred.volatile...", "inferred.unknown...", "inferred.rejected..."), see docs/import.md.
//
// Bad lines are reported (file:line:column: what) to `diagnostics` (the first
// max_reported_bad_lines of them) and skipped; with `strict`, the first one is an error.
//
// Thread-safety: none; each call is independent.
#ifndef MSRTRACE_IMPORTERS_KVM_TRACE_IMPORTER_H_
#define MSRTRACE_IMPORTERS_KVM_TRACE_IMPORTER_H_

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "harness/core/controller.h"
#include "importers/kvm_trace_assembler.h"
#include "importers/kvm_trace_parser.h"
#include "proto/report.pb.h"

namespace msrtrace {
namespace importers {

struct ImportConfig {
  std::vector<std::string> inputs;  // Paths; "-" = stdin; .gz detected from content.
  std::string output;               // Trace to write; empty = summary only.
  // Recorded in the trace header; the install callback must match them.
  std::string profile_name;
  std::string handler_set_name;
  UnknownMsrPolicy unknown_msr_policy = UnknownMsrPolicy::kInjectGp;
  Vendor default_vendor = Vendor::kIntelVmx;  // For captures without kvm_exit lines.
  // Installs the handler set into an empty controller. Empty: no inference or comparison
  // (every MSR counts as unhandled).
  std::function<absl::Status(Controller&)> install;
  const VolatileMsrSet* volatile_msrs = nullptr;  // Not owned; null = VolatileMsrSet::Builtin().
  // The first bad line, or the first line of a tolerated shape (kToleratedShapes: no CPU
  // column, other flags widths, bare lines, trailing text), is an error (kInvalidArgument).
  bool strict = false;
  // A truncated capture (a gzip stream without its end, or a final line without its newline)
  // is imported: the cut final line is dropped and the summary and the trace header say
  // "truncated". Without it, truncation is an error (kDataLoss).
  bool accept_truncated = false;
  bool compare = true;                  // Handle every event on the controller and compare.
  bool progress = false;                // Progress lines on `diagnostics` (meant for a terminal).
  std::ostream* diagnostics = nullptr;  // Bad-line reports and progress; may be null.
  uint32_t max_reported_bad_lines = 100;
  uint32_t max_disagreement_details = 20;
};

struct BadLine {
  std::string file;
  uint64_t line = 0;
  size_t column = 0;
  std::string what;
};

struct VcpuSummary {
  uint32_t id = 0;
  uint64_t reads = 0, writes = 0, faults = 0;
  bool long_mode = false;  // Inferred 64-bit mode: a RIP above 4 GiB.
};

struct MsrSummary {
  uint32_t index = 0;
  std::string name;  // From the handler set, or "MSR_0x...".
  uint64_t reads = 0, writes = 0, faults = 0;
  bool volatile_value = false;
  bool handled = false;   // The handler set registers the index.
  bool inferred = false;  // An initial value was inferred for some vCPU.
  // Comparison with production.
  uint64_t gp_production_only = 0;  // #GP in production, not here.
  uint64_t gp_here_only = 0;        // #GP here, not in production.
  uint64_t value_differs = 0;       // RDMSR read a different value (non-volatile only).
  uint64_t vmm_errors = 0;          // The controller failed the exit (e.g. policy kFail).
  uint64_t disagreements() const {
    return gp_production_only + gp_here_only + value_differs + vmm_errors;
  }
};

struct InferredValue {
  enum class Status : uint8_t { kApplied = 0, kVolatile, kUnknownMsr, kRejected, kNoHandlers };
  uint32_t vcpu = 0;
  uint32_t index = 0;
  uint64_t value = 0;
  uint64_t line = 0;  // Line of the read it came from.
  Status status = Status::kApplied;
  std::string note;
};
const char* InferredStatusName(InferredValue::Status s);

struct Disagreement {
  uint64_t line = 0;
  uint64_t seq = 0;
  uint32_t vcpu = 0;
  uint32_t index = 0;
  std::string what;  // "rdmsr 0x1b: production 0xfee00900, here 0xfee00d00".
};

struct ImportSummary {
  Rendering rendering = Rendering::kUnknown;  // The rendering of most event lines.
  uint64_t lines_by_rendering[kNumRenderings] = {};
  uint64_t lines_by_shape[kNumShapes] = {};  // Index = bit number of the Shape.
  uint16_t flags_widths = 0;                 // Bit w: a flags column of w characters was seen.
  // The first line whose rendering differs from the line before it ("" when none).
  uint64_t format_changes = 0;
  std::string first_format_change;  // "file:line: ftrace-5col -> bare".
  // Lost-events markers (gaps): see Assembler. Also in `assembler`.
  uint64_t gap_markers = 0;
  std::vector<std::string> first_gaps;  // "file:line: CPU 3 lost 1234 events" (first 20).
  // Truncation (ImportConfig::accept_truncated).
  bool truncated = false;
  std::string truncation;  // What was cut, e.g. "cap.txt.gz: gzip stream cut after 123 bytes".
  uint32_t max_vcpu_id = 0;
  std::string max_vcpu_where;  // "file:line" of the first event of the highest vCPU id.
  uint64_t bytes = 0;
  uint64_t lines = 0;
  uint64_t events = 0;        // Assembled MSR accesses.
  uint64_t kvm_lines = 0;     // kvm_msr/kvm_exit/kvm_entry/kvm_inj_exception lines.
  uint64_t other_events = 0;  // Well-formed lines of other events (skipped).
  std::vector<std::pair<std::string, uint64_t>> other_event_names;  // First 64 names.
  uint64_t skipped_lines = 0;                                       // Blank, comments, headers.
  uint64_t bad_lines = 0;
  std::vector<BadLine> first_bad_lines;
  AssemblerStats assembler;
  uint32_t vcpu_count = 0;
  std::vector<VcpuSummary> per_vcpu;    // By id.
  std::vector<MsrSummary> per_msr;      // By index.
  uint64_t msrs_overflow_events = 0;    // Events of MSRs past the per-MSR table cap.
  std::vector<InferredValue> inferred;  // In capture order.
  // Comparison ("N of M production MSRs handled, K disagree").
  bool compared = false;
  uint64_t msrs_total = 0;
  uint64_t msrs_handled = 0;
  uint64_t msrs_disagree = 0;  // Handled MSRs with at least one disagreement.
  uint64_t events_disagree = 0;
  std::vector<Disagreement> disagreements;  // The first max_disagreement_details.
  std::string output;                       // The trace written, if any.
  uint64_t events_written = 0;
};

// Imports the capture described by `config`. Errors: kInvalidArgument for unreadable input,
// a bad line under `strict`, no events at all while writing a trace; the install callback's or
// the trace writer's error otherwise.
[[nodiscard]] absl::StatusOr<ImportSummary> ImportCapture(const ImportConfig& config);

// The same on text in memory (`name` is used in messages); `config.inputs` is ignored. The entry
// point for fuzzers and unit tests: no file system access unless config.output is set.
[[nodiscard]] absl::StatusOr<ImportSummary> ImportFromBuffer(absl::string_view text,
                                                             const ImportConfig& config,
                                                             absl::string_view name = "<buffer>");

// "N of M production MSRs handled, K disagree" plus per-vCPU and per-MSR tables.
std::string FormatSummaryText(const ImportSummary& summary);
// The same content as the JSON report `msrtrace import --format=json` prints
// (proto/report.proto ImportReport).
report::ImportReport SummaryReport(const ImportSummary& summary);

}  // namespace importers
}  // namespace msrtrace

#endif  // MSRTRACE_IMPORTERS_KVM_TRACE_IMPORTER_H_
