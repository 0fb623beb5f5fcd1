#include "harness/trace_types.h"

namespace msrtrace {

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
    case RecordedKind::kUnspecified:
      break;
  }
  return "unspecified";
}

}  // namespace msrtrace
