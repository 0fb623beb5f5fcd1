// The trace model in plain C++ types. proto/trace.proto is its on-disk form; only
// harness/trace/trace_proto.{h,cc} converts between the two. Recorder, replay driver, importers and
// fuzzers use these types.
#ifndef MSRTRACE_HARNESS_TRACE_TYPES_H_
#define MSRTRACE_HARNESS_TRACE_TYPES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "harness/core/controller.h"
#include "harness/core/exit.h"
#include "harness/core/msr_filter.h"
#include "harness/core/snapshot.h"
#include "harness/core/vcpu.h"

namespace msrtrace {

// Trace format version. Readers accept any minor version of their major version (unknown
// fields are skipped) and reject a newer major version.
inline constexpr uint32_t kTraceFormatMajor = 1;
inline constexpr uint32_t kTraceFormatMinor = 0;
// Format 1.2: MSR routing in the header (fields 10-12), host-initiated events
// (ExitEvent.host_initiated, RECORDED_KIND_HOST_FAILED) and Outcome.route. Written only by traces
// that use them (UsesHostEventsFormat), so every other trace keeps its 1.0/1.1 bytes
// (docs/trace-format.md, Versioning).
inline constexpr uint32_t kHostEventsMinor = 2;

struct TraceHeader {
  uint32_t format_major = kTraceFormatMajor;
  uint32_t format_minor = kTraceFormatMinor;
  std::string producer;     // "msrtrace record 0.1.0", "msrtrace import (trace-cmd)".
  std::string cpu_profile;  // Name of the handlers' CPU profile ("intel-icx").
  UnknownMsrPolicy unknown_msr_policy = UnknownMsrPolicy::kInjectGp;
  uint32_t vcpu_count = 1;
  std::string handler_set;       // Registered handler-set name ("reference").
  int64_t creation_time_ns = 0;  // Unix time of recording; 0 = unknown.
  std::vector<std::pair<std::string, std::string>> labels;
  // KVM_CAP_X86_USER_SPACE_MSR reasons, KVM_X86_SET_MSR_FILTER and the userspace handler set.
  MsrRouting routing;
  // The trace may hold host-initiated events (ExitEvent::host_initiated). Not a proto field: the
  // format version says it (1.2, kHostEventsMinor); set when a 1.2 trace is read. A writer
  // refuses a host event in a trace it writes below 1.2 (neither this nor routing set).
  bool host_events = false;
};
// Whether `h` uses what format 1.2 adds: MSR routing (header fields 10-12) or host events.
bool UsesHostEventsFormat(const TraceHeader& h);

// What the recording says happened. `kVmmError` is an exit that failed in the VMM (a handler
// error, an unknown MSR under kFail): registers unchanged, the VM stopped.
enum class RecordedKind : uint8_t {
  kUnspecified = 0,
  kRetired = 1,
  kGpInjected = 2,
  kVmmError = 3,
  kIgnored = 4,
  kHostFailed = 5,  // A host-initiated access (KVM_GET/SET_MSRS) failed.
};
const char* RecordedKindName(RecordedKind k);
// The recorded kind of a handled exit's outcome (a failed exit is kVmmError). Inline: the exit
// checker calls it on every exit.
inline RecordedKind RecordedKindOf(Outcome::Kind k) {
  switch (k) {
    case Outcome::Kind::kRetired:
      return RecordedKind::kRetired;
    case Outcome::Kind::kGpInjected:
      return RecordedKind::kGpInjected;
    case Outcome::Kind::kIgnored:
      return RecordedKind::kIgnored;
    case Outcome::Kind::kUnspecified:
      break;
  }
  return RecordedKind::kUnspecified;
}

// Which optional parts of an event the source knew. Imported production traces do not know
// everything a recording from msrtrace does; replay checks only what is known.
enum EventField : uint32_t {
  kFieldRaxRdxIn = 1u << 0,      // RAX/RDX before the exit (imports know them for WRMSR only).
  kFieldRip = 1u << 1,           // RIP at the exit.
  kFieldInstrLength = 1u << 2,   // Exit instruction length.
  kFieldMode = 1u << 3,          // RFLAGS, CR0, CR4, EFER, CS.L, interruptibility.
  kFieldEnv = 1u << 4,           // host_tsc / host_wall_ns.
  kFieldRaxRdxOut = 1u << 5,     // RAX/RDX after the exit.
  kFieldRipOut = 1u << 6,        // RIP after the exit.
  kFieldPendingOut = 1u << 7,    // Pending exception after the exit.
  kFieldMemoryWrites = 1u << 8,  // The guest-memory writes (bytes).
  kFieldMemoryDigest = 1u << 9,  // Only a digest of the guest-memory writes.
  kFieldAll = (1u << 10) - 1,
};

struct RecordedMemoryWrite {
  uint64_t gpa = 0;
  std::string bytes;
};

// One MSR exit and its recorded outcome.
struct ExitEvent {
  uint64_t seq = 0;  // Strictly increasing within a trace.
  uint32_t vcpu_id = 0;
  uint32_t known = kFieldAll;   // EventField bits.
  bool volatile_value = false;  // The value depends on time (TSC, kvm-clock...): see replay.
  // Events lost on this vCPU just before this one (a capture gap); 0 = none, UINT64_MAX =
  // unknown count. From a gap on, replay compares only this vCPU's outcome kinds.
  uint64_t lost_before = 0;
  // KVM_GET_MSRS / KVM_SET_MSRS instead of a guest RDMSR/WRMSR (proto ExitEvent.host_initiated).
  bool host_initiated = false;

  // --- Inputs ---
  Exit exit;  // Vendor, reason, info1, instruction length, host TSC/wall clock.
  uint64_t rcx = 0, rax = 0, rdx = 0;
  uint64_t rip = 0;
  uint64_t rflags = kRflagsFixed1;
  uint64_t cr0 = 0, cr4 = 0, efer = 0;
  bool cs_l = false;
  uint32_t interruptibility = 0;

  // --- Recorded outcome ---
  RecordedKind kind = RecordedKind::kUnspecified;
  uint64_t rax_out = 0, rdx_out = 0, rip_out = 0;
  PendingException pending_out;
  std::vector<RecordedMemoryWrite> memory_writes;  // When kFieldMemoryWrites.
  uint64_t memory_writes_digest = 0;               // WriteLog::Digest() of the writes.
  std::string error;                               // kVmmError: the VMM's message.
  MsrRoute route = MsrRoute::kUnspecified;         // The path taken; unspecified = unknown.

  uint32_t index() const { return static_cast<uint32_t>(rcx); }
};

// Marks the end of a complete trace.
struct TraceTrailer {
  uint64_t event_count = 0;
  uint64_t final_state_digest = 0;  // StateDigest() after the last event; 0 = not recorded.
};

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_TRACE_TYPES_H_
