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

}  // namespace msrtrace
