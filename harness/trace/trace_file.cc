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
#include <zlib.h>

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
#include "harness/core/status_macros.h"
#include "harness/trace/atomic_file.h"
#include "harness/trace/trace_proto.h"

namespace msrtrace {
namespace {

constexpr char kMagic[8] = {'M', 'S', 'R', 'T', 'R', 'A', 'C', 'E'};
constexpr size_t kPreludeSize = 16;
constexpr size_t kRecordHeaderSize = 9;
// Largest record payload either side accepts. Events are small; the snapshot core (vCPU
// registers and named slots, handler states) is the largest record. A reader rejects a larger
// length before allocating anything.
constexpr uint32_t kMaxRecordPayload = 4u << 20;
// A snapshot core above the cap is split into vCPU records of at most this many bytes (room for
// the fields around the vCPUs in the first record).
constexpr size_t kSnapshotPartBudget = kMaxRecordPayload - (64 << 10);
// Format 1.1 (proto Snapshot.vcpu_records): written only by traces whose snapshot is split, so
// every other trace stays 1.0, byte for byte. A 1.0 reader stops at the second snapshot record
// ("expected a page record, found a snapshot record").
constexpr uint32_t kSplitSnapshotMinor = 1;
// Largest text-format or JSON trace ReadTraceText accepts.
constexpr uint64_t kMaxTextInput = 256ull << 20;
constexpr size_t kIoBufferSize = 64 << 10;

enum RecordType : uint8_t {
  kRecordHeader = 1,
  kRecordSnapshotCore = 2,
  kRecordPage = 3,
  kRecordEvent = 4,
  kRecordTrailer = 5,
};
// Types from here up that a reader does not know are skipped (optional metadata a newer minor
// version may add); unknown types below it are an error.
constexpr uint8_t kFirstSkippableType = 64;

const char* RecordTypeName(uint8_t type) {
  switch (type) {
    case kRecordHeader:
      return "header";
    case kRecordSnapshotCore:
      return "snapshot";
    case kRecordPage:
      return "page";
    case kRecordEvent:
      return "event";
    case kRecordTrailer:
      return "trailer";
    default:
      return "unknown";
  }
}

// crc32 (zlib's polynomial) over the type byte and the payload, masked as leveldb masks its
// CRCs: a CRC stored next to data that itself contains CRCs is otherwise prone to collide.
uint32_t RecordCrc(uint8_t type, const char* payload, size_t len) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, &type, 1);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(payload), static_cast<uInt>(len));
  const uint32_t c = static_cast<uint32_t>(crc);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

void PutU16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v);
  p[1] = static_cast<char>(v >> 8);
}
void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint16_t GetU16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | (static_cast<uint8_t>(p[1]) << 8));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

absl::Status ErrnoError(absl::string_view path, absl::string_view what, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(path, ": ", what, ": ", strerror(err)));
}

// ----------------------------------------------------------------------------------------------
// Writing

// Where the writer's bytes go. Errors name the path.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual absl::Status Write(const char* data, size_t len) = 0;
  // Hands everything written so far to the OS (no fsync).
  virtual absl::Status Flush() = 0;
  // Flushes, fsyncs when the file is a regular file, and closes.
  virtual absl::Status Close() = 0;
};

// Appends to a caller's string (TraceWriter::CreateInMemory).
class StringSink : public Sink {
 public:
  explicit StringSink(std::string* out) : out_(out) {}
  absl::Status Write(const char* data, size_t len) override {
    out_->append(data, len);
    return absl::OkStatus();
  }
  absl::Status Flush() override { return absl::OkStatus(); }
  absl::Status Close() override { return absl::OkStatus(); }

 private:
  std::string* out_;
};

class FdSink : public Sink {
 public:
  FdSink(std::string path, int fd) : path_(std::move(path)), fd_(fd) {
    buf_.reserve(kIoBufferSize);
  }
  ~FdSink() override {
    if (fd_ >= 0) close(fd_);
  }
  absl::Status Write(const char* data, size_t len) override {
    if (buf_.size() + len > kIoBufferSize) RETURN_IF_ERROR(Flush());
    if (len >= kIoBufferSize) return WriteAll(data, len);
    buf_.append(data, len);
    return absl::OkStatus();
  }
  absl::Status Flush() override {
    absl::Status s = WriteAll(buf_.data(), buf_.size());
    buf_.clear();
    return s;
  }
  absl::Status Close() override {
    if (fd_ < 0) return absl::OkStatus();
    absl::Status s = Flush();
    if (s.ok()) s = SyncIfRegular(fd_, path_);
    if (close(fd_) != 0 && s.ok()) s = ErrnoError(path_, "close failed", errno);
    fd_ = -1;
    return s;
  }

