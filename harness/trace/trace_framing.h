// The framing of the binary trace format (docs/trace-format.md): prelude, record header, record
// types, checksums, and the encoding of whole records. Shared by the streaming writer and reader
// (harness/trace/trace_file.h) and by in-memory producers that build trace images directly (the
// fuzz mutator), so every writer emits the same bytes.
//
//   file     := prelude record*            (the whole file may be gzip-compressed)
//   prelude  := "MSRTRACE" u16le(major) u16le(minor) u32le(flags)          16 bytes
//   record   := u32le(length) u32le(masked crc32 of type+payload) u8(type) payload[length]
//   order    := header snapshot-core page{snapshot.page_count} event* trailer
#ifndef MSRTRACE_HARNESS_TRACE_FRAMING_H_
#define MSRTRACE_HARNESS_TRACE_FRAMING_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message_lite.h"
#include "harness/core/snapshot.h"
#include "harness/trace/trace_types.h"

namespace msrtrace {
namespace proto {
class ExitEvent;
}  // namespace proto

inline constexpr char kTraceMagic[8] = {'M', 'S', 'R', 'T', 'R', 'A', 'C', 'E'};
inline constexpr size_t kPreludeSize = 16;
inline constexpr size_t kRecordHeaderSize = 9;
// Largest record payload either side accepts. Events are small; the snapshot core (vCPU
// registers and named slots, handler states) is the largest record. A reader rejects a larger
// length before allocating anything.
inline constexpr uint32_t kMaxRecordPayload = 4u << 20;
// A snapshot core above the cap is split into vCPU records of at most this many bytes (room for
// the fields around the vCPUs in the first record).
inline constexpr size_t kSnapshotPartBudget = kMaxRecordPayload - (64 << 10);
// Format 1.1 (proto Snapshot.vcpu_records): written only by traces whose snapshot is split, so
// every other trace stays 1.0, byte for byte. A 1.0 reader stops at the second snapshot record
// ("expected a page record, found a snapshot record").
inline constexpr uint32_t kSplitSnapshotMinor = 1;
// Format 1.2 (kHostEventsMinor, trace_types.h) is written by traces that use MSR routing or
// host events, split snapshot or not.

enum RecordType : uint8_t {
  kRecordHeader = 1,
  kRecordSnapshotCore = 2,
  kRecordPage = 3,
  kRecordEvent = 4,
  kRecordTrailer = 5,
};
// Types from here up that a reader does not know are skipped (optional metadata a newer minor
// version may add); unknown types below it are an error.
inline constexpr uint8_t kFirstSkippableType = 64;

const char* RecordTypeName(uint8_t type);

// crc32 (zlib's polynomial) over the type byte and the payload, masked as leveldb masks its
// CRCs: a CRC stored next to data that itself contains CRCs is otherwise prone to collide.
uint32_t RecordCrc(uint8_t type, const char* payload, size_t len);
// Plain CRC-32 with zlib's polynomial: the value zlib's crc32(0, data, len) gives.
uint32_t Crc32(const char* data, size_t len);

inline void PutU16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v);
  p[1] = static_cast<char>(v >> 8);
}
inline void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline uint16_t GetU16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | (static_cast<uint8_t>(p[1]) << 8));
}
inline uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

// Appends one framed record holding `m` to `*out`. Errors (kInvalidArgument): the payload
// exceeds kMaxRecordPayload (nothing is appended then).
[[nodiscard]] absl::Status AppendRecord(uint8_t type, const google::protobuf::MessageLite& m,
                                        std::string* out);

// Appends the prelude, the header record and the snapshot records (core, split over vCPU
// records when above the cap, then one record per guest page) to `*out`. Errors
// (kInvalidArgument, without a file name): a snapshot part above the record cap.
[[nodiscard]] absl::Status AppendTraceStart(const TraceHeader& header, const Snapshot& snapshot,
                                            std::string* out);

// Appends the record of `event` (validated with ValidateEvent; the sequence order is the
// caller's), converting through `*scratch` (reused, so no allocation in the steady state).
// Errors (kInvalidArgument, "event seq N: ...", without a file name): an invalid event.
[[nodiscard]] absl::Status AppendEventRecord(const ExitEvent& event, proto::ExitEvent* scratch,
                                             std::string* out);

// Appends the trailer record.
void AppendTrailerRecord(const TraceTrailer& trailer, std::string* out);

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_TRACE_FRAMING_H_
