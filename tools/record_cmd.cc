// msrtrace record: runs a built-in workload against a handler set and writes a trace.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "harness/core/msr_filter.h"
#include "tools/command.h"
#include "workloads/golden_traces.h"
#include "workloads/record.h"
#include "workloads/workloads.h"

namespace msrtrace::cli {
namespace {

using workloads::WorkloadDef;
using workloads::Workloads;

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
  workloads::RecordRequest request;
  request.output = o.output;
  request.workload = o.workload;
  request.golden = o.golden;
  request.profile = o.profile;
  request.handler_set = o.handler_set;
  request.seed = o.seed;
  request.events = o.events;
  request.vcpus = o.vcpus;
  request.flush_every = o.flush_every;
  request.host_save_restore = o.host_save_restore;
  if (!o.unknown_msr_policy.empty()) {
    request.unknown_msr_policy = ParseUnknownMsrPolicy(o.unknown_msr_policy);
    if (!request.unknown_msr_policy.has_value()) {
      err << "msrtrace record: --unknown-msr-policy: '" << o.unknown_msr_policy
          << "' is not inject-gp, ignore or fail\n";
      return kExitBadInput;
    }
  }
  if (!ParseMsrExitReasons(o.user_space_msr, &request.routing.user_space_msr_mask)) {
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
    const absl::Status st = DenyListFilter(deny, &request.routing.filter);
    if (!st.ok()) {
      err << "msrtrace record: --msr-filter-deny: " << st.message() << "\n";
      return kExitBadInput;
    }
  }
  request.routing.userspace_handler_set = o.userspace_handler_set;
  if (o.progress) {
    request.progress = [&err](uint64_t n, uint64_t total) {
      if (total != 0) {
        err << absl::StrFormat("\rrecording: %u / %u exits (%.0f%%)", n, total,
                               100.0 * static_cast<double>(n) / static_cast<double>(total));
      } else {
        err << absl::StrFormat("\rrecording: %u exits", n);
      }
      err.flush();
    };
  }
  absl::StatusOr<workloads::RecordSummary> s = workloads::RecordWorkload(request);
  if (o.progress) err << "\r\033[K";
  if (!s.ok()) {
    err << "msrtrace record: " << s.status().message() << "\n";
    return kExitBadInput;
  }
  out << absl::StrFormat(
      "recorded %u events (workload %s, profile %s, %u vCPUs, seed %u%s) to %s%s\n", s->events,
      s->workload, s->profile, s->vcpus, s->seed,
      s->handler_set == "reference" ? "" : ", handler set " + s->handler_set, o.output,
      s->incomplete.empty() ? "" : " (deliberately " + s->incomplete + ")");
  return kExitOk;
}

}  // namespace msrtrace::cli