 private:
  // Loops over short writes; an error (ENOSPC, EFBIG, EIO...) names the path and the reason.
  absl::Status WriteAll(const char* data, size_t len) {
    while (len > 0) {
      const ssize_t n = write(fd_, data, len);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(path_, "write failed", errno);
      }
      data += n;
      len -= static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }

  std::string path_;
  int fd_;
  std::string buf_;
};

// zlib writes through its own descriptor (a dup of fd_), so fd_ stays open for the fsync after
// gzclose() has written the gzip trailer.
class GzSink : public Sink {
 public:
  GzSink(std::string path, gzFile gz, int fd) : path_(std::move(path)), gz_(gz), fd_(fd) {}
  ~GzSink() override {
    if (gz_ != nullptr) gzclose(gz_);
    if (fd_ >= 0) close(fd_);
  }
  absl::Status Write(const char* data, size_t len) override {
    while (len > 0) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(len, 1u << 30));
      if (gzwrite(gz_, data, chunk) != static_cast<int>(chunk)) return GzError("write failed");
      data += chunk;
      len -= chunk;
    }
    return absl::OkStatus();
  }
  absl::Status Flush() override {
    // Z_SYNC_FLUSH ends the deflate block so that a reader sees every byte written so far.
    if (gzflush(gz_, Z_SYNC_FLUSH) != Z_OK) return GzError("flush failed");
    return absl::OkStatus();
  }
  absl::Status Close() override {
    absl::Status s;
    if (gz_ != nullptr) {
      errno = 0;
      const int r = gzclose(gz_);
      gz_ = nullptr;
      if (r == Z_ERRNO) {
        s = ErrnoError(path_, "write failed", errno != 0 ? errno : EIO);
      } else if (r != Z_OK) {
        s = absl::DataLossError(absl::StrCat(path_, ": gzip close failed"));
      }
    }
    if (fd_ >= 0) {
      if (s.ok()) s = SyncIfRegular(fd_, path_);
      if (close(fd_) != 0 && s.ok()) s = ErrnoError(path_, "close failed", errno);
      fd_ = -1;
    }
    return s;
  }

 private:
  absl::Status GzError(absl::string_view what) {
    int errnum = 0;
    const char* msg = gzerror(gz_, &errnum);
    if (errnum == Z_ERRNO) return ErrnoError(path_, what, errno);
    return absl::DataLossError(absl::StrCat(path_, ": gzip ", what, ": ", msg));
  }

  std::string path_;
  gzFile gz_;
  int fd_;
};

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
    // The snapshot core, split over several records when it exceeds the record cap.
    std::vector<proto::Snapshot> parts(1);
    SnapshotCoreToProto(snapshot, &parts[0]);
    if (parts[0].ByteSizeLong() > kMaxRecordPayload) RETURN_IF_ERROR(SplitVcpus(&parts));
    const uint32_t minor = parts.size() > 1 ? kSplitSnapshotMinor : kTraceFormatMinor;

    char prelude[kPreludeSize];
    memcpy(prelude, kMagic, sizeof(kMagic));
    PutU16(prelude + 8, static_cast<uint16_t>(kTraceFormatMajor));
    PutU16(prelude + 10, static_cast<uint16_t>(minor));
    PutU32(prelude + 12, 0);  // Flags: none defined in 1.x.
    RETURN_IF_ERROR(sink_->Write(prelude, sizeof(prelude)));

    proto::TraceHeader h;
    ToProto(header, &h);
    h.set_format_major(kTraceFormatMajor);  // The version of the format actually written.
    h.set_format_minor(minor);
    RETURN_IF_ERROR(WriteRecord(kRecordHeader, h));
    for (const proto::Snapshot& part : parts) {
      RETURN_IF_ERROR(WriteRecord(kRecordSnapshotCore, part));
    }
    parts.clear();
    proto::MemoryPage page;
    for (uint64_t gpa : snapshot.memory.PageAddresses()) {
      PageToProto(gpa, snapshot.memory.Page(gpa), &page);
      RETURN_IF_ERROR(WriteRecord(kRecordPage, page));
    }
    // A reader can open the trace as soon as Create() returns.
    return sink_->Flush();
  }

  absl::Status Append(const ExitEvent& event) override {
    RETURN_IF_ERROR(CheckOpen());
    if (events_ > 0 && event.seq <= last_seq_) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: event seq %u is not greater than the previous seq %u", path_, event.seq, last_seq_));
    }
    absl::Status valid = ValidateEvent(event);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: event seq %u: %s", path_, event.seq, valid.message()));
    }
    ToProto(event, &event_proto_);
    RETURN_IF_ERROR(Sticky(WriteRecord(kRecordEvent, event_proto_)));
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
    proto::Trailer t;
    ToProto(TraceTrailer{events_, final_state_digest}, &t);
    absl::Status s = WriteRecord(kRecordTrailer, t);
    absl::Status c = sink_->Close();
    if (s.ok()) s = c;
    if (s.ok()) return target_.Commit();
    target_.Abandon();
    return s;
  }

  uint64_t events_written() const override { return events_; }

 private:
  // Moves the vCPUs of (*parts)[0] into as many vCPU-only records as needed (format 1.1), each
  // under kSnapshotPartBudget bytes; the first record keeps everything else.
  absl::Status SplitVcpus(std::vector<proto::Snapshot>* parts) {
    proto::Snapshot& core = (*parts)[0];
    google::protobuf::RepeatedPtrField<proto::VcpuState> vcpus;
    vcpus.Swap(core.mutable_vcpus());
    const size_t rest = core.ByteSizeLong();
    if (rest + 16 > kSnapshotPartBudget) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: the snapshot's VM-wide slots and handler states take %u bytes, more than the "
          "%u-byte record cap allows",
          path_, rest, kMaxRecordPayload));
    }
    proto::Snapshot* part = &core;
    size_t size = rest;
    for (int i = 0; i < vcpus.size(); ++i) {
      const size_t n = vcpus.Get(i).ByteSizeLong() + 8;  // Tag and length prefix.
      if (n > kSnapshotPartBudget) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: vCPU %u's state takes %u bytes, more than the %u-byte record cap",
                            path_, vcpus.Get(i).id(), n, kMaxRecordPayload));
      }
      if (size + n > kSnapshotPartBudget) {
        parts->emplace_back();
        part = &parts->back();
        size = 0;
      }
      *part->add_vcpus() = vcpus.Get(i);
      size += n;
    }
    (*parts)[0].set_vcpu_records(static_cast<uint32_t>(parts->size() - 1));
    return absl::OkStatus();
  }

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

  absl::Status WriteRecord(uint8_t type, const google::protobuf::MessageLite& m) {
    const size_t len = m.ByteSizeLong();
    if (len > kMaxRecordPayload) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: %s record of %u bytes exceeds the %u-byte record cap", path_,
                          RecordTypeName(type), len, kMaxRecordPayload));
    }
    record_.resize(kRecordHeaderSize + len);
    char* p = &record_[0];
    m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(p + kRecordHeaderSize));
    PutU32(p, static_cast<uint32_t>(len));
    PutU32(p + 4, RecordCrc(type, p + kRecordHeaderSize, len));
    p[8] = static_cast<char>(type);
    return sink_->Write(p, record_.size());
  }

  std::string path_;
  std::unique_ptr<Sink> sink_;
  TraceWriterOptions options_;
  AtomicTarget target_;
  proto::ExitEvent event_proto_;  // Reused for every event.
  std::string record_;            // Reused record buffer.
  uint64_t events_ = 0;
  uint64_t last_seq_ = 0;
  bool closed_ = false;
  absl::Status failed_;
};

