// The binary trace format. docs/trace-format.md is the specification; in short:
//
//   file     := prelude record*            (the whole file may be gzip-compressed)
//   prelude  := "MSRTRACE" u16le(major) u16le(minor) u32le(flags)          16 bytes
//   record   := u32le(length) u32le(masked crc32 of type+payload) u8(type) payload[length]
//   order    := header snapshot-core page{snapshot.page_count} event* trailer
//
// The reader is a stream over one reused payload buffer and one reused proto message per record
// type, so Next() does not allocate in the steady state and memory stays constant for any
// number of events.
#include "harness/trace/trace_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "harness/core/enum_names.h"
#include "harness/core/status_macros.h"
#include "harness/trace/atomic_file.h"
#include "harness/trace/trace_framing.h"
#include "harness/trace/trace_proto.h"
#include "harness/trace/trace_stream.h"

namespace msrtrace {
namespace {

// ----------------------------------------------------------------------------------------------
// Writing

class TraceWriterImpl : public TraceWriter {
 public:
  TraceWriterImpl(std::string path, std::unique_ptr<Sink> sink, TraceWriterOptions options,
                  AtomicTarget target)
      : path_(std::move(path)),
        sink_(std::move(sink)),
        options_(options),
        target_(std::move(target)) {}
  ~TraceWriterImpl() override {
    if (!closed_) {
      // In place: the file keeps every complete record and no trailer (kNoTrailer). Atomic: the
      // old file stays, and the unfinished temporary file goes.
      (void)sink_->Close();
      target_.Abandon();
    }
  }

  absl::Status Start(const TraceHeader& header, const Snapshot& snapshot) {
    record_.clear();
    host_events_ = UsesHostEventsFormat(header);
    absl::Status st = AppendTraceStart(header, snapshot, &record_);
    if (!st.ok()) return absl::Status(st.code(), absl::StrCat(path_, ": ", st.message()));
    RETURN_IF_ERROR(sink_->Write(record_.data(), record_.size()));
    // A reader can open the trace as soon as Create() returns.
    return sink_->Flush();
  }

  absl::Status Append(const ExitEvent& event) override {
    RETURN_IF_ERROR(CheckOpen());
    if (events_ > 0 && event.seq <= last_seq_) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: event seq %u is not greater than the previous seq %u", path_, event.seq, last_seq_));
    }
    if (event.host_initiated && !host_events_) {
      // A reader before format 1.2 would take it for a guest exit.
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: event seq %u is host-initiated, but the trace was started without "
                          "TraceHeader::host_events (format 1.2)",
                          path_, event.seq));
    }
    record_.clear();
    absl::Status st = AppendEventRecord(event, &event_proto_, &record_);
    if (!st.ok()) return absl::Status(st.code(), absl::StrCat(path_, ": ", st.message()));
    RETURN_IF_ERROR(Sticky(sink_->Write(record_.data(), record_.size())));
    ++events_;
    last_seq_ = event.seq;
    if (options_.flush_every != 0 && events_ % options_.flush_every == 0) {
      RETURN_IF_ERROR(Sticky(sink_->Flush()));
    }
    return absl::OkStatus();
  }

  absl::Status Flush() override {
    RETURN_IF_ERROR(CheckOpen());
    return Sticky(sink_->Flush());
  }

  absl::Status Close(uint64_t final_state_digest) override {
    RETURN_IF_ERROR(CheckOpen());
    closed_ = true;
    record_.clear();
    AppendTrailerRecord(TraceTrailer{events_, final_state_digest}, &record_);
    absl::Status s = sink_->Write(record_.data(), record_.size());
    absl::Status c = sink_->Close();
    if (s.ok()) s = c;
    if (s.ok()) return target_.Commit();
    target_.Abandon();
    return s;
  }

  uint64_t events_written() const override { return events_; }

 private:
  absl::Status CheckOpen() {
    if (closed_) {
      return absl::FailedPreconditionError(absl::StrCat(path_, ": trace writer is closed"));
    }
    return failed_;
  }
  // Remembers the first write error: after it the file's tail is unknown.
  absl::Status Sticky(absl::Status s) {
    if (!s.ok() && failed_.ok()) failed_ = s;
    return s;
  }

  std::string path_;
  std::unique_ptr<Sink> sink_;
  TraceWriterOptions options_;
  AtomicTarget target_;
  proto::ExitEvent event_proto_;  // Reused for every event.
  std::string record_;            // Reused record buffer.
  uint64_t events_ = 0;
  uint64_t last_seq_ = 0;
  bool host_events_ = false;  // Format 1.2: host events may be appended.
  bool closed_ = false;
  absl::Status failed_;
};

