#include "harness/trace_framing.h"

#include <zlib.h>

#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "google/protobuf/message_lite.h"
#include "harness/status_macros.h"
#include "harness/trace_proto.h"
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

uint32_t RecordCrc(uint8_t type, const char* payload, size_t len) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, &type, 1);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(payload), static_cast<uInt>(len));
  const uint32_t c = static_cast<uint32_t>(crc);
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
  const uint32_t minor = parts.size() > 1 ? kSplitSnapshotMinor : kTraceFormatMinor;

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
  for (const proto::Snapshot& part : parts)
    RETURN_IF_ERROR(AppendRecord(kRecordSnapshotCore, part, out));
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
