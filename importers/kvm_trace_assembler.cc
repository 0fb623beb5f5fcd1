#include "importers/kvm_trace_assembler.h"

#include <algorithm>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace msrtrace {
namespace importers {

VolatileMsrSet VolatileMsrSet::Builtin() {
  VolatileMsrSet s;
  s.Add(0x10, 0x10);              // IA32_TIME_STAMP_COUNTER: advances with time.
  s.Add(0x3b, 0x3b);              // IA32_TSC_ADJUST: follows TSC writes by the host/guest.
  s.Add(0x34, 0x34);              // MSR_SMI_COUNT.
  s.Add(0xc1, 0xc8);              // IA32_PMC0-7.
  s.Add(0xe7, 0xe8);              // IA32_MPERF / IA32_APERF.
  s.Add(0x198, 0x198);            // IA32_PERF_STATUS.
  s.Add(0x19c, 0x19c);            // IA32_THERM_STATUS.
  s.Add(0x1b1, 0x1b1);            // IA32_PACKAGE_THERM_STATUS.
  s.Add(0x309, 0x30b);            // IA32_FIXED_CTR0-2.
  s.Add(0x38e, 0x38e);            // IA32_PERF_GLOBAL_STATUS.
  s.Add(0x4c1, 0x4c8);            // IA32_A_PMC0-7.
  s.Add(0x611, 0x611);            // MSR_PKG_ENERGY_STATUS.
  s.Add(0x619, 0x619);            // MSR_DRAM_ENERGY_STATUS.
  s.Add(0x639, 0x639);            // MSR_PP0_ENERGY_STATUS.
  s.Add(0x641, 0x641);            // MSR_PP1_ENERGY_STATUS.
  s.Add(0x6e0, 0x6e0);            // IA32_TSC_DEADLINE: reads 0 once the timer fired.
  s.Add(0x839, 0x839);            // x2APIC TMCCT (current count).
  s.Add(0xc0010004, 0xc0010007);  // AMD PERF_CTR0-3.
  s.Add(0xc0010201, 0xc0010201);  // AMD PERF_CTR0 (core ext.), odd indices are counters:
  s.Add(0xc0010203, 0xc0010203);
  s.Add(0xc0010205, 0xc0010205);
  s.Add(0xc0010207, 0xc0010207);
  s.Add(0xc0010209, 0xc0010209);
  s.Add(0xc001020b, 0xc001020b);
  s.Add(0xc00000e7, 0xc00000e9);  // AMD MPERF_RO / APERF_RO / IRPERF_COUNT.
  s.Add(0xc0010299, 0xc001029b);  // AMD RAPL_PWR_UNIT / CORE / PKG ENERGY_STAT.
  return s;
}

void VolatileMsrSet::Add(uint32_t first, uint32_t last) {
  if (first > last) std::swap(first, last);
  ranges_.push_back({first, last});
  std::sort(ranges_.begin(), ranges_.end(),
            [](const Range& a, const Range& b) { return a.first < b.first; });
}

bool VolatileMsrSet::Contains(uint32_t index) const {
  // Ranges may overlap (table rows plus the built-in list): scan the candidates left of the
  // upper bound. The set is small (tens of ranges).
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), index,
                             [](uint32_t v, const Range& r) { return v < r.first; });
  while (it != ranges_.begin()) {
    --it;
    if (index <= it->last) return true;
  }
  return false;
}

Assembler::Assembler(AssemblerOptions options, ExitEventSink* sink)
    : options_(options), sink_(sink) {}

absl::StatusOr<Assembler::Thread*> Assembler::ThreadFor(uint32_t tid) {
  auto it = thread_index_.find(tid);
  if (it != thread_index_.end()) return &threads_[it->second];
  if (threads_.size() >= kMaxThreads) {
    return absl::ResourceExhaustedError(
        absl::StrCat("more than ", kMaxThreads, " distinct threads in the capture"));
  }
  thread_index_.emplace(tid, threads_.size());
  threads_.emplace_back();
  threads_.back().tid = tid;
  threads_.back().gap_epoch = global_gap_epoch_;
  return &threads_.back();
}

uint32_t Assembler::AssignVcpu() {
  uint32_t id = 0;
  while (id < vcpu_used_.size() && vcpu_used_[id]) ++id;
  return id;
}

