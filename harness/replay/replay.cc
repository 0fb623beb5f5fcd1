#include "harness/replay/replay.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "harness/core/status_macros.h"
#include "harness/trace/read_ahead.h"

namespace msrtrace {
namespace {

constexpr uint64_t kProgressEvery = 1u << 16;

// Counters per MSR without the name (added once at the end).
struct Counts {
  uint32_t index = 0;
  bool used = false;
  uint64_t reads = 0, writes = 0, faults = 0, ignored = 0, vmm_errors = 0;
};

// The per-MSR counters: one flat open-addressing array keyed by MSR index (multiplicative hash,
// linear probing, at most half full), the counters in the entry itself, so an event costs one
// probe of one array (usually one cache line). It allocates only when it doubles.
class PerMsrCounts {
 public:
  PerMsrCounts() : table_(kInitialSize) {}

  Counts& For(uint32_t index) {
    for (size_t i = Home(index);; i = (i + 1) & (table_.size() - 1)) {
      Counts& c = table_[i];
      if (ABSL_PREDICT_TRUE(c.used && c.index == index)) return c;
      if (!c.used) return Add(index, i);
    }
  }
  // Every counted MSR, in no particular order.
  template <typename F>
  void ForEach(F f) const {
    for (const Counts& c : table_) {
      if (c.used) f(c);
    }
  }
  size_t size() const { return used_; }

 private:
  static constexpr size_t kInitialSize = 1024;  // A power of two.

  // Fibonacci hashing: the top bits of index * 2^64/phi.
  size_t Home(uint32_t index) const {
    return static_cast<size_t>((index * 0x9e3779b97f4a7c15ull) >> shift_);
  }
  // The first event of `index`, whose probe ended at the free entry `i`.
  ABSL_ATTRIBUTE_NOINLINE Counts& Add(uint32_t index, size_t i) {
    if (2 * (used_ + 1) > table_.size()) {
      Grow();
      return For(index);
    }
    Counts& c = table_[i];
    c.used = true;
    c.index = index;
    ++used_;
    return c;
  }
  void Grow() {
    std::vector<Counts> old(table_.size() * 2);
    old.swap(table_);
    --shift_;
    used_ = 0;
    for (const Counts& c : old) {
      if (c.used) For(c.index) = c;
    }
  }

  std::vector<Counts> table_;
  int shift_ = 64 - 10;  // 64 - log2(table_.size()).
  size_t used_ = 0;
};

// One streaming pass over a trace: the reader loop around an ExitChecker, which reports its
// divergences here.
class ReplayLoop : public DivergenceSink {
 public:
  ReplayLoop(const ReplayOptions& options, ReplayResult* result)
      : options_(options), result_(*result) {}

  Divergence* Add(DivergenceKind /*kind*/) override {
    ++result_.divergence_count;
    if (result_.divergences.size() >= options_.max_divergences) return nullptr;
    result_.divergences.emplace_back();
    return &result_.divergences.back();
  }

  absl::Status Run(TraceReader& reader) {
    result_.header = reader.header();
    ASSIGN_OR_RETURN(machine_, BuildMachine(reader.header()));
    absl::Status st = machine_->Restore(reader.snapshot());
    if (!st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "snapshot does not fit handler set '", reader.header().handler_set, "': ", st.message()));
    }
    engine_ = std::make_unique<ControllerEngine>(machine_->controller.get());
    ExitCheckOptions co;
    co.volatile_policy = options_.volatile_policy;
    ExitChecker checker(machine_.get(), engine_.get(), this, co);
    checker.BeginRun();
    const absl::Time start = absl::Now();
    uint64_t last_seq = 0;
    while (true) {
      const ExitEvent* next = nullptr;
      absl::StatusOr<bool> more = reader.NextView(&next);
      if (!more.ok()) return more.status();
      if (!*more) break;
      const ExitEvent& ev = *next;
      if (absl::Status s = checker.Run(ev); ABSL_PREDICT_FALSE(!s.ok())) {
        return absl::Status(s.code(),
                            absl::StrFormat("byte %u (record %u): %s", reader.record_offset(),
                                            reader.record_number(), s.message()));
      }
      last_seq = ev.seq;
      Count(ev, checker);
      ++result_.events;
      if (options_.resume_after != 0 && result_.events == options_.resume_after) {
        RETURN_IF_ERROR(Resume());
        checker.Rebind(machine_.get(), engine_.get());
      }
      if (options_.progress && result_.events % kProgressEvery == 0) {
        options_.progress(result_.events, reader.offset());
      }
    }
    const absl::Duration elapsed = absl::Now() - start;
    result_.seconds = absl::ToDoubleSeconds(elapsed);
    result_.events_per_second =
        result_.seconds > 0 ? static_cast<double>(result_.events) / result_.seconds : 0;
    result_.gaps = checker.gaps();
    result_.end = reader.end();
    result_.skipped = reader.skipped();
    result_.final_digest = machine_->Digest();
    if (result_.end == TraceEnd::kComplete) {
      result_.recorded_final_digest = reader.trailer().final_state_digest;
      if (result_.recorded_final_digest != 0 &&
          result_.recorded_final_digest != result_.final_digest) {
        Divergence* d = Add(DivergenceKind::kFinalState);
        if (d != nullptr) {
          d->kind = DivergenceKind::kFinalState;
          d->seq = last_seq;
          d->expected = absl::StrFormat("%#018x", result_.recorded_final_digest);
          d->actual = absl::StrFormat("%#018x", result_.final_digest);
        }
      }
    }
    FillPerMsr();
    return absl::OkStatus();
  }