// ----------------------------------------------------------------------------------------------
// Reading

// The uncompressed byte stream of a trace: a file descriptor or bytes in memory, inflated when
// it starts with the gzip magic (1f 8b). Reads go through one fixed buffer.
class Input {
 public:
  static std::unique_ptr<Input> FromFd(int fd, bool owned) {
    auto in = std::unique_ptr<Input>(new Input);
    in->fd_ = fd;
    in->owned_ = owned;
    in->buf_.reset(new char[kIoBufferSize]);
    return in;
  }
  static std::unique_ptr<Input> FromBytes(std::string bytes) {
    auto in = std::unique_ptr<Input>(new Input);
    in->bytes_ = std::move(bytes);
    in->raw_ = in->bytes_.data();
    in->raw_len_ = in->bytes_.size();
    in->raw_eof_ = true;  // Everything is already in the window.
    return in;
  }
  ~Input() {
    if (zs_init_) inflateEnd(&zs_);
    if (owned_ && fd_ >= 0) close(fd_);
  }

  // Detects gzip. Call once before Read().
  absl::Status Init() {
    while (raw_len_ < 2 && !raw_eof_) RETURN_IF_ERROR(ReadMore());
    if (raw_len_ >= 2 && static_cast<uint8_t>(raw_[0]) == 0x1f &&
        static_cast<uint8_t>(raw_[1]) == 0x8b) {
      gzip_ = true;
      if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) {
        return absl::ResourceExhaustedError("cannot initialize zlib");
      }
      zs_init_ = true;
      zs_.avail_in = 0;
    }
    return absl::OkStatus();
  }

  // Reads up to `n` bytes; returns 0 only at the end of the stream. Errors: read failure,
  // corrupt gzip data (message without location; the caller adds it).
  absl::StatusOr<size_t> Read(char* dst, size_t n) {
    if (!gzip_) {
      if (raw_len_ == 0) {
        if (raw_eof_) return 0;
        RETURN_IF_ERROR(ReadMore());
        if (raw_len_ == 0) return 0;
      }
      const size_t k = std::min(n, raw_len_);
      memcpy(dst, raw_, k);
      raw_ += k;
      raw_len_ -= k;
      return k;
    }
    if (gz_done_) return 0;
    zs_.next_out = reinterpret_cast<Bytef*>(dst);
    zs_.avail_out = static_cast<uInt>(n);
    while (zs_.avail_out == n) {
      if (zs_.avail_in == 0) {
        if (raw_len_ == 0 && !raw_eof_) RETURN_IF_ERROR(ReadMore());
        if (raw_len_ == 0) {
          // The compressed stream stops inside a gzip member: a torn tail.
          gz_done_ = true;
          gz_truncated_ = true;
          break;
        }
        zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw_));
        zs_.avail_in = static_cast<uInt>(raw_len_);
        raw_ += raw_len_;
        raw_len_ = 0;
      }
      const int r = inflate(&zs_, Z_NO_FLUSH);
      if (r == Z_STREAM_END) {
        // End of one gzip member; another may follow (concatenated gzip files).
        if (zs_.avail_in == 0 && raw_len_ == 0 && !raw_eof_) RETURN_IF_ERROR(ReadMore());
        if (zs_.avail_in == 0 && raw_len_ == 0) {
          gz_done_ = true;
          break;
        }
        inflateReset(&zs_);
      } else if (r == Z_BUF_ERROR && zs_.avail_in == 0) {
        continue;  // Needs more input.
      } else if (r != Z_OK) {
        return absl::DataLossError(
            absl::StrCat("corrupt gzip data: ", zs_.msg != nullptr ? zs_.msg : "unknown error"));
      }
    }
    return n - zs_.avail_out;
  }

  bool gzip() const { return gzip_; }
  // The gzip stream ended without its end marker.
  bool gzip_truncated() const { return gz_truncated_; }

 private:
  Input() = default;

  // Appends more raw bytes to the window (moving what is left to the front of the buffer).
  absl::Status ReadMore() {
    if (raw_eof_) return absl::OkStatus();
    if (raw_len_ > 0 && raw_ != buf_.get()) memmove(buf_.get(), raw_, raw_len_);
    raw_ = buf_.get();
    for (;;) {
      const ssize_t n = read(fd_, buf_.get() + raw_len_, kIoBufferSize - raw_len_);
      if (n < 0) {
        if (errno == EINTR) continue;
        return absl::Status(absl::ErrnoToStatusCode(errno),
                            absl::StrCat("read failed: ", strerror(errno)));
      }
      if (n == 0) raw_eof_ = true;
      raw_len_ += static_cast<size_t>(n);
      return absl::OkStatus();
    }
  }

  int fd_ = -1;
  bool owned_ = false;
  std::string bytes_;
  std::unique_ptr<char[]> buf_;
  const char* raw_ = nullptr;  // Window of raw (possibly compressed) bytes not yet consumed.
  size_t raw_len_ = 0;
  bool raw_eof_ = false;
  bool gzip_ = false;
  z_stream zs_{};
  bool zs_init_ = false;
  bool gz_done_ = false;
  bool gz_truncated_ = false;
};

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
  proto::ExitEvent event_proto_;  // Reused for every event.

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
  if (memcmp(prelude, kMagic, std::min(n, sizeof(kMagic))) != 0) {
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
    absl::Status s = FromProto(event_proto_, event);
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

// ----------------------------------------------------------------------------------------------
// Text forms

const char* EndName(TraceEnd end) {
  switch (end) {
    case TraceEnd::kComplete:
      return "complete";
    case TraceEnd::kNoTrailer:
      return "no trailer (the writer did not finish)";
    case TraceEnd::kTornTail:
      return "torn tail (the last record is cut off)";
  }
  return "?";
}

// Prints 64-bit values (registers, addresses, MSR values, digests) in hex, which the text
// parser reads back; counters registered with DecimalPrinter stay decimal.
class HexPrinter : public google::protobuf::TextFormat::FastFieldValuePrinter {
 public:
  void PrintUInt64(uint64_t v, google::protobuf::TextFormat::BaseTextGenerator* g) const override {
    g->PrintString(absl::StrFormat("0x%x", v));
  }
};
class DecimalPrinter : public google::protobuf::TextFormat::FastFieldValuePrinter {};
// Bit masks among the 32-bit fields.
class HexU32Printer : public google::protobuf::TextFormat::FastFieldValuePrinter {
 public:
  void PrintUInt32(uint32_t v, google::protobuf::TextFormat::BaseTextGenerator* g) const override {
    g->PrintString(absl::StrFormat("0x%x", v));
  }
};

void SetUpPrinter(google::protobuf::TextFormat::Printer* printer) {
  printer->SetInitialIndentLevel(1);
  printer->SetUseShortRepeatedPrimitives(true);  // gpr: [0x0, 0x1, ...]
  printer->SetDefaultFieldValuePrinter(new HexPrinter);
  printer->RegisterFieldValuePrinter(proto::ExitEvent::descriptor()->FindFieldByName("seq"),
                                     new DecimalPrinter);
  printer->RegisterFieldValuePrinter(proto::Trailer::descriptor()->FindFieldByName("event_count"),
                                     new DecimalPrinter);
  printer->RegisterFieldValuePrinter(proto::ExitInfo::descriptor()->FindFieldByName("host_wall_ns"),
                                     new DecimalPrinter);
  printer->RegisterFieldValuePrinter(proto::ExitEvent::descriptor()->FindFieldByName("known"),
                                     new HexU32Printer);
  printer->RegisterFieldValuePrinter(
      proto::ExitEvent::descriptor()->FindFieldByName("interruptibility"), new HexU32Printer);
  printer->RegisterFieldValuePrinter(
      proto::Registers::descriptor()->FindFieldByName("interruptibility"), new HexU32Printer);
}

// Writes to stdout ("-", checked writes) or atomically to a file (AtomicTarget: a failed
// conversion leaves an existing file untouched).
class TextOut {
 public:
  static absl::StatusOr<TextOut> Open(const std::string& path) {
    if (path == "-") return TextOut("<stdout>", 1, AtomicTarget());
    AtomicTarget target;
    ASSIGN_OR_RETURN(const int fd, target.Open(path));
    return TextOut(path, fd, std::move(target));
  }
  TextOut(TextOut&& o) noexcept
      : path_(std::move(o.path_)),
        fd_(o.fd_),
        target_(std::move(o.target_)),
        buf_(std::move(o.buf_)) {
    o.fd_ = -1;
  }
  ~TextOut() {
    if (fd_ > 1) close(fd_);
  }
  absl::Status Write(absl::string_view s) {
    buf_.append(s.data(), s.size());
    if (buf_.size() >= kIoBufferSize) return Drain();
    return absl::OkStatus();
  }
  absl::Status Close() {
    absl::Status s = Drain();
    if (fd_ > 1) {
      if (s.ok()) s = SyncIfRegular(fd_, path_);
      if (close(fd_) != 0 && s.ok()) s = ErrnoError(path_, "close failed", errno);
      fd_ = -1;
      if (s.ok()) s = target_.Commit();
    }
    return s;
  }

 private:
  TextOut(std::string path, int fd, AtomicTarget target)
      : path_(std::move(path)), fd_(fd), target_(std::move(target)) {}
  absl::Status Drain() {
    absl::Status s = WriteFully(fd_, buf_, path_);
    buf_.clear();
    return s;
  }
  std::string path_;
  int fd_;
  AtomicTarget target_;
  std::string buf_;
};

// Reads a whole file or stdin ("-"), refusing more than kMaxTextInput bytes.
absl::StatusOr<std::string> ReadTextInput(const std::string& path) {
  const int fd = path == "-" ? 0 : open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(path, "cannot open", errno);
  struct FdCloser {
    int fd;
    ~FdCloser() {
      if (fd > 0) close(fd);
    }
  } closer{fd};
  const std::string too_large =
      absl::StrFormat("%s: text trace is larger than the %u MiB limit", path, kMaxTextInput >> 20);
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<uint64_t>(st.st_size) > kMaxTextInput) {
    return absl::InvalidArgumentError(too_large);
  }
  std::string text;
  char chunk[kIoBufferSize];
  for (;;) {
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(path, "read failed", errno);
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > kMaxTextInput) {
      return absl::InvalidArgumentError(too_large);
    }
    text.append(chunk, static_cast<size_t>(n));
  }
  return text;
}

