// A VMM adopting the Recorder: the only changes to its exit loop are the three lines marked
// "(+)". It then replays its own trace, which a CI job would do with `msrtrace replay`.
//
//   recording_vmm [TRACE]   (default recording_vmm.trace in the current directory)
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"
#include "harness/core/controller.h"
#include "harness/core/status_macros.h"
#include "harness/replay/recorder.h"
#include "harness/replay/replay.h"

namespace {

// The VMM's guest does a few MSR accesses; a real VMM gets these from VM exits.
struct GuestAccess {
  msrtrace::Access access;
  uint32_t index;
  uint64_t value;
};
constexpr GuestAccess kGuest[] = {
    {msrtrace::Access::kRead, 0x1b, 0},                        // IA32_APIC_BASE
    {msrtrace::Access::kWrite, 0x277, 0x0407050600070106ull},  // IA32_PAT
    {msrtrace::Access::kWrite, 0x277, 0x02},                   // Reserved type: #GP
    {msrtrace::Access::kRead, 0x10, 0},                        // IA32_TSC
    {msrtrace::Access::kRead, 0x1234, 0},                      // Unknown: #GP
};

absl::Status RunVmm(const std::string& path) {
  // The VMM's own set-up: a controller with its handlers, vCPUs and guest memory.
  const msrtrace::CpuProfile& profile = msrtrace::DefaultProfile();
  msrtrace::Controller controller;
  RETURN_IF_ERROR(msrtrace::InstallReferenceHandlers(controller, profile));
  std::vector<msrtrace::Vcpu> vcpus = {controller.CreateVcpu(0)};
  msrtrace::SparseMemory memory;

  // (+) Start recording: header names what replay must rebuild.
  msrtrace::TraceHeader header;
  header.producer = "recording_vmm example";
  header.cpu_profile = profile.name;
  header.handler_set = "reference";
  ASSIGN_OR_RETURN(auto recorder,
                   msrtrace::Recorder::Start(path, header, controller, vcpus, memory));

  uint64_t host_tsc = 1000000;
  for (const GuestAccess& g : kGuest) {
    msrtrace::Vcpu& vcpu = vcpus[0];
    vcpu.regs.pending = {};  // Delivered at the last VM entry.
    vcpu.regs.reg(msrtrace::Gpr::kRcx) = g.index;
    vcpu.regs.reg(msrtrace::Gpr::kRax) = g.value & 0xffffffff;
    vcpu.regs.reg(msrtrace::Gpr::kRdx) = g.value >> 32;
    msrtrace::Exit exit =
        g.access == msrtrace::Access::kRead ? msrtrace::Exit::Rdmsr() : msrtrace::Exit::Wrmsr();
    exit.host_tsc = host_tsc += 5000;
    // (+) Was: controller.Handle(exit, vcpu, memory).
    absl::StatusOr<msrtrace::Outcome> out = recorder->Handle(exit, vcpu, memory);
    if (!out.ok()) return out.status();
    std::printf("%s %#x -> %s\n", msrtrace::AccessName(g.access), g.index,
                msrtrace::OutcomeKindName(out->kind));
  }
  // (+) Finish: the trailer carries the final-state digest replay checks.
  return recorder->Close(vcpus);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "recording_vmm.trace";
  absl::Status st = RunVmm(path);
  if (!st.ok()) {
    std::fprintf(stderr, "recording_vmm: %s\n", static_cast<std::string>(st.message()).c_str());
    return 1;
  }
  // Replay the recording (what `msrtrace replay` does).
  absl::StatusOr<msrtrace::ReplayResult> r = msrtrace::ReplayFile(path);
  if (!r.ok()) {
    std::fprintf(stderr, "recording_vmm: %s\n",
                 static_cast<std::string>(r.status().message()).c_str());
    return 2;
  }
  std::printf("replayed %llu events: %s\n", static_cast<unsigned long long>(r->events),
              r->clean() ? "clean" : "DIVERGED");
  return r->clean() ? 0 : 1;
}
