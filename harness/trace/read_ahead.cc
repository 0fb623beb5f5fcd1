#include "harness/trace/read_ahead.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace msrtrace {
namespace {

// One event and where the wrapped reader stood just after reading it.
struct Item {
  ExitEvent event;
  uint64_t record_offset = 0;
  uint64_t record_number = 0;
  uint64_t offset = 0;
  uint64_t records = 0;
};

// Events handed over together. The last batch of a trace ends with the wrapped reader's answer
// after its events: false (the end) or an error.
struct Batch {
  std::vector<Item> items;
  size_t size = 0;
  bool last = false;
  absl::Status status;  // The error that ended the trace (with `last`).
};

// What the caller's side and the worker share. The worker holds it too, so a worker left behind
// by an early destruction (ReadAheadOptions::stop_wait) never touches freed memory.
struct Ring {
  Ring(std::unique_ptr<TraceReader> r, const ReadAheadOptions& options)
      : inner(std::move(r)),
        batch_events(std::max<size_t>(options.batch_events, 1)),
        batch_bytes(std::max<size_t>(options.batch_bytes, 1)),
        batches(std::max<size_t>(options.batches, 2)),
        stop_wait(options.stop_wait) {
    for (Batch& b : batches) b.items.resize(batch_events);
  }

  bool CanProduce() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return stop.load(std::memory_order_relaxed) || produced - consumed < batches.size();
  }
  bool CanConsume() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return consumed < produced; }
  bool Finished() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return worker_done; }

  const std::unique_ptr<TraceReader> inner;
  const size_t batch_events;
  const size_t batch_bytes;
  std::vector<Batch> batches;
  const absl::Duration stop_wait;

  absl::Mutex mu;
  uint64_t produced ABSL_GUARDED_BY(mu) = 0;  // Batches published by the worker.
  uint64_t consumed ABSL_GUARDED_BY(mu) = 0;  // Batches the caller has given back.
  bool worker_done ABSL_GUARDED_BY(mu) = false;
  // Set (under mu) when the reader is destroyed early; the worker also checks it between events.
  std::atomic<bool> stop{false};
};

// The worker: fills free batches in order until the wrapped reader ends or fails, or the
// reader is destroyed.
void Work(const std::shared_ptr<Ring>& ring) {
  Ring& r = *ring;
  for (uint64_t n = 0;; ++n) {
    {
      absl::MutexLock lock(&r.mu);
      r.mu.Await(absl::Condition(&r, &Ring::CanProduce));
      if (r.stop.load(std::memory_order_relaxed)) break;
    }
    Batch& b = r.batches[n % r.batches.size()];
    b.size = 0;
    b.last = false;
    b.status = absl::OkStatus();
    const uint64_t start = r.inner->offset();
    while (b.size < r.batch_events && r.inner->offset() - start < r.batch_bytes &&
           !r.stop.load(std::memory_order_relaxed)) {
      Item& item = b.items[b.size];
      // A slot that held a large event gives its storage back instead of pinning it.
      if (item.offset - item.record_offset > kLargeEventBytes) item.event = ExitEvent();
      absl::StatusOr<bool> more = r.inner->Next(&item.event);
      if (!more.ok() || !*more) {
        b.last = true;
        if (!more.ok()) b.status = more.status();
        break;
      }
      item.record_offset = r.inner->record_offset();
      item.record_number = r.inner->record_number();
      item.offset = r.inner->offset();
      item.records = r.inner->records();
      ++b.size;
    }
    absl::MutexLock lock(&r.mu);
    ++r.produced;
    if (b.last) break;
  }
  absl::MutexLock lock(&r.mu);
  r.worker_done = true;
}

class ReadAheadReader final : public TraceReader {
 public:
  ReadAheadReader(std::unique_ptr<TraceReader> inner, const ReadAheadOptions& options)
      : ring_(std::make_shared<Ring>(std::move(inner), options)),
        inner_(*ring_->inner),
        offset_(inner_.offset()),
        records_(inner_.records()),
        record_offset_(inner_.record_offset()),
        record_number_(inner_.record_number()) {
    worker_ = std::thread(Work, ring_);
  }