 private:
  void Count(const ExitEvent& ev, const ExitChecker& checker) {
    Counts& c = counts_.For(ev.index());
    if (checker.access() == Access::kRead) {
      ++c.reads;
      ++result_.reads;
    } else {
      ++c.writes;
      ++result_.writes;
    }
    switch (checker.observed()) {
      case RecordedKind::kGpInjected:
        ++c.faults;
        ++result_.faults;
        break;
      case RecordedKind::kIgnored:
        ++c.ignored;
        ++result_.ignored;
        break;
      case RecordedKind::kVmmError:
        ++c.vmm_errors;
        ++result_.vmm_errors;
        break;
      default:
        break;
    }
  }

  // Snapshot the machine, restore the snapshot into a freshly built one and continue there.
  absl::Status Resume() {
    const Snapshot snap = CaptureSnapshot(*machine_->controller, machine_->vcpus, machine_->memory);
    ASSIGN_OR_RETURN(std::unique_ptr<Machine> fresh, BuildMachine(result_.header));
    RETURN_IF_ERROR(fresh->Restore(snap));
    machine_ = std::move(fresh);
    engine_ = std::make_unique<ControllerEngine>(machine_->controller.get());
    return absl::OkStatus();
  }

  void FillPerMsr() {
    result_.per_msr.clear();
    result_.per_msr.reserve(counts_.size());
    counts_.ForEach([&](const Counts& c) {
      MsrCounts m;
      m.index = c.index;
      m.name = machine_->controller->MsrName(c.index);
      m.reads = c.reads;
      m.writes = c.writes;
      m.faults = c.faults;
      m.ignored = c.ignored;
      m.vmm_errors = c.vmm_errors;
      result_.per_msr.push_back(std::move(m));
    });
    std::sort(result_.per_msr.begin(), result_.per_msr.end(),
              [](const MsrCounts& x, const MsrCounts& y) { return x.index < y.index; });
  }

  const ReplayOptions& options_;
  ReplayResult& result_;
  std::unique_ptr<Machine> machine_;
  std::unique_ptr<ControllerEngine> engine_;
  PerMsrCounts counts_;
};

}  // namespace

absl::StatusOr<ReplayResult> ReplayReader(TraceReader& reader, const ReplayOptions& options) {
  ReplayResult result;
  ReplayLoop loop(options, &result);
  RETURN_IF_ERROR(loop.Run(reader));
  return result;
}

absl::StatusOr<ReplayResult> ReplayFile(const std::string& path, const ReplayOptions& options) {
  ReplayOptions first = options;
  first.resume_after = 0;
  TraceReaderOptions reader_options;
  reader_options.skip_corrupt = options.skip_corrupt;
  auto open = [&]() -> absl::StatusOr<std::unique_ptr<TraceReader>> {
    ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> r, TraceReader::Open(path, reader_options));
    if (options.read_ahead) return ReadAhead(std::move(r));
    return r;
  };
  ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> reader, open());
  ASSIGN_OR_RETURN(ReplayResult result, ReplayReader(*reader, first));
  result.name = path;

  auto add = [&](DivergenceKind kind, uint64_t want, uint64_t got, const std::string& what) {
    ++result.divergence_count;
    if (result.divergences.size() >= options.max_divergences) return;
    Divergence d;
    d.kind = kind;
    d.expected = absl::StrFormat("final digest %#018x", want);
    d.actual = absl::StrFormat("final digest %#018x (%s)", got, what);
    result.divergences.push_back(std::move(d));
  };
  // Later passes only compare digests; their own divergences repeat the first pass's.
  ReplayOptions again = first;
  again.max_divergences = 0;
  again.progress = nullptr;
  for (uint32_t i = 1; i < options.repeat; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> r, open());
    ASSIGN_OR_RETURN(ReplayResult rr, ReplayReader(*r, again));
    if (rr.final_digest != result.final_digest) {
      add(DivergenceKind::kNondeterministic, result.final_digest, rr.final_digest,
          absl::StrCat("replay ", i + 1, " of ", options.repeat));
    }
  }
  if (options.resume_after != 0) {
    again.resume_after = options.resume_after;
    ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> r, open());
    ASSIGN_OR_RETURN(ReplayResult rr, ReplayReader(*r, again));
    if (rr.final_digest != result.final_digest) {
      add(DivergenceKind::kResume, result.final_digest, rr.final_digest,
          absl::StrCat("resumed from a snapshot after event ", options.resume_after));
    }
  }
  return result;
}

}  // namespace msrtrace
