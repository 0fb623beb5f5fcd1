#include "workloads/record.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "handlers/msr_table.h"
#include "harness/replay/machine.h"
#include "harness/replay/recorder.h"
#include "workloads/golden_traces.h"
#include "workloads/workloads.h"

namespace msrtrace::workloads {
namespace {

constexpr char kProducer[] = "msrtrace record 0.1.0";

// Cuts the last record of `path` in half, as a crash in the middle of a write would.
absl::Status TearTail(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  off_t size = -1;
  if (f != nullptr) {
    fseeko(f, 0, SEEK_END);
    size = ftello(f);
    fclose(f);
  }
  if (size < 8 || truncate(path.c_str(), size - 5) != 0) {
    return absl::InternalError("cannot truncate " + path);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RecordSummary> RecordWorkload(const RecordRequest& request) {
  WorkloadParams params;
  std::string workload = request.workload;
  std::string profile = request.profile;
  uint64_t vcpus = request.vcpus;
  params.seed = request.seed;
  params.events = request.events;
  if (!request.golden.empty()) {
    const GoldenTraceDef* g = nullptr;
    for (const GoldenTraceDef& d : kGoldenTraces) {
      if (request.golden == d.name) g = &d;
    }
    if (g == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("unknown golden trace '", request.golden, "' (see msrtrace record --list)"));
    }
    workload = g->workload;
    profile = g->profile;
    vcpus = g->vcpus;
    params.seed = g->seed;
    params.events = g->events;
  }
  if (workload.empty()) {
    return absl::InvalidArgumentError("--workload or --golden is required (see --list)");
  }
  const WorkloadDef* def = FindWorkload(workload);
  if (def == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("unknown workload '", workload, "' (see msrtrace record --list)"));
  }
  if (request.output.empty()) return absl::InvalidArgumentError("--output is required");
  params.profile = profile.empty() ? def->default_profile : profile;
  if (FindProfile(params.profile) == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown CPU profile '", params.profile,
                                            "' (see msrtrace msrs for the profiles)"));
  }
  params.policy = request.unknown_msr_policy.value_or(def->default_policy);
  if (vcpus == 0) vcpus = def->default_vcpus;
  if (vcpus > 256) {
    return absl::InvalidArgumentError(absl::StrCat("--vcpus ", vcpus, " is more than 256"));
  }
  params.vcpus = static_cast<uint32_t>(vcpus);

  TraceHeader header;
  header.producer = kProducer;
  header.cpu_profile = params.profile;
  header.unknown_msr_policy = params.policy;
  header.vcpu_count = params.vcpus;
  header.handler_set = request.handler_set.empty() ? "reference" : request.handler_set;
  header.creation_time_ns = 0;  // Recordings are reproducible byte for byte.
  header.labels = {{"workload", def->name},
                   {"seed", absl::StrCat(params.seed)},
                   {"events", absl::StrCat(params.events)}};
  header.routing = request.routing;
  header.host_events = request.host_save_restore != 0;  // Format 1.2 (docs/trace-format.md).

  absl::StatusOr<std::unique_ptr<Machine>> machine = BuildMachine(header);
  if (!machine.ok()) return machine.status();
  Machine& m = **machine;
  if (def->setup) def->setup(m, params);

  RecorderOptions ro;
  ro.flush_every = static_cast<uint32_t>(std::min<uint64_t>(request.flush_every, UINT32_MAX));
  // Atomic output: a failed or killed recording leaves an existing file untouched. The
  // deliberately incomplete workloads stop without Close(), so they write in place.
  ro.atomic = def->incomplete.empty();
  auto ranges = std::make_shared<std::vector<std::pair<uint32_t, uint32_t>>>(
      VolatileRanges(MsrTable(*m.profile)));
  ro.is_volatile = [ranges](uint32_t index) {
    for (const auto& r : *ranges) {
      if (index >= r.first && index <= r.second) return true;
    }
    return false;
  };
  absl::StatusOr<std::unique_ptr<Recorder>> rec =
      Recorder::Start(request.output, header, *m.controller, m.vcpus, m.memory, std::move(ro));
  if (!rec.ok()) return rec.status();
  Guest guest(m, **rec, params.seed);
  guest.set_host_save_restore(request.host_save_restore);
  if (request.progress) {
    const uint64_t total = def->name == "random" ? params.events : 0;
    guest.set_progress([&request, total](uint64_t n) { request.progress(n, total); });
  }
  absl::Status st = def->run(guest, params);
  if (!st.ok()) {
    return absl::Status(st.code(), absl::StrCat("workload ", def->name, " failed: ", st.message()));
  }
  RecordSummary summary;
  summary.events = (*rec)->events_recorded();
  if (def->incomplete.empty()) {
    st = (*rec)->Close(m.vcpus);
  } else {
    st = (*rec)->Flush();
    rec->reset();  // No trailer.
    if (st.ok() && def->incomplete == "torn-tail") st = TearTail(request.output);
  }
  if (!st.ok()) return st;
  summary.workload = def->name;
  summary.profile = params.profile;
  summary.vcpus = params.vcpus;
  summary.seed = params.seed;
  summary.handler_set = header.handler_set;
  summary.incomplete = def->incomplete;
  return summary;
}

}  // namespace msrtrace::workloads