// ----------------------------------------------------------------------------------------------
// Reading

class TraceReaderImpl : public TraceReader {
 public:
  TraceReaderImpl(std::string name, std::unique_ptr<Input> input, TraceReaderOptions options)
      : name_(std::move(name)), input_(std::move(input)), options_(options) {}

  absl::Status Start();

  const TraceHeader& header() const override { return header_; }
  const Snapshot& snapshot() const override { return snapshot_; }
  absl::StatusOr<bool> Next(ExitEvent* event) override;
  TraceEnd end() const override { return end_; }
  const TraceTrailer& trailer() const override { return trailer_; }
  uint64_t offset() const override { return pos_; }
  uint64_t records() const override { return records_; }
  uint64_t record_offset() const override { return record_start_; }
  uint64_t record_number() const override { return records_ == 0 ? 0 : records_ - 1; }
  const std::vector<CorruptRegion>& skipped() const override { return skipped_; }

 private:
  // kBad: the record fails its length cap or checksum, or the stream ends inside it (bad_ says
  // which); the reader is positioned at its start.
  enum class Got { kRecord, kEof, kBad };

  // Reads up to `n` bytes, fewer only at the end of the stream. Bytes pushed back by a resync
  // (pending_) come first.
  absl::StatusOr<size_t> ReadFull(char* dst, size_t n) {
    size_t done = 0;
    if (pending_pos_ < pending_.size()) {
      const size_t k = std::min(n, pending_.size() - pending_pos_);
      memcpy(dst, pending_.data() + pending_pos_, k);
      pending_pos_ += k;
      done = k;
      pos_ += k;
      if (pending_pos_ == pending_.size()) {
        pending_.clear();
        pending_pos_ = 0;
      }
    }
    while (done < n) {
      absl::StatusOr<size_t> got = input_->Read(dst + done, n - done);
      if (!got.ok()) return Error(got.status().code(), got.status().message());
      if (*got == 0) break;
      done += *got;
      pos_ += *got;
    }
    return done;
  }

  // Makes at least `n` unread bytes available in pending_ (fewer only at the end of the
  // stream); returns how many there are.
  absl::StatusOr<size_t> Peek(size_t n) {
    if (pending_pos_ > kIoBufferSize && pending_pos_ * 2 > pending_.size()) {
      pending_.erase(0, pending_pos_);
      pending_pos_ = 0;
    }
    while (pending_.size() - pending_pos_ < n) {
      const size_t old = pending_.size();
      const size_t want = std::max(n - (old - pending_pos_), kIoBufferSize);
      pending_.resize(old + want);
      absl::StatusOr<size_t> got = input_->Read(&pending_[old], want);
      if (!got.ok()) {
        pending_.resize(old);
        return Error(got.status().code(), got.status().message());
      }
      pending_.resize(old + *got);
      if (*got == 0) break;
    }
    return pending_.size() - pending_pos_;
  }

