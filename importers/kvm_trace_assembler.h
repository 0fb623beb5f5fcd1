// Per-vCPU event assembly: turns parsed tracepoint lines into ExitEvents.
//
// KVM traces one guest MSR access as (per vCPU thread, in order)
//   kvm_exit (reason MSR_READ/MSR_WRITE/msr, guest RIP)
//   kvm_msr  (index, value, " (#GP)" when the access faulted)
//   [kvm_inj_exception #GP]
//   kvm_entry (vCPU id, RIP at the next entry)
// (ref: arch/x86/kvm/vmx/vmx.c / svm.c call trace_kvm_exit on exit; msrs.c kvm_emulate_rdmsr/
// wrmsr call trace_kvm_msr_read/write[_ex]; x86.c vcpu_enter_guest calls trace_kvm_entry.)
// The assembler keeps one small state per host thread, so interleaved vCPUs split into
// per-vCPU streams. Any subset of these lines is accepted: a kvm_msr alone gives an event
// whose `known` bits say that RIP and the instruction length are unknown.
//
// What an imported event knows (EventField bits in ExitEvent::known):
//   kFieldRaxRdxIn  - WRMSR only: RAX[31:0]/RDX[31:0] from the value (upper halves unknown).
//   kFieldRaxRdxOut - retired RDMSR only: RAX = value[31:0], RDX = value[63:32].
//   kFieldRip       - a matching kvm_exit gave the guest RIP.
//   kFieldRipOut    - the next kvm_entry printed the RIP.
//   kFieldInstrLength - retired, both RIPs known, and entry RIP - exit RIP in [1, 15].
//   kFieldPendingOut  - #GP events only (#GP(0) pending).
// Never known: mode registers, host TSC/wall clock, guest-memory writes.
//
// Gaps (lost events). A lost-events marker for host CPU N (ftrace "CPU:N [LOST M EVENTS]",
// a trace.dat page with missed events) marks, as "after a gap", every thread that the capture
// showed on CPU N before the marker, and the first thread shown on CPU N after it (the events
// lost there may be any of theirs). Each marked thread: a pending access is emitted without
// its kvm_entry (that entry may be among the lost events), the open kvm_exit is forgotten, and
// its next event carries ExitEvent::lost_before = M when exactly one thread was marked by the
// marker (M counts every event lost on the CPU, so it is an upper bound), otherwise UINT64_MAX
// (unknown). Lines without a CPU column are not mapped to CPUs.
//
// Thread-safety: none. Memory: O(threads) (bounded by kMaxThreads), no per-event allocation.
#ifndef MSRTRACE_IMPORTERS_KVM_TRACE_ASSEMBLER_H_
#define MSRTRACE_IMPORTERS_KVM_TRACE_ASSEMBLER_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "harness/core/exit.h"
#include "harness/trace/trace_types.h"
#include "importers/kvm_trace_parser.h"

namespace msrtrace {
namespace importers {

// MSRs whose reads depend on time or on host activity. Replay compares them by policy
// (docs/import.md "Volatile MSRs"), not bit for bit.
class VolatileMsrSet {
 public:
  // The importer's own list: TSC, TSC_ADJUST, TSC_DEADLINE, MPERF/APERF (Intel and AMD),
  // kvm-clock system time, x2APIC current count, thermal/power/RAPL counters, PMCs, SMI count.
  static VolatileMsrSet Builtin();
  void Add(uint32_t first, uint32_t last);
  bool Contains(uint32_t index) const;

 private:
  struct Range {
    uint32_t first, last;
  };
  std::vector<Range> ranges_;  // Sorted by `first` after Add.
};

// Receives completed events, in completion order (seq strictly increasing).
class ExitEventSink {
 public:
  virtual ~ExitEventSink() = default;
  // `line` is the 1-based input line of the event's kvm_msr.
  virtual absl::Status OnEvent(const ExitEvent& event, uint64_t line) = 0;
};

struct AssemblerOptions {
  // Vendor of events whose capture has no kvm_exit line.
  Vendor default_vendor = Vendor::kIntelVmx;
  const VolatileMsrSet* volatile_msrs = nullptr;  // Not owned; may be null.
};

struct AssemblerStats {
  uint64_t events = 0;
  uint64_t msr_exits_without_kvm_msr = 0;  // MSR kvm_exit followed by no kvm_msr.
  uint64_t kvm_msr_without_exit = 0;       // kvm_msr with no MSR kvm_exit before it.
  uint64_t access_mismatch = 0;            // kvm_exit direction disagrees with kvm_msr.
  uint64_t instr_length_known = 0;
  uint64_t vcpu_from_thread = 0;  // Events whose vCPU id was assigned per thread.
  uint64_t gaps = 0;              // Lost-events markers.
  uint64_t gaps_unknown = 0;      // ... of them without an event count.
  uint64_t events_lost = 0;       // Sum of the known counts.
  uint64_t events_after_gap = 0;  // Events emitted with lost_before != 0.
};

class Assembler {
 public:
  static constexpr size_t kMaxThreads = 65536;

