// Line parser for KVM tracepoint text as people capture it: raw ftrace (/sys/kernel/tracing/
// trace or trace_pipe, a flags column of any width 0-8, with or without the `[CPU]` column or
// the `(tgid)` column), `trace-cmd report` (libtraceevent's plugin_kvm rendering of
// kvm_exit/kvm_entry, padded event names, `<...>` for unknown comms), `perf script` (`kvm:`
// system prefix) and bare tracepoint lines as pasted into bug reports (`kvm_msr: msr_read 1a0 =
// 0x1800`, no task/CPU/timestamp prefix). Text after a complete event is ignored and flagged
// (kShapeTrailingText); an event line cut short is a bad line. ftrace's and trace-cmd's
// lost-events markers are LineStatus::kLost. The rendering and shape are detected per line; see
// docs/import.md for the exact lines accepted.
//
// Formats (ref: Linux arch/x86/kvm/trace.h TRACE_EVENT(kvm_msr), TRACE_EVENT(kvm_exit);
// rostedt/libtraceevent plugins/plugin_kvm.c):
//   kvm_msr:     "msr_%s %x = 0x%llx%s"  (read|write, " (#GP)" when an exception was raised)
//   kvm_exit:    "reason %s rip 0x%lx info %llx %llx"                      (old kernels)
//                "vcpu %u reason %s%s%s rip 0x%lx info %llx %llx"          (2019+)
//                "vcpu %u reason %s%s%s rip 0x%lx info1 0x%016llx info2 0x%016llx
//                 intr_info 0x%08x error_code 0x%08x"                      (recent)
//                "reason %s rip 0x%llx[ <func>[+0x..]] info %llx %llx"     (plugin_kvm)
//                reason: VMX MSR_READ/MSR_WRITE; SVM "msr" (kernel) / "EXIT_MSR" (plugin);
//                        "UNKNOWN (%llu)" (plugin, unknown value).
//   kvm_entry:   "vcpu %u" | "vcpu %u, rip 0x%lx[immediate exit]" | " vcpu %u rip 0x%llx"
//   kvm_inj_exception: "#GP (0x0)" and the newer "%s%s%s%s%s" form (vector name first).
//
// The parser never allocates: string_views in ParsedLine point into the caller's line.
// Thread-safety: stateless functions.
#ifndef MSRTRACE_IMPORTERS_KVM_TRACE_PARSER_H_
#define MSRTRACE_IMPORTERS_KVM_TRACE_PARSER_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "harness/core/exit.h"