// Keeps the first text-format parse error as "path:line:column: message".
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  explicit FirstError(const std::string& path) : path_(path) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty()) {
      error_ = absl::StrFormat("%s:%d:%d: %s", path_, line + 1, column + 1, message);
    }
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
  const std::string& error() const { return error_; }

 private:
  const std::string& path_;
  std::string error_;
};

// Protobuf's JSON parser reports "message\n<input excerpt>\n<caret line>" without a line
// number; this keeps the message and the excerpt on one line.
std::string OneLine(absl::string_view message) {
  std::vector<absl::string_view> lines = absl::StrSplit(message, '\n');
  std::string out(lines.empty() ? message : lines[0]);
  std::string near;
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::string_view l = absl::StripAsciiWhitespace(lines[i]);
    if (l.empty() || l == "^") continue;
    if (!near.empty()) near += ' ';
    near.append(l.data(), l.size());
  }
  if (!near.empty()) absl::StrAppend(&out, " (near: ", near, ")");
  return out;
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
  std::unique_ptr<Sink> sink;
  if (options.gzip || absl::EndsWith(path, ".gz")) {
    const int zfd = dup(fd);
    gzFile gz = zfd < 0 ? nullptr : gzdopen(zfd, "wb");
    if (gz == nullptr) {
      if (zfd >= 0) close(zfd);
      close(fd);
      target.Abandon();
      return absl::ResourceExhaustedError(absl::StrCat(path, ": cannot start gzip"));
    }
    gzbuffer(gz, kIoBufferSize);
    sink = std::make_unique<GzSink>(path, gz, fd);
  } else {
    sink = std::make_unique<FdSink>(path, fd);
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

// Moves the EventField bits of `known` that have a name into `known_fields` (FIELD_ALL when all
// are set); unnamed bits stay in `known`.
void NameKnownFields(proto::ExitEvent* pe) {
  pe->clear_known_fields();
  const uint32_t known = pe->known();
  if ((known & kFieldAll) == kFieldAll) {
    pe->add_known_fields(proto::FIELD_ALL);
  } else {
    for (uint32_t bit = 1; bit < kFieldAll; bit <<= 1) {
      if (known & bit) pe->add_known_fields(static_cast<proto::EventFieldName>(bit));
    }
  }
  pe->set_known(known & ~static_cast<uint32_t>(kFieldAll));
}

}  // namespace