  // Scans forward from the current position for the next record that validates: a length
  // within the cap, an event or trailer type (the only records after the snapshot that this
  // format's writers emit; a skippable type of a later minor version may be passed over), and a
  // matching checksum. Consumes the bytes before it. Returns false at the end of the stream.
  absl::StatusOr<bool> SeekIntactRecord() {
    for (;;) {
      ASSIGN_OR_RETURN(size_t avail, Peek(kRecordHeaderSize));
      if (avail < kRecordHeaderSize) {
        pos_ += avail;
        pending_.clear();
        pending_pos_ = 0;
        return false;
      }
      const char* p = pending_.data() + pending_pos_;
      const uint32_t len = GetU32(p);
      const uint8_t type = static_cast<uint8_t>(p[8]);
      if (len <= kMaxRecordPayload && (type == kRecordEvent || type == kRecordTrailer)) {
        ASSIGN_OR_RETURN(avail, Peek(kRecordHeaderSize + len));
        p = pending_.data() + pending_pos_;  // Peek may have moved the buffer.
        if (avail >= kRecordHeaderSize + len &&
            RecordCrc(type, p + kRecordHeaderSize, len) == GetU32(p + 4)) {
          return true;
        }
      }
      ++pending_pos_;
      ++pos_;
    }
  }

  // After a damaged record at record_start_: pushes its bytes after the first back into the
  // stream (so the scan also considers records starting inside it) and seeks the next intact
  // record.
  absl::StatusOr<bool> ResyncAfterBadRecord() {
    std::string rest(bad_head_, bad_head_len_);
    rest.append(buf_.data(), bad_payload_len_);
    rest.append(pending_, pending_pos_, std::string::npos);
    pending_ = std::move(rest);
    pending_pos_ = 1;
    pos_ = record_start_ + 1;
    if (pending_pos_ >= pending_.size()) {
      pending_.clear();
      pending_pos_ = 0;
    }
    return SeekIntactRecord();
  }

  // Counts the intact records from the current position to the end of the stream (chains of
  // valid records, re-scanning after each damaged stretch).
  absl::StatusOr<uint64_t> CountIntactRecords() {
    uint64_t n = 0;
    for (;;) {
      ASSIGN_OR_RETURN(const bool found, SeekIntactRecord());
      if (!found) return n;
      ++n;
      const size_t len = kRecordHeaderSize + GetU32(pending_.data() + pending_pos_);
      pending_pos_ += len;
      pos_ += len;
    }
  }

  // Reads one framed record into type_ and buf_[0, len_), checking length cap and checksum.
  // Records of skippable unknown types are skipped here.
  absl::StatusOr<Got> ReadRecord() {
    for (;;) {
      record_start_ = pos_;
      bad_head_len_ = 0;
      bad_payload_len_ = 0;
      char* hdr = bad_head_;
      ASSIGN_OR_RETURN(const size_t n, ReadFull(hdr, kRecordHeaderSize));
      if (n == 0) return Got::kEof;
      bad_head_len_ = n;
      bad_short_ = false;
      if (n < kRecordHeaderSize) {
        bad_short_ = true;
        bad_ = "the stream ends inside the record header";
        return Got::kBad;
      }
      len_ = GetU32(hdr);
      const uint32_t crc = GetU32(hdr + 4);
      type_ = static_cast<uint8_t>(hdr[8]);
      if (len_ > kMaxRecordPayload) {
        bad_ = absl::StrFormat("record length %u exceeds the %u-byte cap", len_, kMaxRecordPayload);
        return Got::kBad;
      }
      if (buf_.size() < len_) buf_.resize(len_);
      ASSIGN_OR_RETURN(const size_t m, ReadFull(&buf_[0], len_));
      bad_payload_len_ = m;
      if (m < len_) {
        bad_short_ = true;
        bad_ =
            absl::StrFormat("the stream ends %u bytes into the record's %u-byte payload", m, len_);
        return Got::kBad;
      }
      if (RecordCrc(type_, buf_.data(), len_) != crc) {
        bad_ = "checksum mismatch";
        return Got::kBad;
      }
      if (type_ == 0 || (type_ > kRecordTrailer && type_ < kFirstSkippableType)) {
        return Error(absl::StatusCode::kDataLoss,
                     absl::StrFormat("unknown record type %u", static_cast<unsigned>(type_)));
      }
      ++records_;
      if (type_ < kFirstSkippableType) return Got::kRecord;
    }
  }

