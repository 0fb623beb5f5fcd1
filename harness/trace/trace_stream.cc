#include "harness/trace/trace_stream.h"

#include <errno.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "harness/core/status_macros.h"

namespace msrtrace {

absl::Status ErrnoError(absl::string_view path, absl::string_view what, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(path, ": ", what, ": ", strerror(err)));
}

absl::StatusOr<std::unique_ptr<Sink>> GzipSink::Wrap(std::string path, std::unique_ptr<Sink> out) {
  std::unique_ptr<GzipSink> s(new GzipSink(std::move(path), std::move(out)));
  if (deflateInit2(&s->zs_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kGzipWindowBits, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    (void)s->out_->Close();
    return absl::ResourceExhaustedError(absl::StrCat(s->path_, ": cannot start gzip"));
  }
  s->init_ = true;
  s->buf_.reset(new char[kIoBufferSize]);
  return std::unique_ptr<Sink>(std::move(s));
}

GzipSink::~GzipSink() {
  if (init_) deflateEnd(&zs_);
}

absl::Status GzipSink::Deflate(int flush) {
  for (;;) {
    zs_.next_out = reinterpret_cast<Bytef*>(buf_.get());
    zs_.avail_out = static_cast<uInt>(kIoBufferSize);
    const int r = deflate(&zs_, flush);
    if (r == Z_STREAM_ERROR) {
      return absl::InternalError(absl::StrCat(path_, ": gzip compression failed"));
    }
    const size_t produced = kIoBufferSize - zs_.avail_out;
    if (produced > 0) RETURN_IF_ERROR(out_->Write(buf_.get(), produced));
    // Done when deflate left output room: all input consumed and, for a flush, all flushed.
    if (zs_.avail_out != 0 && zs_.avail_in == 0) return absl::OkStatus();
    if (r == Z_STREAM_END) return absl::OkStatus();
  }
}

absl::Status GzipSink::Write(const char* data, size_t len) {
  while (len > 0) {
    const size_t chunk = std::min<size_t>(len, 1u << 30);
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
    zs_.avail_in = static_cast<uInt>(chunk);
    RETURN_IF_ERROR(Deflate(Z_NO_FLUSH));
    data += chunk;
    len -= chunk;
  }
  return absl::OkStatus();
}

absl::Status GzipSink::Flush() {
  zs_.avail_in = 0;
  RETURN_IF_ERROR(Deflate(Z_SYNC_FLUSH));
  return out_->Flush();
}

absl::Status GzipSink::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  zs_.avail_in = 0;
  absl::Status s = Deflate(Z_FINISH);
  absl::Status c = out_->Close();
  return s.ok() ? c : s;
}

}  // namespace msrtrace
