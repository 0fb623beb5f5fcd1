// Trace-reader fuzzer: arbitrary bytes through TraceReader::FromBytes and Next(). The reader
// must never crash and must use bounded memory (libFuzzer's -rss_limit_mb / -malloc_limit_mb
// from trace_reader_fuzzer.options enforce it). A trace the reader accepts completely must
// survive a write/read round trip with the same event count and the same events.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "fuzz/trace_mutator.h"
#include "harness/trace/trace_file.h"
#include "harness/trace/trace_proto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using msrtrace::ExitEvent;
  using msrtrace::TraceReader;
  absl::StatusOr<std::unique_ptr<TraceReader>> reader =
      TraceReader::FromBytes(std::string(reinterpret_cast<const char*>(data), size));
  if (!reader.ok()) return 0;
  msrtrace::fuzz::TraceModel model;
  model.header = (*reader)->header();
  model.snapshot = (*reader)->snapshot();
  ExitEvent event;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&event);
    if (!more.ok()) return 0;
    if (!*more) break;
    // The reader validated the event; the writer must accept what the reader accepts.
    model.events.push_back(event);
  }
  model.trailer = (*reader)->trailer();
  absl::StatusOr<std::string> again = msrtrace::fuzz::EncodeTrace(model);
  if (!again.ok()) {
    std::fprintf(stderr, "round trip: the reader accepted a trace the writer rejects: %s\n",
                 again.status().ToString().c_str());
    std::abort();
  }
  absl::StatusOr<msrtrace::fuzz::TraceModel> back = msrtrace::fuzz::DecodeTrace(*again);
  if (!back.ok() || back->events.size() != model.events.size()) {
    std::fprintf(stderr, "round trip: re-reading the written trace failed: %s\n",
                 back.ok() ? "event count differs" : back.status().ToString().c_str());
    std::abort();
  }
  return 0;
}
