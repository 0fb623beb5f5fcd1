#include "harness/trace/trace_framing.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "google/protobuf/message_lite.h"
#include "harness/core/status_macros.h"
#include "harness/trace/trace_proto.h"
#include "proto/trace.pb.h"

namespace msrtrace {
namespace {

// Moves the vCPUs of (*parts)[0] into as many vCPU-only records as needed (format 1.1), each
// under kSnapshotPartBudget bytes; the first record keeps everything else.
absl::Status SplitVcpus(std::vector<proto::Snapshot>* parts) {
  proto::Snapshot& core = (*parts)[0];
  google::protobuf::RepeatedPtrField<proto::VcpuState> vcpus;
  vcpus.Swap(core.mutable_vcpus());
  const size_t rest = core.ByteSizeLong();
  if (rest + 16 > kSnapshotPartBudget) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the snapshot's VM-wide slots and handler states take %u bytes, more than the %u-byte "
        "record cap allows",
        rest, kMaxRecordPayload));
  }
  proto::Snapshot* part = &core;
  size_t size = rest;
  for (int i = 0; i < vcpus.size(); ++i) {
    const size_t n = vcpus.Get(i).ByteSizeLong() + 8;  // Tag and length prefix.
    if (n > kSnapshotPartBudget) {
      return absl::InvalidArgumentError(
          absl::StrFormat("vCPU %u's state takes %u bytes, more than the %u-byte record cap",
                          vcpus.Get(i).id(), n, kMaxRecordPayload));
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

}  // namespace

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

namespace {

// CRC-32 with zlib's polynomial (reflected 0xedb88320), eight bytes per step ("slicing-by-8":
// table k maps a byte to its CRC contribution k bytes further on). The same values as zlib's
// crc32(), about twice as fast on records of ~100 bytes, where the checksum was the largest
// single cost of reading a trace (docs/benchmarks.md).
struct CrcTables {
  uint32_t t[8][256];
  CrcTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (int k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
    }
  }
};

const CrcTables& Tables() {
  static const CrcTables* tables = new CrcTables;
  return *tables;
}

// Continues the raw (not yet inverted) CRC `c` over `n` bytes at `p`.
uint32_t CrcUpdate(const CrcTables& tb, uint32_t c, const uint8_t* p, size_t n) {
  const auto& t = tb.t;
  for (; n >= 8; p += 8, n -= 8) {
    const uint32_t lo = GetU32(reinterpret_cast<const char*>(p)) ^ c;  // Little-endian loads.
    const uint32_t hi = GetU32(reinterpret_cast<const char*>(p) + 4);
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
        t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
  }
  for (; n > 0; ++p, --n) c = (c >> 8) ^ t[0][(c ^ *p) & 0xff];
  return c;
}

}  // namespace

uint32_t Crc32(const char* data, size_t len) {
  return ~CrcUpdate(Tables(), ~0u, reinterpret_cast<const uint8_t*>(data), len);
}

uint32_t RecordCrc(uint8_t type, const char* payload, size_t len) {
  const CrcTables& tb = Tables();
  uint32_t c = CrcUpdate(tb, ~0u, &type, 1);
  c = ~CrcUpdate(tb, c, reinterpret_cast<const uint8_t*>(payload), len);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

absl::Status AppendRecord(uint8_t type, const google::protobuf::MessageLite& m, std::string* out) {
  const size_t len = m.ByteSizeLong();
  if (len > kMaxRecordPayload) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s record of %u bytes exceeds the %u-byte "
                        "record cap",
                        RecordTypeName(type), len, kMaxRecordPayload));
  }
  const size_t at = out->size();
  out->resize(at + kRecordHeaderSize + len);
  char* p = &(*out)[at];
  m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(p + kRecordHeaderSize));
  PutU32(p, static_cast<uint32_t>(len));
  PutU32(p + 4, RecordCrc(type, p + kRecordHeaderSize, len));
  p[8] = static_cast<char>(type);
  return absl::OkStatus();
}

absl::Status AppendTraceStart(const TraceHeader& header, const Snapshot& snapshot,
                              std::string* out) {
  // The snapshot core, split over several records when it exceeds the record cap.
  std::vector<proto::Snapshot> parts(1);
  SnapshotCoreToProto(snapshot, &parts[0]);
  if (parts[0].ByteSizeLong() > kMaxRecordPayload) RETURN_IF_ERROR(SplitVcpus(&parts));
  const uint32_t minor = UsesHostEventsFormat(header) ? kHostEventsMinor
                         : parts.size() > 1           ? kSplitSnapshotMinor
                                                      : kTraceFormatMinor;

  char prelude[kPreludeSize];
  std::memcpy(prelude, kTraceMagic, sizeof(kTraceMagic));
  PutU16(prelude + 8, static_cast<uint16_t>(kTraceFormatMajor));
  PutU16(prelude + 10, static_cast<uint16_t>(minor));
  PutU32(prelude + 12, 0);  // Flags: none defined in 1.x.
  out->append(prelude, sizeof(prelude));

  proto::TraceHeader h;
  ToProto(header, &h);
  h.set_format_major(kTraceFormatMajor);  // The version of the format actually written.
  h.set_format_minor(minor);
  RETURN_IF_ERROR(AppendRecord(kRecordHeader, h, out));
  for (const proto::Snapshot& part : parts) {
    RETURN_IF_ERROR(AppendRecord(kRecordSnapshotCore, part, out));
  }
  parts.clear();
  proto::MemoryPage page;
  for (uint64_t gpa : snapshot.memory.PageAddresses()) {
    PageToProto(gpa, snapshot.memory.Page(gpa), &page);
    RETURN_IF_ERROR(AppendRecord(kRecordPage, page, out));
  }
  return absl::OkStatus();
}

absl::Status AppendEventRecord(const ExitEvent& event, proto::ExitEvent* scratch,
                               std::string* out) {
  absl::Status valid = ValidateEvent(event);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("event seq %u: %s", event.seq, valid.message()));
  }
  ToProto(event, scratch);
  return AppendRecord(kRecordEvent, *scratch, out);
}

void AppendTrailerRecord(const TraceTrailer& trailer, std::string* out) {
  proto::Trailer t;
  ToProto(trailer, &t);
  (void)AppendRecord(kRecordTrailer, t, out);  // A trailer is a few bytes.
}

}  // namespace msrtrace
