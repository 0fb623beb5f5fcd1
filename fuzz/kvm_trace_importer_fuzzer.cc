// Fuzzer for the production-trace importer end to end (importers/kvm_trace_importer.h
// ImportFromBuffer): parse, assemble, infer the initial MSR values, build the reference
// machine, write a trace and compare. Arbitrary text must give an error or a summary, never a
// crash; a trace the importer writes must read back.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "fuzz/trace_mutator.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"
#include "importers/kvm_trace_importer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int out_fd = memfd_create("msrtrace-fuzz-import-out", MFD_CLOEXEC);
  static const std::string out_path = absl::StrCat("/proc/self/fd/", out_fd);
  if (out_fd < 0 || ftruncate(out_fd, 0) != 0) std::abort();
  msrtrace::importers::ImportConfig config;
  config.output = out_path;
  config.profile_name = msrtrace::DefaultProfile().name;
  config.handler_set_name = "reference";
  config.install = [](msrtrace::Controller& c) {
    return msrtrace::InstallReferenceHandlers(c, msrtrace::DefaultProfile());
  };
  config.max_reported_bad_lines = 4;
  config.accept_truncated = true;  // Inputs rarely end with a newline; keep importing them.
  config.max_disagreement_details = 4;
  absl::StatusOr<msrtrace::importers::ImportSummary> summary =
      msrtrace::importers::ImportFromBuffer(
          absl::string_view(reinterpret_cast<const char*>(data), size), config, "<fuzz input>");
  if (!summary.ok() || summary->events_written == 0) return 0;
  const off_t n = lseek(out_fd, 0, SEEK_END);
  std::string bytes(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0 && pread(out_fd, &bytes[0], bytes.size(), 0) != n) std::abort();
  absl::StatusOr<msrtrace::fuzz::TraceModel> trace = msrtrace::fuzz::DecodeTrace(bytes);
  if (!trace.ok()) {
    std::fprintf(stderr, "the importer wrote a trace the reader rejects: %s\n",
                 trace.status().ToString().c_str());
    std::abort();
  }
  return 0;
}