absl::Status WriteTraceText(const std::string& in_path, const std::string& out_path,
                            TraceTextFormat format) {
  ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> reader, TraceReader::Open(in_path));
  ASSIGN_OR_RETURN(TextOut out, TextOut::Open(out_path));
  const bool json = format == TraceTextFormat::kJson;
  google::protobuf::TextFormat::Printer printer;
  SetUpPrinter(&printer);
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.preserve_proto_field_names = true;
  std::string piece;
  // Prints one field of the Trace message; `first` is the first field printed.
  auto emit = [&](absl::string_view field, const google::protobuf::Message& m,
                  absl::string_view json_prefix) -> absl::Status {
    piece.clear();
    if (json) {
      const auto s = google::protobuf::util::MessageToJsonString(m, &piece, json_options);
      if (!s.ok()) return absl::InternalError(absl::StrCat(out_path, ": ", s.ToString()));
      RETURN_IF_ERROR(out.Write(json_prefix));
      return out.Write(piece);
    }
    if (!printer.PrintToString(m, &piece)) {
      return absl::InternalError(absl::StrCat(out_path, ": cannot print ", field));
    }
    RETURN_IF_ERROR(out.Write(absl::StrCat(field, " {\n")));
    RETURN_IF_ERROR(out.Write(piece));
    return out.Write("}\n");
  };

  if (!json) {
    RETURN_IF_ERROR(out.Write(
        absl::StrFormat("# proto-file: proto/trace.proto\n# proto-message: msrtrace.proto.Trace\n"
                        "# Converted from %s by msrtrace.\n",
                        in_path)));
  }
  {
    proto::TraceHeader h;
    ToProto(reader->header(), &h);
    RETURN_IF_ERROR(emit("header", h, "{\"header\": "));
  }
  {
    proto::Snapshot s;
    ToProto(reader->snapshot(), &s);
    s.clear_page_count();
    RETURN_IF_ERROR(emit("snapshot", s, ",\n \"snapshot\": "));
  }
  ExitEvent event;
  proto::ExitEvent pe;
  uint64_t n = 0;
  for (;;) {
    ASSIGN_OR_RETURN(const bool more, reader->Next(&event));
    if (!more) break;
    ToProto(event, &pe);
    NameKnownFields(&pe);
    RETURN_IF_ERROR(emit("events", pe, n == 0 ? ",\n \"events\": [\n  " : ",\n  "));
    ++n;
  }
  if (json && n > 0) RETURN_IF_ERROR(out.Write("\n ]"));
  if (reader->end() == TraceEnd::kComplete) {
    proto::Trailer t;
    ToProto(reader->trailer(), &t);
    RETURN_IF_ERROR(emit("trailer", t, ",\n \"trailer\": "));
  }
  if (json) {
    RETURN_IF_ERROR(out.Write("}\n"));
  } else {
    RETURN_IF_ERROR(out.Write(absl::StrCat("# End: ", EndName(reader->end()), ".\n")));
  }
  return out.Close();
}