  Assembler(AssemblerOptions options, ExitEventSink* sink);

  // Feeds one parsed trace line (LineStatus::kEvent). `line_no` is 1-based.
  // Errors: the sink's error; kResourceExhausted past kMaxThreads threads.
  absl::Status Feed(const ParsedLine& line, uint64_t line_no);
  // A lost-events marker: `lost` events (UINT64_MAX = unknown) were lost on host CPU `cpu`
  // before the next line. See the file comment for the rule.
  absl::Status Gap(uint32_t cpu, uint64_t lost);
  // Emits every pending access. Call once at the end of the input.
  absl::Status Finish();

  const AssemblerStats& stats() const { return stats_; }
  // Highest vCPU id seen or assigned, +1 (0 before the first event).
  uint32_t vcpu_count() const { return vcpu_count_; }

 private:
  struct Thread {
    uint32_t tid = 0;
    int64_t vcpu = -1;
    uint32_t last_cpu = UINT32_MAX;  // Host CPU of the last line with a CPU column.
    uint64_t lost_before = 0;        // For the next emitted event (a gap preceded it).
    uint64_t last_gap = 0;           // Serial number of the last gap that marked it.
    uint64_t gap_epoch = 0;          // global_gap_epoch_ when last synchronized.
    // The last kvm_exit since the last kvm_entry.
    bool in_exit = false;
    bool exit_used = false;
    bool exit_msr = false;
    bool exit_has_access = false;
    Access exit_access = Access::kRead;
    Vendor exit_vendor = Vendor::kUnspecified;
    uint64_t exit_rip = 0;
    // An MSR access waiting for its kvm_entry.
    bool pending = false;
    bool gp = false;
    bool has_rip = false;
    uint64_t line = 0;
    Access access = Access::kRead;
    uint32_t index = 0;
    uint64_t data = 0;
    Vendor vendor = Vendor::kUnspecified;
    uint64_t rip = 0;
  };

  absl::StatusOr<Thread*> ThreadFor(uint32_t tid);
  absl::Status Emit(Thread& t, bool has_entry_rip, uint64_t entry_rip);
  uint32_t AssignVcpu();
  absl::Status MarkGap(Thread& t, uint64_t lost);

  AssemblerOptions options_;
  ExitEventSink* sink_;
  absl::flat_hash_map<uint32_t, size_t> thread_index_;
  std::vector<Thread> threads_;
  std::vector<bool> vcpu_used_;
  // Threads seen on each CPU since that CPU's last gap (appended on migration, may repeat;
  // deduplicated when a gap uses them). At most kMaxCpuThreadEntries in total: past that the
  // map is dropped and every gap marks every thread (lazily, through global_gap_epoch_).
  static constexpr size_t kMaxCpuThreadEntries = 1 << 20;
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> cpu_threads_;
  size_t cpu_thread_entries_ = 0;
  bool cpu_map_overflow_ = false;
  uint64_t global_gap_epoch_ = 0;
  uint64_t gap_serial_ = 0;
  struct OpenGap {
    uint64_t lost;
    uint64_t serial;
  };
  // CPUs with a gap whose first thread afterwards is still to be marked.
  absl::flat_hash_map<uint32_t, OpenGap> open_gaps_;
  uint32_t vcpu_count_ = 0;
  uint64_t next_seq_ = 1;
  ExitEvent event_;  // Reused for every emission.
  AssemblerStats stats_;
};

}  // namespace importers
}  // namespace msrtrace

#endif  // MSRTRACE_IMPORTERS_KVM_TRACE_ASSEMBLER_H_
