// Reading and writing trace files. The on-disk format (magic, version, framed checksummed
// records, optional gzip) is specified in docs/trace-format.md; the framing is
// harness/trace/trace_framing.h, the text forms harness/trace/trace_text.h, the schema
// proto/trace.proto.
//
// Both sides stream: the writer appends records and never holds more than one; the reader
// yields one event at a time from a reused buffer, so traces of any size use constant memory.
#ifndef MSRTRACE_HARNESS_TRACE_FILE_H_
#define MSRTRACE_HARNESS_TRACE_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "harness/core/snapshot.h"
#include "harness/trace/trace_text.h"  // The text forms (WriteTraceText, ReadTraceText).
#include "harness/trace/trace_types.h"

namespace msrtrace {

struct TraceWriterOptions {
  bool gzip = false;         // Also implied by a path ending in ".gz".
  uint32_t flush_every = 0;  // Hand the buffer to the OS (write(2), no fsync) every N events
                             // (0 = only when the 64 KiB buffer fills, on Flush and on Close).
  // Atomic replacement (the default): the trace is written to a temporary file beside `path`
  // ("<path>.tmp-XXXXXX") and only Close() makes it `path` (fsync, rename, fsync of the
  // directory). A failed writer (destroyed without a successful Close) removes its temporary
  // file; a killed one leaves it, with every flushed record, and `path` keeps its old content.
  // false: write `path` in place (truncating it first), readable while it is being written.
  // Ignored for "-" (stdout).
  bool atomic = true;
};

// Appends a trace. Not thread-safe.
class TraceWriter {
 public:
  // Creates `path` (truncating) and writes the magic, header and snapshot.
  static absl::StatusOr<std::unique_ptr<TraceWriter>> Create(const std::string& path,
                                                             const TraceHeader& header,
                                                             const Snapshot& snapshot,
                                                             TraceWriterOptions options = {});
  // The same into `*out` (cleared first; uncompressed), for fuzzers: no file, no system call.
  // `*out` must outlive the writer.
  static absl::StatusOr<std::unique_ptr<TraceWriter>> CreateInMemory(std::string* out,
                                                                     const TraceHeader& header,
                                                                     const Snapshot& snapshot);
  virtual ~TraceWriter() = default;
  // Appends one event. REQUIRES: event.seq greater than the previous event's.
  virtual absl::Status Append(const ExitEvent& event) = 0;
  virtual absl::Status Flush() = 0;
  // Writes the trailer (event count from the appended events) and closes the file: flush,
  // fsync (regular files), and for an atomic writer rename over `path` and fsync the directory.
  // Any failure is returned and, for an atomic writer, leaves `path` as it was.
  virtual absl::Status Close(uint64_t final_state_digest) = 0;
  virtual uint64_t events_written() const = 0;
};

// How a trace ended.
enum class TraceEnd : uint8_t {
  kComplete = 0,   // Trailer present and consistent.
  kNoTrailer = 1,  // Every record intact, but the file stops before a trailer.
  kTornTail = 2,   // The last record is cut off (crash mid-write), or the gzip stream lacks its
                   // end (trailer); earlier records intact and no intact record after the cut.
};
// "complete", "no-trailer", "torn-tail": the one spelling tools print and parse.
const char* TraceEndName(TraceEnd end);
absl::optional<TraceEnd> ParseTraceEnd(absl::string_view name);

struct TraceReaderOptions {
  // A damaged record followed by intact ones is corruption and, by default, an error from
  // Next(). With skip_corrupt the reader resumes at the next intact record and lists every
  // damaged region in skipped() instead; nothing is skipped without an entry there.
  bool skip_corrupt = false;
};

// A damaged region the reader skipped (TraceReaderOptions::skip_corrupt).
struct CorruptRegion {
  uint64_t offset = 0;  // Byte offset (uncompressed stream) of the damaged record.
  uint64_t record = 0;  // Its record number.
  uint64_t bytes = 0;   // Bytes skipped up to the next intact record.
  std::string message;  // "name: byte B (record R): checksum mismatch; skipped N bytes ...".
};

// Reads a trace as a stream. Not thread-safe.
class TraceReader {
 public:
  // Opens `path` ("-" = stdin), detects gzip, checks magic and version, and reads the header
  // and snapshot. Errors name the file and byte offset: kInvalidArgument for a file that is not
  // a trace or has a newer major version, kDataLoss for corruption.
  static absl::StatusOr<std::unique_ptr<TraceReader>> Open(const std::string& path,
                                                           TraceReaderOptions options = {});
  // The same from bytes in memory (fuzzers, tests). `name` is used in messages.
  static absl::StatusOr<std::unique_ptr<TraceReader>> FromBytes(std::string bytes,
                                                                std::string name = "<bytes>",
                                                                TraceReaderOptions options = {});
  virtual ~TraceReader() = default;

  virtual const TraceHeader& header() const = 0;
  virtual const Snapshot& snapshot() const = 0;
  // Reads the next event into *event (reusing its storage). Returns true for an event, false at
  // the end of the events (trailer or end of file: see end()), or an error (kDataLoss naming the
  // byte offset and record number) for a corrupt record or a sequence number that does not
  // increase.
  //
  // A record that fails its length or checksum check is told apart from a torn tail by scanning
  // forward for the next record that validates (length within the cap, event or trailer type,
  // checksum). If one exists the damage is corruption: an error naming the damaged record's
  // offset and number, the offset of the next intact record and how many intact records follow
  // (or, with skip_corrupt, an entry in skipped() and reading resumes there). If none exists,
  // the trace ends as kTornTail.
  virtual absl::StatusOr<bool> Next(ExitEvent* event) = 0;
  // Next() without the copy into the caller's storage: *event points at an event the reader
  // keeps, valid until the next call or the reader's destruction. The replay loop reads this
  // way; a reader that decodes ahead (harness/trace/read_ahead.h) hands out its own storage.
  virtual absl::StatusOr<bool> NextView(const ExitEvent** event) {
    absl::StatusOr<bool> more = Next(&view_);
    *event = &view_;
    return more;
  }
  // After Next() returned false: how the trace ended, and the trailer if there was one.
  virtual TraceEnd end() const = 0;
  virtual const TraceTrailer& trailer() const = 0;
  // Byte offset (in the uncompressed stream) of the next record, and records read so far.
  virtual uint64_t offset() const = 0;
  virtual uint64_t records() const = 0;
  // Byte offset and record number of the record Next() returned last. Readers that are not
  // backed by framed records (in-memory models) report offset() and records().
  virtual uint64_t record_offset() const { return offset(); }
  virtual uint64_t record_number() const { return records(); }
  // The damaged regions skipped so far (only with skip_corrupt; none for in-memory readers).
  virtual const std::vector<CorruptRegion>& skipped() const {
    static const std::vector<CorruptRegion> kNone;
    return kNone;
  }

 private:
  ExitEvent view_;  // NextView()'s storage, for readers that decode into the caller's.
};

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_TRACE_FILE_H_
