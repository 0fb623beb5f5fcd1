// Fuzzer for the production-trace importer's line parser (importers/kvm_trace_parser.h):
// every line of the input through ParseLine. It must never read outside the line or crash, and
// an error must point inside the line.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "importers/kvm_trace_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using msrtrace::importers::LineError;
  using msrtrace::importers::LineStatus;
  using msrtrace::importers::ParsedLine;
  absl::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const absl::string_view line = rest.substr(0, nl);
    rest = nl == absl::string_view::npos ? absl::string_view() : rest.substr(nl + 1);
    ParsedLine parsed;
    LineError error;
    if (msrtrace::importers::ParseLine(line, &parsed, &error) == LineStatus::kBad &&
        error.column > line.size()) {
      std::fprintf(stderr, "ParseLine error column %zu is past the line (%zu bytes)\n",
                   error.column, line.size());
      std::abort();
    }
  }
  return 0;
}