  // Reads a record that Start() requires, of type `want`.
  absl::Status ReadRequired(uint8_t want, absl::string_view what) {
    ASSIGN_OR_RETURN(const Got got, ReadRecord());
    if (got == Got::kEof) {
      return Error(absl::StatusCode::kDataLoss, absl::StrCat("file ends before ", what));
    }
    if (got == Got::kBad) {
      if (bad_short_) {
        return Error(absl::StatusCode::kDataLoss, absl::StrCat("file ends inside ", what));
      }
      return Error(absl::StatusCode::kDataLoss, absl::StrCat(bad_, " (", what, ")"));
    }
    if (type_ != want) {
      return RecordError(absl::StatusCode::kDataLoss,
                         absl::StrFormat("expected a %s record, found a %s record",
                                         RecordTypeName(want), RecordTypeName(type_)));
    }
    return absl::OkStatus();
  }

  absl::Status Parse(google::protobuf::MessageLite* m) {
    if (!m->ParseFromArray(buf_.data(), static_cast<int>(len_))) {
      return RecordError(absl::StatusCode::kDataLoss,
                         absl::StrCat(RecordTypeName(type_), " record does not parse"));
    }
    return absl::OkStatus();
  }

  // "name: byte B (record R): msg" for the record being read.
  absl::Status Error(absl::StatusCode code, absl::string_view msg) const {
    return absl::Status(
        code, absl::StrFormat("%s: byte %u (record %u): %s", name_, record_start_, records_, msg));
  }
  // The same for the record just read (records_ already counts it).
  absl::Status RecordError(absl::StatusCode code, absl::string_view msg) const {
    return absl::Status(code, absl::StrFormat("%s: byte %u (record %u): %s", name_, record_start_,
                                              records_ - 1, msg));
  }
  absl::Status Fail(absl::Status s) {
    status_ = s;
    return s;
  }

  // Handles a damaged record after the snapshot. Returns true to read on (skip_corrupt found an
  // intact record), false at a torn tail, or the corruption error.
  absl::StatusOr<bool> OnBadRecord();

  std::string name_;
  std::unique_ptr<Input> input_;
  TraceReaderOptions options_;
  TraceHeader header_;
  Snapshot snapshot_;
  TraceTrailer trailer_;
  TraceEnd end_ = TraceEnd::kNoTrailer;
  bool done_ = false;
  absl::Status status_;  // Sticky error from Next().
  std::vector<CorruptRegion> skipped_;

  std::string buf_;  // Payload of the current record; grows, never shrinks.
  uint32_t len_ = 0;
  uint8_t type_ = 0;
  uint64_t pos_ = 0;           // Bytes consumed from the uncompressed stream.
  uint64_t record_start_ = 0;  // Offset of the record being read.
  uint64_t records_ = 0;       // Records read completely.
  uint64_t events_ = 0;
  uint64_t last_seq_ = 0;
  proto::ExitEvent event_proto_;          // Reused for every event.
  std::vector<std::string> spare_bytes_;  // Memory-write bytes kept for reuse (FromProto).

  // The damaged record ReadRecord() returned kBad for: what is wrong, and its bytes read so far
  // (header in bad_head_, payload in buf_).
  std::string bad_;
  bool bad_short_ = false;  // The stream ended inside it.
  char bad_head_[kRecordHeaderSize] = {};
  size_t bad_head_len_ = 0;
  size_t bad_payload_len_ = 0;
  // Bytes read ahead by a resync scan, consumed by ReadFull before the input.
  std::string pending_;
  size_t pending_pos_ = 0;
};

