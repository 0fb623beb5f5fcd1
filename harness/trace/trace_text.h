// Human-readable forms of a trace, for hand-written traces and `msrtrace show/convert`: a whole
// trace as one text-format or JSON `Trace` message (header, snapshot, events, trailer). One
// printer serves every text output: 64-bit values (registers, addresses, MSR values, digests) and
// bit masks in hex, counters (seq, event_count, host_wall_ns) in decimal; the parser reads both.
#ifndef MSRTRACE_HARNESS_TRACE_TEXT_H_
#define MSRTRACE_HARNESS_TRACE_TEXT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace google {
namespace protobuf {
class Message;
}  // namespace protobuf
}  // namespace google

namespace msrtrace {

struct ExitEvent;
namespace proto {
class ExitEvent;
}  // namespace proto

enum class TraceTextFormat : uint8_t { kTextProto = 0, kJson = 1 };

// Converts the binary trace `in_path` to text (`out_path` "-" = stdout; a file is replaced
// atomically).
absl::Status WriteTraceText(const std::string& in_path, const std::string& out_path,
                            TraceTextFormat format);
// Parses a text-format or JSON trace (detected from content) and writes it as a binary trace.
// Errors name the file and line (text) or the offending excerpt (JSON).
absl::Status ReadTraceText(const std::string& in_path, const std::string& out_path);

// Prints one message of the trace schema (proto/trace.proto) with the text forms' printer (indent
// level 1, the number formats above) into `*out`. False when protobuf cannot print it.
bool TraceMessageToText(const google::protobuf::Message& message, std::string* out);

// The event as the text forms print it: ToProto, then the EventField bits of `known` that have a
// name moved into `known_fields` (FIELD_ALL when all are set); unnamed bits stay in `known`.
// Readers OR both back together (trace_proto.cc).
void EventToTextProto(const ExitEvent& event, proto::ExitEvent* out);

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_TRACE_TEXT_H_
