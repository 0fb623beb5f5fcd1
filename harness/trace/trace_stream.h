// The byte streams under a trace file (harness/trace/trace_file.cc): where the writer's bytes go
// (a file descriptor, a string, or gzip compression in front of either) and where the reader's
// come from (a file descriptor or bytes in memory, inflated when they start with the gzip magic).
// Gzip goes through one zlib API in both directions: z_stream deflate and inflate with gzip
// framing (window bits 16 + 15), so the writer's flush points, the reader's detection of a cut
// stream and concatenated members are handled by the same library calls.
//
// Internal to the trace library; not installed.
#ifndef MSRTRACE_HARNESS_TRACE_STREAM_H_
#define MSRTRACE_HARNESS_TRACE_STREAM_H_

#include <errno.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "harness/core/status_macros.h"
#include "harness/trace/atomic_file.h"

namespace msrtrace {

inline constexpr size_t kIoBufferSize = 64 << 10;
// zlib window bits for gzip framing (16 + MAX_WBITS) in both directions.
inline constexpr int kGzipWindowBits = 16 + MAX_WBITS;

// "path: what: strerror(err)" with the status code errno maps to.
absl::Status ErrnoError(absl::string_view path, absl::string_view what, int err);

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

// Gzip-compresses into another sink (deflate with gzip framing). Flush() ends the deflate block
// (Z_SYNC_FLUSH) so that a reader sees every byte written so far; Close() writes the gzip
// trailer and closes the sink under it.
class GzipSink : public Sink {
 public:
  // Errors (kResourceExhausted): zlib cannot start.
  static absl::StatusOr<std::unique_ptr<Sink>> Wrap(std::string path, std::unique_ptr<Sink> out);
  ~GzipSink() override;
  absl::Status Write(const char* data, size_t len) override;
  absl::Status Flush() override;
  absl::Status Close() override;

 private:
  GzipSink(std::string path, std::unique_ptr<Sink> out)
      : path_(std::move(path)), out_(std::move(out)) {}
  // Deflates the pending input with `flush`, handing every full output buffer to out_.
  absl::Status Deflate(int flush);

  std::string path_;
  std::unique_ptr<Sink> out_;
  z_stream zs_{};
  bool init_ = false;
  bool closed_ = false;
  std::unique_ptr<char[]> buf_;
};

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
      if (inflateInit2(&zs_, kGzipWindowBits) != Z_OK) {
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

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_TRACE_STREAM_H_