absl::Status TraceReaderImpl::Start() {
  {
    absl::Status s = input_->Init();
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat(name_, ": ", s.message()));
  }
  char prelude[kPreludeSize];
  ASSIGN_OR_RETURN(const size_t n, ReadFull(prelude, sizeof(prelude)));
  if (n < sizeof(prelude) && input_->gzip_truncated()) {
    return absl::DataLossError(absl::StrFormat(
        "%s: byte %u: gzip stream ends inside the %u-byte file header", name_, n, kPreludeSize));
  }
  if (n == 0) return absl::InvalidArgumentError(absl::StrCat(name_, ": empty file, not a trace"));
  if (memcmp(prelude, kTraceMagic, std::min(n, sizeof(kTraceMagic))) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": byte 0: not a trace file (no \"MSRTRACE\" magic)"));
  }
  if (n < sizeof(prelude)) {
    return absl::DataLossError(absl::StrFormat(
        "%s: byte %u: file ends inside the %u-byte file header", name_, n, kPreludeSize));
  }
  const uint16_t major = GetU16(prelude + 8);
  const uint16_t minor = GetU16(prelude + 10);
  // prelude + 12: flags. None are defined in 1.x; a minor version may define advisory ones, so
  // unknown flags are ignored.
  if (major != kTraceFormatMajor) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: byte 8: written by format %u.x; this reader supports %u.x", name_,
                        major, kTraceFormatMajor));
  }

  RETURN_IF_ERROR(ReadRequired(kRecordHeader, "the header record"));
  {
    proto::TraceHeader h;
    RETURN_IF_ERROR(Parse(&h));
    absl::StatusOr<TraceHeader> header = FromProto(h);
    if (!header.ok()) return RecordError(header.status().code(), header.status().message());
    header_ = *std::move(header);
    if (header_.format_major != major || header_.format_minor != minor) {
      return RecordError(absl::StatusCode::kDataLoss,
                         absl::StrFormat("header record says format %u.%u, the file header %u.%u",
                                         header_.format_major, header_.format_minor, major, minor));
    }
  }
  uint64_t page_count = 0;
  RETURN_IF_ERROR(ReadRequired(kRecordSnapshotCore, "the snapshot record"));
  {
    proto::Snapshot core;
    RETURN_IF_ERROR(Parse(&core));
    // Format 1.1: vCPU records of a snapshot split over several records.
    const uint32_t more = core.vcpu_records();
    core.clear_vcpu_records();
    proto::Snapshot part;
    for (uint32_t i = 0; i < more; ++i) {
      RETURN_IF_ERROR(ReadRequired(kRecordSnapshotCore,
                                   absl::StrFormat("snapshot vCPU record %u of %u", i + 1, more)));
      RETURN_IF_ERROR(Parse(&part));
      if (part.vcpu_records() != 0 || part.vm_slots_size() != 0 ||
          part.handler_states_size() != 0 || part.memory_size() != 0 || part.page_count() != 0 ||
          part.pages_size() != 0) {
        return RecordError(absl::StatusCode::kDataLoss,
                           "a snapshot vCPU record holds more than vCPUs");
      }
      for (proto::VcpuState& v : *part.mutable_vcpus()) core.add_vcpus()->Swap(&v);
    }
    absl::StatusOr<uint64_t> pages = SnapshotCoreFromProto(core, &snapshot_);
    if (!pages.ok()) return RecordError(pages.status().code(), pages.status().message());
    page_count = *pages;
  }
  proto::MemoryPage page;
  for (uint64_t i = 0; i < page_count; ++i) {
    RETURN_IF_ERROR(
        ReadRequired(kRecordPage, absl::StrFormat("snapshot page %u of %u", i + 1, page_count)));
    RETURN_IF_ERROR(Parse(&page));
    absl::Status s = PageFromProto(page, &snapshot_.memory);
    if (!s.ok()) return RecordError(s.code(), s.message());
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> TraceReaderImpl::Next(ExitEvent* event) {
  if (!status_.ok()) return status_;
  if (done_) return false;
  absl::StatusOr<Got> got = ReadRecord();
  while (got.ok() && *got == Got::kBad) {
    absl::StatusOr<bool> more = OnBadRecord();
    if (!more.ok()) return Fail(more.status());
    if (!*more) {
      done_ = true;
      end_ = TraceEnd::kTornTail;
      return false;
    }
    got = ReadRecord();
  }
  if (!got.ok()) return Fail(got.status());
  if (*got != Got::kRecord) {
    done_ = true;
    end_ = input_->gzip_truncated() ? TraceEnd::kTornTail : TraceEnd::kNoTrailer;
    return false;
  }
  if (type_ == kRecordEvent) {
    RETURN_IF_ERROR(Fail(Parse(&event_proto_)));
    absl::Status s = FromProto(event_proto_, event, &spare_bytes_);
    if (!s.ok()) {
      return Fail(RecordError(
          s.code(), absl::StrFormat("event seq %u: %s", event_proto_.seq(), s.message())));
    }
    if (events_ > 0 && event->seq <= last_seq_) {
      return Fail(RecordError(
          absl::StatusCode::kDataLoss,
          absl::StrFormat("event seq %u %s previous seq %u", event->seq,
                          event->seq == last_seq_ ? "duplicates the" : "is lower than the",
                          last_seq_)));
    }
    ++events_;
    last_seq_ = event->seq;
    return true;
  }
  if (type_ != kRecordTrailer) {
    return Fail(RecordError(
        absl::StatusCode::kDataLoss,
        absl::StrFormat("unexpected %s record after the snapshot", RecordTypeName(type_))));
  }
  proto::Trailer t;
  RETURN_IF_ERROR(Fail(Parse(&t)));
  absl::StatusOr<TraceTrailer> trailer = FromProto(t);
  if (!trailer.ok()) return Fail(RecordError(trailer.status().code(), trailer.status().message()));
  // After skipped corruption the trailer counts events the reader did not return; skipped()
  // already reports them.
  if (trailer->event_count != events_ && skipped_.empty()) {
    return Fail(RecordError(absl::StatusCode::kDataLoss,
                            absl::StrFormat("trailer says %u events, the trace has %u",
                                            trailer->event_count, events_)));
  }
  trailer_ = *trailer;
  record_start_ = pos_;
  char extra;
  ASSIGN_OR_RETURN(const size_t n, ReadFull(&extra, 1));
  if (n != 0) {
    return Fail(Error(absl::StatusCode::kDataLoss, "data after the trailer"));
  }
  done_ = true;
  // A gzip stream without its end (the 8-byte gzip trailer, or more) was cut: a torn tail even
  // when every record arrived.
  end_ = input_->gzip_truncated() ? TraceEnd::kTornTail : TraceEnd::kComplete;
  return false;
}

absl::StatusOr<bool> TraceReaderImpl::OnBadRecord() {
  const uint64_t bad_offset = record_start_;
  const uint64_t bad_record = records_;
  const std::string what = bad_;
  ASSIGN_OR_RETURN(const bool found, ResyncAfterBadRecord());
  if (!found) return false;  // Nothing intact after it: a torn tail.
  const uint64_t next = pos_;
  if (options_.skip_corrupt) {
    CorruptRegion region;
    region.offset = bad_offset;
    region.record = bad_record;
    region.bytes = next - bad_offset;
    region.message = absl::StrFormat(
        "%s: byte %u (record %u): %s; skipped %u bytes to the next intact record at byte %u", name_,
        bad_offset, bad_record, what, region.bytes, next);
    skipped_.push_back(std::move(region));
    return true;
  }
  ASSIGN_OR_RETURN(const uint64_t intact, CountIntactRecords());
  record_start_ = bad_offset;
  return absl::DataLossError(absl::StrFormat(
      "%s: byte %u (record %u): %s; corrupt, not a torn tail: %u intact record%s follow%s from "
      "byte %u (msrtrace replay --skip-corrupt reads past it)",
      name_, bad_offset, bad_record, what, intact, intact == 1 ? "" : "s", intact == 1 ? "s" : "",
      next));
}

absl::StatusOr<std::unique_ptr<TraceReader>> StartReader(std::string name,
                                                         std::unique_ptr<Input> input,
                                                         TraceReaderOptions options) {
  auto reader = std::make_unique<TraceReaderImpl>(std::move(name), std::move(input), options);
  RETURN_IF_ERROR(reader->Start());
  return std::unique_ptr<TraceReader>(std::move(reader));
}

}  // namespace

