// msrtrace record: runs a built-in workload against a handler set and writes a trace.
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "handlers/msr_table.h"
#include "harness/core/msr_filter.h"
#include "harness/replay/recorder.h"
#include "harness/replay/replay.h"
#include "tools/command.h"
#include "workloads/golden_traces.h"
#include "workloads/workloads.h"

namespace msrtrace::cli {
namespace {

using workloads::FindWorkload;
using workloads::Guest;
using workloads::WorkloadDef;
using workloads::WorkloadParams;
using workloads::Workloads;

constexpr char kProducer[] = "msrtrace record 0.1.0";

void ListWorkloads(std::ostream& out) {
  out << "Workloads (--workload):\n";
  for (const WorkloadDef& w : Workloads()) {
    out << absl::StrFormat("  %-20s %s (default: %s, %u vCPU%s, %s)\n", w.name, w.description,
                           w.default_profile, w.default_vcpus, w.default_vcpus == 1 ? "" : "s",
                           UnknownMsrPolicyName(w.default_policy));
  }
  out << "Golden traces (--golden):\n";
  for (const GoldenTraceDef& g : kGoldenTraces) {
    out << absl::StrFormat("  %-28s workload %s, profile %s, %u vCPU%s\n", g.name, g.workload,
                           g.profile, g.vcpus, g.vcpus == 1 ? "" : "s");
  }
}

}  // namespace

int RunRecord(const RecordOptions& o, std::ostream& out, std::ostream& err) {
  if (o.list) {
    ListWorkloads(out);
    return kExitOk;
  }
  WorkloadParams params;
  std::string workload = o.workload;
  std::string profile = o.profile;
  uint64_t vcpus = o.vcpus;
  params.seed = o.seed;
  params.events = o.events;
  if (!o.golden.empty()) {
    const GoldenTraceDef* g = nullptr;
    for (const GoldenTraceDef& d : kGoldenTraces) {
      if (o.golden == d.name) g = &d;
    }
    if (g == nullptr) {
      err << "msrtrace record: unknown golden trace '" << o.golden
          << "' (see msrtrace record --list)\n";
      return kExitBadInput;
    }
    workload = g->workload;
    profile = g->profile;
    vcpus = g->vcpus;
    params.seed = g->seed;
    params.events = g->events;
  }
  if (workload.empty()) {
    err << "msrtrace record: --workload or --golden is required (see --list)\n";
    return kExitBadInput;
  }
  const WorkloadDef* def = FindWorkload(workload);
  if (def == nullptr) {
    err << "msrtrace record: unknown workload '" << workload << "' (see msrtrace record --list)\n";
    return kExitBadInput;
  }
  if (o.output.empty()) {
    err << "msrtrace record: --output is required\n";
    return kExitBadInput;
  }
  params.profile = profile.empty() ? def->default_profile : profile;
  if (FindProfile(params.profile) == nullptr) {
    err << "msrtrace record: unknown CPU profile '" << params.profile
        << "' (see msrtrace msrs for the profiles)\n";
    return kExitBadInput;
  }
  params.policy = def->default_policy;
  if (!o.unknown_msr_policy.empty()) {
    absl::optional<UnknownMsrPolicy> p = ParseUnknownMsrPolicy(o.unknown_msr_policy);
    if (!p.has_value()) {
      err << "msrtrace record: --unknown-msr-policy: '" << o.unknown_msr_policy
          << "' is not inject-gp, ignore or fail\n";
      return kExitBadInput;
    }
    params.policy = *p;
  }
  if (vcpus == 0) vcpus = def->default_vcpus;
  if (vcpus > 256) {
    err << "msrtrace record: --vcpus " << vcpus << " is more than 256\n";
    return kExitBadInput;
  }
  params.vcpus = static_cast<uint32_t>(vcpus);

  TraceHeader header;
  header.producer = kProducer;
  header.cpu_profile = params.profile;
  header.unknown_msr_policy = params.policy;
  header.vcpu_count = params.vcpus;
  header.handler_set = o.handler_set.empty() ? "reference" : o.handler_set;
  header.creation_time_ns = 0;  // Recordings are reproducible byte for byte.
  header.labels = {{"workload", def->name},
                   {"seed", absl::StrCat(params.seed)},
                   {"events", absl::StrCat(params.events)}};

  if (!ParseMsrExitReasons(o.user_space_msr, &header.routing.user_space_msr_mask)) {
    err << "msrtrace record: --user-space-msr: '" << o.user_space_msr
        << "' is not a list of inval, unknown, filter\n";
    return kExitBadInput;
  }
  if (!o.msr_filter_deny.empty()) {
    std::vector<uint32_t> deny;
    for (absl::string_view part : absl::StrSplit(o.msr_filter_deny, ',')) {
      uint32_t index = 0;
      const bool hex = absl::StartsWith(part, "0x") || absl::StartsWith(part, "0X");
      if (!(hex ? absl::SimpleHexAtoi(part.substr(2), &index) : absl::SimpleAtoi(part, &index))) {
        err << "msrtrace record: --msr-filter-deny: '" << part << "' is not an MSR index\n";
        return kExitBadInput;
      }
      deny.push_back(index);
    }
    const absl::Status st = DenyListFilter(deny, &header.routing.filter);
    if (!st.ok()) {
      err << "msrtrace record: --msr-filter-deny: " << st.message() << "\n";
      return kExitBadInput;
    }
  }
  header.routing.userspace_handler_set = o.userspace_handler_set;

  absl::StatusOr<std::unique_ptr<Machine>> machine = BuildMachine(header);
  if (!machine.ok()) {
    err << "msrtrace record: " << machine.status().message() << "\n";
    return kExitBadInput;
  }
  Machine& m = **machine;
  if (def->setup) def->setup(m, params);

  RecorderOptions ro;
  ro.flush_every = static_cast<uint32_t>(std::min<uint64_t>(o.flush_every, UINT32_MAX));
  // Atomic -o: a failed or killed recording leaves an existing file untouched. The deliberately
  // incomplete workloads stop without Close(), so they write in place.
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
      Recorder::Start(o.output, header, *m.controller, m.vcpus, m.memory, std::move(ro));
  if (!rec.ok()) {
    err << "msrtrace record: " << rec.status().message() << "\n";
    return kExitBadInput;
  }
  Guest guest(m, **rec, params.seed);
  guest.set_host_save_restore(o.host_save_restore);
  if (o.progress) {
    const uint64_t total = def->name == "random" ? params.events : 0;
    guest.set_progress([&err, total](uint64_t n) {
      if (total != 0) {
        err << absl::StrFormat("\rrecording: %u / %u exits (%.0f%%)", n, total,
                               100.0 * static_cast<double>(n) / static_cast<double>(total));
      } else {
        err << absl::StrFormat("\rrecording: %u exits", n);
      }
      err.flush();
    });
  }
  absl::Status st = def->run(guest, params);
  if (o.progress) err << "\r\033[K";
  if (!st.ok()) {
    err << "msrtrace record: workload " << def->name << " failed: " << st.message() << "\n";
    return kExitBadInput;
  }
  const uint64_t events = (*rec)->events_recorded();
  if (def->incomplete.empty()) {
    st = (*rec)->Close(m.vcpus);
  } else {
    st = (*rec)->Flush();
    rec->reset();  // No trailer.
    if (st.ok() && def->incomplete == "torn-tail") {
      // Cut the last record in half, as a crash in the middle of a write would.
      const off_t size = [&] {
        FILE* f = fopen(o.output.c_str(), "rb");
        if (f == nullptr) return off_t{-1};
        fseeko(f, 0, SEEK_END);
        const off_t s = ftello(f);
        fclose(f);
        return s;
      }();
      if (size < 8 || truncate(o.output.c_str(), size - 5) != 0) {
        st = absl::InternalError("cannot truncate " + o.output);
      }
    }
  }
  if (!st.ok()) {
    err << "msrtrace record: " << st.message() << "\n";
    return kExitBadInput;
  }
  out << absl::StrFormat(
      "recorded %u events (workload %s, profile %s, %u vCPUs, seed %u%s) to %s%s\n", events,
      def->name, params.profile, params.vcpus, params.seed,
      header.handler_set == "reference" ? "" : ", handler set " + header.handler_set, o.output,
      def->incomplete.empty() ? "" : " (deliberately " + def->incomplete + ")");
  return kExitOk;
}

}  // namespace msrtrace::cli