absl::Status Assembler::Emit(Thread& t, bool has_entry_rip, uint64_t entry_rip) {
  t.pending = false;
  if (t.vcpu < 0) {
    t.vcpu = AssignVcpu();
    ++stats_.vcpu_from_thread;
  }
  uint32_t vcpu = static_cast<uint32_t>(t.vcpu);
  if (vcpu >= vcpu_used_.size()) vcpu_used_.resize(vcpu + 1, false);
  vcpu_used_[vcpu] = true;
  vcpu_count_ = std::max(vcpu_count_, vcpu + 1);

  ExitEvent& e = event_;
  e.seq = next_seq_++;
  e.vcpu_id = vcpu;
  e.known = 0;
  e.lost_before = t.lost_before;
  if (t.lost_before != 0) ++stats_.events_after_gap;
  t.lost_before = 0;
  e.volatile_value = options_.volatile_msrs != nullptr && options_.volatile_msrs->Contains(t.index);
  Vendor vendor = t.vendor != Vendor::kUnspecified ? t.vendor : options_.default_vendor;
  if (vendor == Vendor::kAmdSvm) {
    e.exit = Exit::SvmMsr(t.access);
  } else {
    e.exit = t.access == Access::kWrite ? Exit::Wrmsr() : Exit::Rdmsr();
  }
  e.exit.instruction_length = 0;
  e.rcx = t.index;
  e.rax = e.rdx = 0;
  if (t.access == Access::kWrite) {
    e.rax = t.data & 0xffffffffull;
    e.rdx = t.data >> 32;
    e.known |= kFieldRaxRdxIn;
  }
  e.rip = t.has_rip ? t.rip : 0;
  if (t.has_rip) e.known |= kFieldRip;
  e.rflags = kRflagsFixed1;
  e.cr0 = e.cr4 = e.efer = 0;
  e.cs_l = false;
  e.interruptibility = 0;
  e.kind = t.gp ? RecordedKind::kGpInjected : RecordedKind::kRetired;
  e.rax_out = e.rdx_out = 0;
  e.rip_out = 0;
  e.pending_out = PendingException();
  e.memory_writes.clear();
  e.memory_writes_digest = 0;
  e.error.clear();
  if (!t.gp && t.access == Access::kRead) {
    e.rax_out = t.data & 0xffffffffull;
    e.rdx_out = t.data >> 32;
    e.known |= kFieldRaxRdxOut;
  }
  if (t.gp) {
    e.pending_out = PendingException::Gp0();
    e.known |= kFieldPendingOut;
  }
  if (has_entry_rip) {
    e.rip_out = entry_rip;
    e.known |= kFieldRipOut;
    if (!t.gp && t.has_rip) {
      uint64_t len = entry_rip - t.rip;
      if (len >= 1 && len <= 15) {
        e.exit.instruction_length = static_cast<uint8_t>(len);
        e.known |= kFieldInstrLength;
        ++stats_.instr_length_known;
      }
    }
  }
  ++stats_.events;
  return sink_->OnEvent(e, t.line);
}

absl::Status Assembler::MarkGap(Thread& t, uint64_t lost) {
  if (t.pending) {
    absl::Status s = Emit(t, false, 0);
    if (!s.ok()) return s;
  }
  if (t.in_exit && t.exit_msr && !t.exit_used) ++stats_.msr_exits_without_kvm_msr;
  t.in_exit = false;
  if (t.lost_before == 0) {
    t.lost_before = lost;
  } else if (t.lost_before != UINT64_MAX && lost != UINT64_MAX) {
    t.lost_before = t.lost_before + lost < t.lost_before ? UINT64_MAX : t.lost_before + lost;
  } else {
    t.lost_before = UINT64_MAX;
  }
  return absl::OkStatus();
}

absl::Status Assembler::Gap(uint32_t cpu, uint64_t lost) {
  ++stats_.gaps;
  if (lost == UINT64_MAX) {
    ++stats_.gaps_unknown;
  } else {
    stats_.events_lost += lost;
  }
  const uint64_t serial = ++gap_serial_;
  if (cpu_map_overflow_) {
    // No CPU map any more: every thread is after a gap of unknown size (marked at its next
    // line, so a marker costs O(1)).
    ++global_gap_epoch_;
    return absl::OkStatus();
  }
  std::vector<uint32_t> marked;
  auto it = cpu_threads_.find(cpu);
  if (it != cpu_threads_.end()) {
    marked.swap(it->second);
    cpu_thread_entries_ -= marked.size();
    cpu_threads_.erase(it);
    std::sort(marked.begin(), marked.end());
    marked.erase(std::unique(marked.begin(), marked.end()), marked.end());
  }
  const uint64_t per_thread = marked.size() == 1 ? lost : UINT64_MAX;
  for (uint32_t i : marked) {
    Thread& t = threads_[i];
    t.last_gap = serial;
    // Re-registered on CPU `cpu` (or another) by its next line with a CPU column.
    t.last_cpu = UINT32_MAX;
    absl::Status s = MarkGap(t, per_thread);
    if (!s.ok()) return s;
  }
  // The first thread seen on the CPU after the marker is marked too (Feed): unknown count
  // unless no thread had been seen there.
  open_gaps_[cpu] = OpenGap{marked.empty() ? lost : UINT64_MAX, serial};
  return absl::OkStatus();
}

