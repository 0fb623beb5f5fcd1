#include "harness/trace/read_ahead.h"

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

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

class ReadAheadReader final : public TraceReader {
 public:
  ReadAheadReader(std::unique_ptr<TraceReader> inner, const ReadAheadOptions& options)
      : inner_(std::move(inner)),
        batch_events_(std::max<size_t>(options.batch_events, 1)),
        batch_bytes_(std::max<size_t>(options.batch_bytes, 1)),
        batches_(std::max<size_t>(options.batches, 2)),
        offset_(inner_->offset()),
        records_(inner_->records()),
        record_offset_(inner_->record_offset()),
        record_number_(inner_->record_number()) {
    for (Batch& b : batches_) b.items.resize(batch_events_);
    worker_ = std::thread([this] { Work(); });
  }

  ~ReadAheadReader() override {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    if (worker_.joinable()) worker_.join();
  }

  const TraceHeader& header() const override { return inner_->header(); }
  const Snapshot& snapshot() const override { return inner_->snapshot(); }

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

  TraceEnd end() const override { return done_ ? inner_->end() : TraceEnd::kNoTrailer; }
  const TraceTrailer& trailer() const override {
    static const TraceTrailer kNone;
    return done_ ? inner_->trailer() : kNone;
  }
  uint64_t offset() const override { return offset_; }
  uint64_t records() const override { return records_; }
  uint64_t record_offset() const override { return record_offset_; }
  uint64_t record_number() const override { return record_number_; }
  const std::vector<CorruptRegion>& skipped() const override {
    static const std::vector<CorruptRegion> kNone;
    return done_ ? inner_->skipped() : kNone;
  }

 private:
  // The worker: fills free batches in order until the wrapped reader ends or fails, or the
  // reader is destroyed.
  void Work() {
    for (uint64_t n = 0;; ++n) {
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &ReadAheadReader::CanProduce));
        if (stop_) return;
      }
      Batch& b = batches_[n % batches_.size()];
      b.size = 0;
      b.last = false;
      b.status = absl::OkStatus();
      const uint64_t start = inner_->offset();
      while (b.size < batch_events_ && inner_->offset() - start < batch_bytes_) {
        Item& item = b.items[b.size];
        // A slot that held a large event gives its storage back instead of pinning it.
        if (item.offset - item.record_offset > kLargeEventBytes) item.event = ExitEvent();
        absl::StatusOr<bool> more = inner_->Next(&item.event);
        if (!more.ok() || !*more) {
          b.last = true;
          if (!more.ok()) b.status = more.status();
          break;
        }
        item.record_offset = inner_->record_offset();
        item.record_number = inner_->record_number();
        item.offset = inner_->offset();
        item.records = inner_->records();
        ++b.size;
      }
      {
        absl::MutexLock lock(&mu_);
        ++produced_;
      }
      if (b.last) return;
    }
  }

  bool CanProduce() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || produced_ - consumed_ < batches_.size();
  }
  bool CanConsume() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return consumed_ < produced_; }

  // The next published batch (waits for the worker).
  void Acquire() {
    uint64_t index;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &ReadAheadReader::CanConsume));
      index = consumed_;
    }
    current_ = &batches_[index % batches_.size()];
    pos_ = 0;
  }

  // Gives the current batch back to the worker.
  void Release() {
    current_ = nullptr;
    absl::MutexLock lock(&mu_);
    ++consumed_;
  }

  // The trace ended (false) or failed (the error) after the current batch's events: from here
  // on the wrapped reader's end(), trailer(), skipped(), offset() and records() apply.
  absl::StatusOr<bool> Finish() {
    if (current_->status.ok()) {
      final_ = false;
    } else {
      final_ = current_->status;
    }
    if (worker_.joinable()) worker_.join();
    done_ = true;
    offset_ = inner_->offset();
    records_ = inner_->records();
    return final_;
  }

  const std::unique_ptr<TraceReader> inner_;
  const size_t batch_events_;
  const size_t batch_bytes_;
  std::vector<Batch> batches_;
  std::thread worker_;

  absl::Mutex mu_;
  uint64_t produced_ ABSL_GUARDED_BY(mu_) = 0;  // Batches published by the worker.
  uint64_t consumed_ ABSL_GUARDED_BY(mu_) = 0;  // Batches the caller has given back.
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

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