absl::StatusOr<std::unique_ptr<TraceWriter>> TraceWriter::CreateInMemory(std::string* out,
                                                                         const TraceHeader& header,
                                                                         const Snapshot& snapshot) {
  {
    absl::Status s = ValidateHeader(header);
    if (s.ok()) s = ValidateSnapshot(snapshot);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("<memory>: ", s.message()));
  }
  out->clear();
  auto writer = std::make_unique<TraceWriterImpl>("<memory>", std::make_unique<StringSink>(out),
                                                  TraceWriterOptions{}, AtomicTarget());
  RETURN_IF_ERROR(writer->Start(header, snapshot));
  return writer;
}

absl::StatusOr<std::unique_ptr<TraceWriter>> TraceWriter::Create(const std::string& path,
                                                                 const TraceHeader& header,
                                                                 const Snapshot& snapshot,
                                                                 TraceWriterOptions options) {
  {
    absl::Status s = ValidateHeader(header);
    if (s.ok()) s = ValidateSnapshot(snapshot);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  AtomicTarget target;
  int fd = -1;
  if (path == "-") {
    fd = dup(1);
    if (fd < 0) return ErrnoError(path, "cannot create", errno);
  } else {
    ASSIGN_OR_RETURN(fd, target.Open(path, options.atomic));
  }
  std::unique_ptr<Sink> sink = std::make_unique<FdSink>(path, fd);
  if (options.gzip || absl::EndsWith(path, ".gz")) {
    absl::StatusOr<std::unique_ptr<Sink>> gz = GzipSink::Wrap(path, std::move(sink));
    if (!gz.ok()) {
      target.Abandon();
      return gz.status();
    }
    sink = *std::move(gz);
  }
  auto writer =
      std::make_unique<TraceWriterImpl>(path, std::move(sink), options, std::move(target));
  RETURN_IF_ERROR(writer->Start(header, snapshot));
  return std::unique_ptr<TraceWriter>(std::move(writer));
}

absl::StatusOr<std::unique_ptr<TraceReader>> TraceReader::Open(const std::string& path,
                                                               TraceReaderOptions options) {
  if (path == "-") return StartReader("<stdin>", Input::FromFd(0, /*owned=*/false), options);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(path, "cannot open", errno);
  return StartReader(path, Input::FromFd(fd, /*owned=*/true), options);
}

absl::StatusOr<std::unique_ptr<TraceReader>> TraceReader::FromBytes(std::string bytes,
                                                                    std::string name,
                                                                    TraceReaderOptions options) {
  return StartReader(std::move(name), Input::FromBytes(std::move(bytes)), options);
}

namespace {
constexpr EnumName<TraceEnd> kTraceEndNames[] = {
    {TraceEnd::kComplete, "complete"},
    {TraceEnd::kNoTrailer, "no-trailer"},
    {TraceEnd::kTornTail, "torn-tail"},
};
}  // namespace

const char* TraceEndName(TraceEnd end) { return NameOf(kTraceEndNames, end, "unknown"); }

absl::optional<TraceEnd> ParseTraceEnd(absl::string_view name) {
  return ValueOf(kTraceEndNames, name);
}

}  // namespace msrtrace
