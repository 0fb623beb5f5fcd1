#include "fuzz/fuzz_setup.h"

#include <string>
#include <utility>
#include <vector>

#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"
#include "harness/core/snapshot.h"
#include "harness/core/status_macros.h"
#include "harness/replay/machine.h"

namespace msrtrace {
namespace fuzz {
namespace {

constexpr int kOwnMsrWeight = 16;

}  // namespace

absl::StatusOr<TraceModel> ResetTrace(absl::string_view handler_set, uint32_t vcpu_count) {
  TraceModel trace;
  trace.header.producer = "msrtrace fuzz";
  trace.header.cpu_profile = DefaultProfile().name;
  trace.header.handler_set = static_cast<std::string>(handler_set);
  trace.header.vcpu_count = vcpu_count;
  trace.header.unknown_msr_policy = UnknownMsrPolicy::kInjectGp;
  // The machine must exist; its state at reset is what the empty (compact) snapshot means.
  ASSIGN_OR_RETURN(std::unique_ptr<Machine> machine, BuildMachine(trace.header));
  (void)machine;
  return trace;
}

ExitEvent MakeEvent(const TraceModel& trace, Access access, uint32_t index, uint64_t value) {
  ExitEvent e;
  Vcpu reset;  // A compact snapshot (no vCPUs) means vCPU 0 at reset.
  const Vcpu& vcpu = trace.snapshot.vcpus.empty() ? reset : trace.snapshot.vcpus.front();
  e.vcpu_id = vcpu.id;
  e.exit = access == Access::kWrite ? Exit::Wrmsr(2) : Exit::Rdmsr(2);
  e.rcx = index;
  e.rax = access == Access::kWrite ? (value & 0xffffffffu) : 0;
  e.rdx = access == Access::kWrite ? (value >> 32) : 0;
  e.rip = 0x401000;
  e.rflags = kRflagsFixed1;
  // 64-bit mode (ref: SDM Vol3 §9.8.5: CR0.PG, CR4.PAE, EFER.LME/LMA, CS.L).
  e.cr0 = vcpu.regs.cr0 | kCr0Pe | kCr0Pg;
  e.cr4 = vcpu.regs.cr4 | kCr4Pae;
  e.efer = vcpu.regs.efer | kEferLme | kEferLma;
  e.cs_l = true;
  ClearOutcome(&e);
  return e;
}

absl::StatusOr<MutatorConfig> MakeMutatorConfig(absl::string_view handler_set) {
  MutatorConfig config;
  ASSIGN_OR_RETURN(config.fallback, ResetTrace(handler_set));
  for (const MsrRow& row : MsrTable()) {
    config.targets.push_back(MsrTarget{row.index, row.last, row.reserved_mask});
  }
  TraceHeader header = config.fallback.header;
  ASSIGN_OR_RETURN(std::unique_ptr<Machine> machine, BuildMachine(header));
  const size_t table_rows = config.targets.size();
  for (const MsrTarget& t : TargetsFromIndices(machine->controller->RegisteredIndices())) {
    bool in_table = false;
    for (size_t i = 0; i < table_rows && !in_table; ++i) {
      in_table = t.first <= config.targets[i].last && config.targets[i].first <= t.last;
    }
    // Indices outside the reference table are a team's own MSRs, the point of fuzzing its
    // handler set: aim at each as often as at kOwnMsrWeight table rows.
    const int copies = in_table ? 1 : kOwnMsrWeight;
    for (int c = 0; c < copies; ++c) config.targets.push_back(t);
  }
  return config;
}

OracleOptions MakeOracleOptions() {
  OracleOptions options;
  options.plain_storage = PlainStorageTargets(MsrTable());
  return options;
}

}  // namespace fuzz
}  // namespace msrtrace
