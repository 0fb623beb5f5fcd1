// Built-in guest workloads for `msrtrace record`: deterministic MSR exit sequences that a
// simulated guest issues against a machine built from a trace header, through a Recorder.
//
//   linux-boot   A Linux guest boot per CPU profile: APIC_BASE read, MTRRs, PAT, EFER and the
//                switch to long mode, STAR/LSTAR/CSTAR/SFMASK, FS/GS/KERNEL_GS_BASE,
//                MISC_ENABLE, kvm-clock (0x4b564d00/01 with guest GPAs), x2APIC enable through
//                APIC_BASE, x2APIC TPR/SVR/LVT and ICR IPIs to the other vCPUs, TSC_DEADLINE
//                arming, SPEC_CTRL, TSC reads; per profile ARCH_CAPABILITIES, TSX_CTRL,
//                DEBUGCTL, XSS/XFD, CET, UMWAIT, PMU probing and reset, AMD SYSCFG/DE_CFG and
//                the nested-KVM MSRs (docs/workloads.md); realistic RIPs and modes on every
//                vCPU; a 32-bit kernel on profiles without long mode.
//   windows-boot A Windows guest boot with Hyper-V enlightenments (profile hyperv): guest OS id,
//                hypercall page, reference TSC page, VP index/assist page, SynIC, stimer 0,
//                synthetic EOI/ICR/TPR; docs/workloads.md.
//   random       --events exits at random indices of the profile's MSR table (and their
//                neighbours), random values with junk in the upper halves of RAX/RDX, random
//                instruction lengths, 64-bit and 32-bit modes, several vCPUs; --seed.
//   scenarios    Small named traces for the golden corpus (workloads/golden_traces.h).
//
// Everything is a pure function of (workload, profile, seed, events, vCPUs): host TSC and wall
// clock come from a simulated host clock, so recording twice gives identical traces.
#ifndef MSRTRACE_WORKLOADS_WORKLOADS_H_
#define MSRTRACE_WORKLOADS_WORKLOADS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "harness/core/controller.h"
#include "harness/replay/recorder.h"
#include "harness/replay/replay.h"

namespace msrtrace::workloads {

struct WorkloadParams {
  std::string profile;  // CPU profile name.
  uint64_t seed = 1;
  uint64_t events = 10000;
  uint32_t vcpus = 1;
  UnknownMsrPolicy policy = UnknownMsrPolicy::kInjectGp;
};

// A simulated guest on a Machine whose exits go through a Recorder. Keeps a deterministic host
// clock and a PRNG. Between exits it moves RIP like running code would and delivers the pending
// exception (clears it).
class Guest {
 public:
  Guest(Machine& machine, Recorder& recorder, uint64_t seed);

  uint32_t vcpu_count() const { return static_cast<uint32_t>(machine_.vcpus.size()); }
  Vcpu& vcpu(uint32_t i) { return machine_.vcpus[i]; }
  const CpuProfile& profile() const { return *machine_.profile; }

  // Mode changes the guest makes between exits (the CPU sets EFER.LMA when paging is enabled
  // with EFER.LME; ref: SDM Vol3 §9.8.5).
  void SetRealMode(uint32_t v, uint64_t rip);
  void SetProtectedMode(uint32_t v, uint64_t rip);      // 32-bit, paging on, no long mode.
  void EnterLongMode(uint32_t v, uint64_t rip);         // CR4.PAE, CR0.PG, EFER.LMA, CS.L.
  void SetCompatibilityMode(uint32_t v, uint64_t rip);  // EFER.LMA with CS.L clear.

  // One RDMSR / WRMSR exit of vCPU `v`. `rax_junk`/`rdx_junk` go into the upper halves of the
  // input registers (the CPU ignores them). Returns true when the access retired; faults and
  // VMM errors are recorded like any other outcome and the workload goes on.
  bool Rdmsr(uint32_t v, uint32_t index, uint8_t length = 2, uint64_t rcx_junk = 0);
  bool Wrmsr(uint32_t v, uint32_t index, uint64_t value, uint8_t length = 2, uint64_t rax_junk = 0,
             uint64_t rdx_junk = 0);
  // RDMSR that returns the value read (0 on a fault or error).
  uint64_t Read(uint32_t v, uint32_t index);

  // Guest code runs for a while: RIP moves forward by a few instructions, the host clock ticks.
  void Run(uint32_t v, uint64_t bytes = 0);
  void SetRip(uint32_t v, uint64_t rip) { vcpu(v).regs.rip = rip; }
  void SetRflags(uint32_t v, uint64_t rflags) { vcpu(v).regs.rflags = rflags; }
  void SetInterruptibility(uint32_t v, uint32_t bits) { vcpu(v).regs.interruptibility = bits; }
  // Uses the AMD SVM exit encoding for this vCPU's exits (default: the profile's vendor).
  void SetVendor(Vendor vendor) { vendor_ = vendor; }

  uint64_t host_tsc() const { return host_tsc_; }
  uint64_t Random();
  uint64_t Uniform(uint64_t n) { return n == 0 ? 0 : Random() % n; }
  uint64_t exits() const { return exits_; }
  // Called every 2^16 exits with the number of exits so far (progress display); may be empty.
  void set_progress(std::function<void(uint64_t)> progress) { progress_ = std::move(progress); }
  // Every `n` exits (0 = never), after the exit, a host save/restore round trip on the exiting
  // vCPU (Recorder::SaveRestore), as a VMM taking a snapshot would.
  void set_host_save_restore(uint64_t n) { save_restore_every_ = n; }
  // One host save/restore round trip on vCPU `v` now (a workload step).
  absl::Status SaveRestore(uint32_t v);

 private:
  Exit MakeExit(Access access, uint8_t length);
  absl::StatusOr<Outcome> Handle(uint32_t v, const Exit& exit);

  Machine& machine_;
  Recorder& recorder_;
  Vendor vendor_;
  uint64_t rng_;
  uint64_t host_tsc_ = 0x0000002540be4000ull;  // ~53 s of uptime at 3 GHz.
  uint64_t exits_ = 0;
  std::function<void(uint64_t)> progress_;
  uint64_t save_restore_every_ = 0;
};

struct WorkloadDef {
  std::string name;
  std::string description;
  // Defaults when the command line does not say.
  std::string default_profile;
  uint32_t default_vcpus = 1;
  UnknownMsrPolicy default_policy = UnknownMsrPolicy::kInjectGp;
  // Prepares the machine before the recording starts (initial modes); may be empty.
  std::function<void(Machine&, const WorkloadParams&)> setup;
  // Runs the workload. An error stops the recording (exit 2).
  std::function<absl::Status(Guest&, const WorkloadParams&)> run;
  // The recording is deliberately left incomplete: "" (complete), "no-trailer" (not closed) or
  // "torn-tail" (not closed and the last record cut in half).
  std::string incomplete;
};

// Every built-in workload: linux-boot, windows-boot, random, then the golden-corpus scenarios.
const std::vector<WorkloadDef>& Workloads();
const WorkloadDef* FindWorkload(absl::string_view name);

}  // namespace msrtrace::workloads

#endif  // MSRTRACE_WORKLOADS_WORKLOADS_H_
