// Conversions between the plain trace types (trace_types.h, snapshot.h) and the messages of
// proto/trace.proto. This file and trace_proto.cc are the only msrtrace code that names
// generated protobuf types; everything else uses the plain types.
//
// All validation of trace content lives here, in FromProto: enum ranges, instruction lengths,
// register counts, slot names, page sizes and alignment. The matching Validate*() functions
// check the same rules on the plain types, so a writer can refuse what a reader would reject.
// Errors are kInvalidArgument with a message naming the field ("exit.instruction_length 0 is
// not in 1..15"); callers add where (file, byte offset, record).
//
// ToProto never fails: it writes every field, so FromProto(ToProto(x)) == x for every valid x.
// The event conversions reuse the storage of their output, so a replay loop converting into
// the same ExitEvent and proto::ExitEvent does not allocate in the steady state.
#ifndef MSRTRACE_HARNESS_TRACE_PROTO_H_
#define MSRTRACE_HARNESS_TRACE_PROTO_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "harness/core/snapshot.h"
#include "harness/trace/trace_types.h"
#include "proto/trace.pb.h"

namespace msrtrace {

// --- Header ---
[[nodiscard]] absl::Status ValidateHeader(const TraceHeader& header);
[[nodiscard]] absl::StatusOr<TraceHeader> FromProto(const proto::TraceHeader& p);
void ToProto(const TraceHeader& header, proto::TraceHeader* p);

// --- Snapshot ---
// Checks a plain snapshot: slot counts match the slot names, names non-empty and unique, vCPU
// ids unique, guest memory size a multiple of 4096.
[[nodiscard]] absl::Status ValidateSnapshot(const Snapshot& snapshot);
// The whole snapshot including inline `pages` (the text/JSON form).
[[nodiscard]] absl::StatusOr<Snapshot> FromProto(const proto::Snapshot& p);
void ToProto(const Snapshot& snapshot, proto::Snapshot* p);

// The disk form is split in a snapshot-core record and one record per page.
// SnapshotCoreFromProto fills everything but the pages (memory is emptied and sized) and
// returns the number of page records that follow; the core must not hold inline pages.
[[nodiscard]] absl::StatusOr<uint64_t> SnapshotCoreFromProto(const proto::Snapshot& p,
                                                             Snapshot* out);
// Writes everything but the pages, with page_count = the number of pages in snapshot.memory.
void SnapshotCoreToProto(const Snapshot& snapshot, proto::Snapshot* p);
// Validates one page and stores it in *memory. Errors: size not 4096, gpa unaligned or outside
// memory, a second page at the same gpa.
[[nodiscard]] absl::Status PageFromProto(const proto::MemoryPage& p, SparseMemory* memory);
// REQUIRES: `page` points at kPageSize bytes.
void PageToProto(uint64_t gpa, const uint8_t* page, proto::MemoryPage* p);

// --- Events ---
[[nodiscard]] absl::Status ValidateEvent(const ExitEvent& event);
// Converts into *out, reusing its storage (memory_writes, error). On error *out is unspecified.
// std::vector cannot keep elements past its size: with `spare_bytes`, the byte strings of the
// memory writes an event has fewer of than the previous one are kept there and reused by the
// next event with more, so a stream of events converts without allocating once the strings
// have grown (the trace reader passes its own); without it such an event allocates.
[[nodiscard]] absl::Status FromProto(const proto::ExitEvent& p, ExitEvent* out,
                                     std::vector<std::string>* spare_bytes = nullptr);
[[nodiscard]] absl::StatusOr<ExitEvent> FromProto(const proto::ExitEvent& p);
// Overwrites every field of *p (reusing its sub-messages).
void ToProto(const ExitEvent& event, proto::ExitEvent* p);

// --- Trailer ---
[[nodiscard]] absl::StatusOr<TraceTrailer> FromProto(const proto::Trailer& p);
void ToProto(const TraceTrailer& trailer, proto::Trailer* p);

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_TRACE_PROTO_H_