absl::Status Assembler::Feed(const ParsedLine& line, uint64_t line_no) {
  if (line.type == EventType::kOther) return absl::OkStatus();
  auto thread_or = ThreadFor(line.tid);
  if (!thread_or.ok()) return thread_or.status();
  Thread& t = **thread_or;
  if (ABSL_PREDICT_FALSE(t.gap_epoch != global_gap_epoch_)) {
    t.gap_epoch = global_gap_epoch_;
    absl::Status s = MarkGap(t, UINT64_MAX);
    if (!s.ok()) return s;
  }
  if (line.has_cpu) {
    const uint32_t index = static_cast<uint32_t>(&t - threads_.data());
    if (!open_gaps_.empty()) {
      auto it = open_gaps_.find(line.cpu);
      if (it != open_gaps_.end()) {
        const OpenGap gap = it->second;
        open_gaps_.erase(it);
        // Already marked by this gap (it ran there before): nothing more to do.
        if (t.last_gap != gap.serial) {
          t.last_gap = gap.serial;
          absl::Status s = MarkGap(t, gap.lost);
          if (!s.ok()) return s;
        }
      }
    }
    if (t.last_cpu != line.cpu) {
      t.last_cpu = line.cpu;
      if (!cpu_map_overflow_) {
        if (cpu_thread_entries_ >= kMaxCpuThreadEntries) {
          cpu_map_overflow_ = true;
          cpu_threads_.clear();
          open_gaps_.clear();
        } else {
          cpu_threads_[line.cpu].push_back(index);
          ++cpu_thread_entries_;
        }
      }
    }
  }
  switch (line.type) {
    case EventType::kExit: {
      if (t.pending) {
        absl::Status s = Emit(t, false, 0);
        if (!s.ok()) return s;
      }
      if (t.in_exit && t.exit_msr && !t.exit_used) ++stats_.msr_exits_without_kvm_msr;
      if (line.has_vcpu) t.vcpu = line.vcpu;
      t.in_exit = true;
      t.exit_used = false;
      t.exit_msr = line.msr_exit;
      t.exit_has_access = line.has_access;
      t.exit_access = line.access;
      t.exit_vendor = line.vendor;
      t.exit_rip = line.rip;
      return absl::OkStatus();
    }
    case EventType::kMsr: {
      if (t.pending) {
        absl::Status s = Emit(t, false, 0);
        if (!s.ok()) return s;
      }
      t.pending = true;
      t.gp = line.gp;
      t.line = line_no;
      t.access = line.write ? Access::kWrite : Access::kRead;
      t.index = line.index;
      t.data = line.data;
      t.vendor = Vendor::kUnspecified;
      t.has_rip = false;
      if (t.in_exit && t.exit_msr && !t.exit_used) {
        t.exit_used = true;
        if (t.exit_has_access && t.exit_access != t.access) {
          ++stats_.access_mismatch;
        } else {
          t.vendor = t.exit_vendor;
          t.has_rip = true;
          t.rip = t.exit_rip;
        }
      } else {
        ++stats_.kvm_msr_without_exit;
      }
      return absl::OkStatus();
    }
    case EventType::kInjException:
      if (t.pending && line.vector == kVectorGp) t.gp = true;
      return absl::OkStatus();
    case EventType::kEntry: {
      if (line.has_vcpu) t.vcpu = line.vcpu;
      if (t.in_exit && t.exit_msr && !t.exit_used) ++stats_.msr_exits_without_kvm_msr;
      t.in_exit = false;
      if (t.pending) return Emit(t, line.has_rip, line.rip);
      return absl::OkStatus();
    }
    case EventType::kOther:
      break;
  }
  return absl::OkStatus();
}

absl::Status Assembler::Finish() {
  for (Thread& t : threads_) {
    if (t.in_exit && t.exit_msr && !t.exit_used) ++stats_.msr_exits_without_kvm_msr;
    t.in_exit = false;
    if (t.pending) {
      absl::Status s = Emit(t, false, 0);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace importers
}  // namespace msrtrace