absl::Status ReadTraceText(const std::string& in_path, const std::string& out_path) {
  ASSIGN_OR_RETURN(const std::string text, ReadTextInput(in_path));
  proto::Trace trace;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    const auto s = google::protobuf::util::JsonStringToMessage(text, &trace);
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(in_path, ": invalid JSON trace: ", OneLine(s.message().ToString())));
    }
  } else {
    google::protobuf::TextFormat::Parser parser;
    FirstError errors(in_path);
    parser.RecordErrorsTo(&errors);
    if (!parser.ParseFromString(text, &trace)) {
      return absl::InvalidArgumentError(
          errors.error().empty() ? absl::StrCat(in_path, ": invalid text trace") : errors.error());
    }
  }

  // Validate everything before creating the output.
  if (!trace.has_header()) return absl::InvalidArgumentError(absl::StrCat(in_path, ": no header"));
  absl::StatusOr<TraceHeader> header = FromProto(trace.header());
  if (!header.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(in_path, ": ", header.status().message()));
  }
  absl::StatusOr<Snapshot> snapshot = FromProto(trace.snapshot());
  if (!snapshot.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(in_path, ": ", snapshot.status().message()));
  }
  ExitEvent event;
  for (int i = 0; i < trace.events_size(); ++i) {
    absl::Status s = FromProto(trace.events(i), &event);
    if (s.ok() && i > 0 && event.seq <= trace.events(i - 1).seq()) {
      s = absl::InvalidArgumentError(absl::StrFormat(
          "seq %u is not greater than the previous seq %u", event.seq, trace.events(i - 1).seq()));
    }
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: events[%d] (seq %u): %s", in_path, i,
                                                        trace.events(i).seq(), s.message()));
    }
  }
  uint64_t digest = 0;
  if (trace.has_trailer()) {
    if (trace.trailer().event_count() != static_cast<uint64_t>(trace.events_size())) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: trailer.event_count is %u but the trace has %d events", in_path,
                          trace.trailer().event_count(), trace.events_size()));
    }
    digest = trace.trailer().final_state_digest();
  }

  ASSIGN_OR_RETURN(std::unique_ptr<TraceWriter> writer,
                   TraceWriter::Create(out_path, *header, *snapshot));
  for (const proto::ExitEvent& pe : trace.events()) {
    RETURN_IF_ERROR(FromProto(pe, &event));
    RETURN_IF_ERROR(writer->Append(event));
  }
  return writer->Close(digest);
}

}  // namespace msrtrace