  ~ReadAheadReader() override {
    if (!worker_.joinable()) return;
    bool finished;
    {
      absl::MutexLock lock(&ring_->mu);
      ring_->stop.store(true, std::memory_order_relaxed);
      finished = ring_->mu.AwaitWithTimeout(absl::Condition(ring_.get(), &Ring::Finished),
                                            ring_->stop_wait);
    }
    if (finished) {
      worker_.join();
    } else {
      worker_.detach();  // Blocked in the wrapped reader; it owns a share of the ring.
    }
  }

  const TraceHeader& header() const override { return inner_.header(); }
  const Snapshot& snapshot() const override { return inner_.snapshot(); }

  absl::StatusOr<bool> Next(ExitEvent* event) override {
    const ExitEvent* view = nullptr;
    absl::StatusOr<bool> more = NextView(&view);
    if (more.ok() && *more) *event = *view;
    return more;
  }

  absl::StatusOr<bool> NextView(const ExitEvent** event) override {
    if (done_) return final_;
    if (current_ != nullptr && pos_ == current_->size) {
      if (current_->last) return Finish();
      Release();
    }
    if (current_ == nullptr) Acquire();
    if (pos_ == current_->size) return Finish();  // A last batch with no events.
    const Item& item = current_->items[pos_++];
    *event = &item.event;
    record_offset_ = item.record_offset;
    record_number_ = item.record_number;
    offset_ = item.offset;
    records_ = item.records;
    return true;
  }

  TraceEnd end() const override { return done_ ? inner_.end() : TraceEnd::kNoTrailer; }
  const TraceTrailer& trailer() const override {
    static const TraceTrailer kNone;
    return done_ ? inner_.trailer() : kNone;
  }
  uint64_t offset() const override { return offset_; }
  uint64_t records() const override { return records_; }
  uint64_t record_offset() const override { return record_offset_; }
  uint64_t record_number() const override { return record_number_; }
  const std::vector<CorruptRegion>& skipped() const override {
    static const std::vector<CorruptRegion> kNone;
    return done_ ? inner_.skipped() : kNone;
  }

 private:
  // The next published batch (waits for the worker).
  void Acquire() {
    uint64_t index;
    {
      absl::MutexLock lock(&ring_->mu);
      ring_->mu.Await(absl::Condition(ring_.get(), &Ring::CanConsume));
      index = ring_->consumed;
    }
    current_ = &ring_->batches[index % ring_->batches.size()];
    pos_ = 0;
  }

  // Gives the current batch back to the worker.
  void Release() {
    current_ = nullptr;
    absl::MutexLock lock(&ring_->mu);
    ++ring_->consumed;
  }

  // The trace ended (false) or failed (the error) after the current batch's events: from here
  // on the wrapped reader's end(), trailer(), skipped(), offset() and records() apply.
  absl::StatusOr<bool> Finish() {
    if (current_->status.ok()) {
      final_ = false;
    } else {
      final_ = current_->status;
    }
    worker_.join();  // It stops after publishing the last batch.
    done_ = true;
    offset_ = inner_.offset();
    records_ = inner_.records();
    return final_;
  }

  const std::shared_ptr<Ring> ring_;
  const TraceReader& inner_;  // *ring_->inner.
  std::thread worker_;

  // The caller's side (only the caller's thread touches these).
  Batch* current_ = nullptr;
  size_t pos_ = 0;
  bool done_ = false;
  absl::StatusOr<bool> final_ = false;
  uint64_t offset_;
  uint64_t records_;
  uint64_t record_offset_;
  uint64_t record_number_;
};

}  // namespace

std::unique_ptr<TraceReader> ReadAhead(std::unique_ptr<TraceReader> inner,
                                       ReadAheadOptions options) {
  return std::make_unique<ReadAheadReader>(std::move(inner), options);
}

}  // namespace msrtrace
