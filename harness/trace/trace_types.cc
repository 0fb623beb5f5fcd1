#include "harness/trace/trace_types.h"

namespace msrtrace {

bool UsesHostEventsFormat(const TraceHeader& h) {
  return h.host_events || h.routing != MsrRouting{};
}

const char* RecordedKindName(RecordedKind k) {
  switch (k) {
    case RecordedKind::kRetired:
      return "retired";
    case RecordedKind::kGpInjected:
      return "gp";
    case RecordedKind::kVmmError:
      return "vmm-error";
    case RecordedKind::kIgnored:
      return "ignored";
    case RecordedKind::kHostFailed:
      return "host-failed";
    case RecordedKind::kUnspecified:
      break;
  }
  return "unspecified";
}

RecordedKind RecordedKindOf(Outcome::Kind k) {
  switch (k) {
    case Outcome::Kind::kRetired:
      return RecordedKind::kRetired;
    case Outcome::Kind::kGpInjected:
      return RecordedKind::kGpInjected;
    case Outcome::Kind::kIgnored:
      return RecordedKind::kIgnored;
    case Outcome::Kind::kUnspecified:
      break;
  }
  return RecordedKind::kUnspecified;
}

}  // namespace msrtrace