namespace msrtrace {
namespace importers {

// How a line was rendered.
enum class Rendering : uint8_t {
  kUnknown = 0,
  kFtraceOld = 1,    // ftrace with a 4-character flags column ("d...").
  kFtraceNew = 2,    // ftrace with a 5-character flags column ("d....").
  kTraceCmd = 3,     // trace-cmd report (no flags column), also ftrace with irq-info off.
  kPerfScript = 4,   // perf script: "<comm> <tid> [cpu] ts: kvm:<event>: ...".
  kFtraceFlags = 5,  // ftrace with a flags column of another width (1-3 or 6-8 characters).
  kBare = 6,         // A bare tracepoint line: "kvm_msr: msr_read 1a0 = 0x1800".
  kTraceDat = 7,     // A record of trace-cmd's binary trace.dat (not a text line).
};
inline constexpr int kNumRenderings = 8;

// How a line deviates from the standard renderings (bits of ParsedLine::shapes). The tolerated
// ones (kToleratedShapes) are errors under --strict.
enum Shape : uint16_t {
  kShapeNoCpuColumn = 1u << 0,   // A prefixed line without the "[cpu]" column.
  kShapeFlagsWidth = 1u << 1,    // A flags column of 1-3 or 6-8 characters.
  kShapeBare = 1u << 2,          // No task/CPU/timestamp prefix.
  kShapeTrailingText = 1u << 3,  // Text after a complete event (ignored).
  kShapeUnknownComm = 1u << 4,   // "<...>" task name (trace-cmd: comm not recorded).
  kShapeTgid = 1u << 5,          // ftrace "(tgid)" column (options/record-tgid).
  kShapeSpacedComm = 1u << 6,    // A task name with spaces or brackets.
};
inline constexpr int kNumShapes = 7;
inline constexpr uint16_t kToleratedShapes =
    kShapeNoCpuColumn | kShapeFlagsWidth | kShapeBare | kShapeTrailingText;
// Name of a single Shape bit ("no-cpu-column", ...), for summaries and messages.
const char* ShapeName(uint16_t shape_bit);
// The thread id bare lines are assembled under (no real pid is this large).
inline constexpr uint32_t kBareThread = UINT32_MAX;
const char* RenderingName(Rendering r);

enum class EventType : uint8_t {
  kOther = 0,  // A well-formed trace line of another event: skipped and counted.
  kMsr = 1,
  kExit = 2,
  kEntry = 3,
  kInjException = 4,
};

// Largest vCPU id accepted (KVM_MAX_VCPU_IDS on x86 is at most 4 * 4096); larger ids make the
// line bad, which bounds per-vCPU memory.
inline constexpr uint32_t kMaxVcpuId = 16383;

// One parsed line. Fields are valid according to `type` and the has_* flags.
struct ParsedLine {
  Rendering rendering = Rendering::kUnknown;
  EventType type = EventType::kOther;
  uint16_t shapes = 0;           // Shape bits.
  uint8_t flags_width = 0;       // Width of the ftrace flags column (0 = none).
  absl::string_view comm;        // Command name ("<...>" when trace-cmd did not know it).
  uint32_t tid = 0;              // Thread (pid column); kBareThread for bare lines.
  bool has_cpu = false;          // The line named its host CPU.
  uint32_t cpu = 0;              // Host CPU.
  uint64_t lost = 0;             // LineStatus::kLost: events lost on `cpu`; UINT64_MAX unknown.
  uint64_t timestamp_ns = 0;     // Trace clock, not wall time.
  absl::string_view event_name;  // Without the "kvm:" prefix.

  // kvm_msr.
  bool write = false;
  uint32_t index = 0;
  uint64_t data = 0;
  bool gp = false;

  // kvm_exit / kvm_entry.
  bool has_vcpu = false;
  uint32_t vcpu = 0;
  bool has_rip = false;
  uint64_t rip = 0;
  // kvm_exit only.
  Vendor vendor = Vendor::kUnspecified;  // kUnspecified: reason did not tell (non-MSR exit).
  bool msr_exit = false;                 // The exit is an RDMSR/WRMSR exit.
  bool has_access = false;               // `access` known (VMX always; SVM from info1).
  Access access = Access::kRead;
  uint32_t reason = 0;  // Basic exit reason / SVM exit code when known.
  bool has_info1 = false;
  uint64_t info1 = 0;

  // kvm_inj_exception.
  uint8_t vector = 0;  // 13 for #GP; 0xff when the name was not recognized.
};

enum class LineStatus : uint8_t {
  kEvent = 0,  // *out holds a trace line (type may be kOther).
  kSkip = 1,   // Blank line, '#' comment or a known header line ("cpus=2", "CPU 3 is empty").
  kBad = 2,    // Not a trace line, a KVM event payload that does not parse, or a cut line.
  kLost = 3,   // A lost-events marker: out->cpu lost out->lost events before the next line.
               // ftrace "CPU:N [LOST M EVENTS]" / "CPU:N [LOST EVENTS]", trace-cmd report
               // "CPU:N [M EVENTS DROPPED]" / "CPU:N [EVENTS DROPPED]".
};

struct LineError {
  const char* what = "";  // Static string: what is wrong.
  size_t column = 0;      // 0-based byte offset in the line where it went wrong.
};

// Parses one line (without its trailing newline; a trailing '\r' is ignored). On kBad, *error
// says why. Never reads outside `line`.
LineStatus ParseLine(absl::string_view line, ParsedLine* out, LineError* error);

// Parses only a payload (the text after "<event>: ") of a KVM event, for tests and the fuzzer.
// `event` is the event name without system prefix. Returns false on a malformed payload.
bool ParsePayload(absl::string_view event, absl::string_view payload, ParsedLine* out,
                  LineError* error);

}  // namespace importers
}  // namespace msrtrace

#endif  // MSRTRACE_IMPORTERS_KVM_TRACE_PARSER_H_
