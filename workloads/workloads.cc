#include "workloads/workloads.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "handlers/hyperv.h"
#include "handlers/kvm_pv.h"
#include "handlers/lapic.h"
#include "handlers/mce.h"
#include "handlers/misc.h"
#include "handlers/msr_table.h"
#include "handlers/mtrr.h"
#include "handlers/syscall.h"
#include "handlers/tsc.h"
#include "harness/core/rng.h"

namespace msrtrace::workloads {
namespace {

// MSR indices and APIC_BASE bits are the reference handlers' (handlers/*.h), never declared here.

// Guest-physical layout of the simulated Linux guest.
constexpr uint64_t kWallClockGpa = 0x2a01000;
constexpr uint64_t kPvtiGpa = 0x2a02000;     // 64 bytes per vCPU (pvclock_vsyscall_time_info).
constexpr uint64_t kStealGpa = 0x2a04000;    // 64 bytes per vCPU.
constexpr uint64_t kAsyncPfGpa = 0x2a06000;  // 64 bytes per vCPU.
constexpr uint64_t kPvEoiGpa = 0x2a08000;    // 4 bytes per vCPU.
// Linux virtual addresses.
constexpr uint64_t kKernelText = 0xffffffff81000000ull;
constexpr uint64_t kEntrySyscall64 = 0xffffffff81a00080ull;
constexpr uint64_t kEntrySyscallCompat = 0xffffffff81a01540ull;
constexpr uint64_t kEntrySysenterCompat = 0xffffffff81a01300ull;
constexpr uint64_t kPerCpuBase = 0xffff88807fc00000ull;
constexpr uint64_t kCpuEntryStack = 0xfffffe0000003000ull;
// Linux's PAT: WB, WC, UC-, UC, WB, WP, UC-, WT (arch/x86/mm/pat/memtype.c).
constexpr uint64_t kLinuxPat = 0x0407050600070106ull;
constexpr uint64_t kSfmaskLinux = 0x47700;  // TF|DF|IF|IOPL|AC|NT.
constexpr uint64_t kStarLinux = (0x23ull << 48) | (0x10ull << 32);

bool Has(const Guest& g, Feature f) { return g.profile().Has(f); }
bool HasPv(const Guest& g, Feature f) { return g.profile().HasPv(f); }

// --- linux-boot -------------------------------------------------------------------------------

void EnableX2Apic(Guest& g, uint32_t v) {
  const uint64_t base = g.Read(v, kMsrIa32ApicBase);
  g.Run(v);
  g.Wrmsr(v, kMsrIa32ApicBase, base | kApicBaseEnable | kApicBaseExtd);
  g.Run(v);
  g.Read(v, kMsrX2ApicId);
  g.Run(v);
  g.Read(v, kMsrX2ApicLvr);
  g.Run(v);
  g.Wrmsr(v, kMsrX2ApicTpr, 0);
  g.Run(v);
  g.Read(v, kMsrX2ApicLdr);
  g.Run(v);
  g.Wrmsr(v, kMsrX2ApicSpiv, 0x1ff);  // APIC software enable, spurious vector 0xff.
  g.Run(v);
  g.Wrmsr(v, kMsrX2ApicLvt0, v == 0 ? 0x700 : 0x10700);  // ExtINT on the BSP, masked on APs.
  g.Run(v);
  g.Wrmsr(v, kMsrX2ApicLvt1, 0x400);  // NMI.
  g.Run(v);
  g.Wrmsr(v, kMsrX2ApicLvtErr, 0xfe);
  g.Run(v);
  g.Wrmsr(v, kMsrX2ApicEsr, 0);
  g.Run(v);
  g.Read(v, kMsrX2ApicEsr);
  g.Run(v);
}

void ArmTscDeadline(Guest& g, uint32_t v, uint64_t delta) {
  if (g.profile().Has(Feature::kX2Apic)) {
    g.Wrmsr(v, kMsrX2ApicLvtt, 0x400ec);  // TSC-deadline mode (bits 18:17 = 10b), vector 0xec.
    g.Run(v);
  }
  g.Wrmsr(v, kMsrIa32TscDeadline, g.host_tsc() + delta);
  g.Run(v);
}

void KvmClockSetup(Guest& g, uint32_t v) {
  if (v == 0 && HasPv(g, Feature::kPvClocksource2)) {
    g.Wrmsr(v, kMsrKvmWallClockNew, kWallClockGpa);
    g.Run(v);
  }
  if (HasPv(g, Feature::kPvClocksource2)) {
    g.Wrmsr(v, kMsrKvmSystemTimeNew, (kPvtiGpa + 64 * v) | 1);
    g.Run(v);
  }
  if (HasPv(g, Feature::kPvSteal)) {
    g.Wrmsr(v, kMsrKvmStealTime, (kStealGpa + 64 * v) | 1);
    g.Run(v);
  }
  if (HasPv(g, Feature::kPvEoi)) {
    g.Wrmsr(v, kMsrKvmPvEoiEn, (kPvEoiGpa + 4 * v) | 1);
    g.Run(v);
  }
  if (HasPv(g, Feature::kPvAsyncPfInt)) {
    g.Wrmsr(v, kMsrKvmAsyncPfInt, 0xf3);
    g.Run(v);
    g.Wrmsr(v, kMsrKvmAsyncPfEn, (kAsyncPfGpa + 64 * v) | 1 | 8);  // ENABLED | DELIVERY_AS_INT.
    g.Run(v);
  }
}

void SyscallSetup(Guest& g, uint32_t v) {
  g.Wrmsr(v, kMsrStar, kStarLinux);
  g.Run(v);
  g.Wrmsr(v, kMsrLstar, kEntrySyscall64);
  g.Run(v);
  g.Wrmsr(v, kMsrCstar, kEntrySyscallCompat);
  g.Run(v);
  g.Wrmsr(v, kMsrSysenterCs, 0x10);
  g.Run(v);
  g.Wrmsr(v, kMsrSysenterEsp, kCpuEntryStack + 0x1000 * v);
  g.Run(v);
  g.Wrmsr(v, kMsrSysenterEip, kEntrySysenterCompat);
  g.Run(v);
  g.Wrmsr(v, kMsrSfmask, kSfmaskLinux);
  g.Run(v);
}

// What a Linux 6.x kernel reads and writes on each CPU beyond the basics, by profile (see
// docs/workloads.md for the kernel functions): ARCH_CAPABILITIES and TSX_CTRL (bugs.c, tsx.c),
// PERF_CAPABILITIES and the PMU probe/reset (events/intel/core.c, events/core.c
// check_hw_exists, events/amd/core.c), DEBUGCTL, XSS/XFD (fpu/xstate.c), CET (cpu/common.c
// setup_cet), UMWAIT_CONTROL (umwait.c), AMD SYSCFG/DE_CFG (mtrr/cleanup.c, cpu/amd.c), and on
// the nested profiles what loading kvm_intel / kvm_amd in the guest reads.
void LinuxFeatureProbe(Guest& g, uint32_t v, bool bsp) {
  const CpuProfile& p = g.profile();
  auto rd = [&](uint32_t index) {
    const uint64_t x = g.Read(v, index);
    g.Run(v);
    return x;
  };
  auto wr = [&](uint32_t index, uint64_t value) {
    g.Wrmsr(v, index, value);
    g.Run(v);
  };
  if (Has(g, Feature::kArchCapabilities)) {
    const uint64_t arch = rd(0x10a);  // x86_read_arch_cap_msr.
    if (bsp) rd(0x10a);               // cpu_set_bug_bits, then the mitigation selection.
    if ((arch & (1ull << 7)) && Has(g, Feature::kTsxCtrl)) {
      const uint64_t tsx = rd(0x122);  // tsx_disable(): RTM_DISABLE | CPUID_CLEAR.
      wr(0x122, tsx | 0x3);
    }
  }
  rd(0x1d9);  // DEBUGCTL (get_debugctlmsr).
  if (Has(g, Feature::kXsaves)) wr(0xda0, p.supported_xss & (1ull << 11));  // CET_USER if any.
  if (Has(g, Feature::kXfd)) wr(0x1c4, p.supported_xfd);  // xfd_set_state(init_fpstate.xfd).
  if (Has(g, Feature::kShstk) || Has(g, Feature::kIbt)) {
    wr(0x6a0, 0);  // setup_cet: U_CET 0, S_CET ENDBR_EN with IBT, PL0-3_SSP 0.
    wr(0x6a2, Has(g, Feature::kIbt) ? (1ull << 2) : 0);
    if (Has(g, Feature::kShstk)) {
      for (uint32_t i = 0; i < 4; ++i) wr(0x6a4 + i, 0);
    }
  }
  if (Has(g, Feature::kWaitpkg)) wr(0xe1, 100000);  // umwait_update_control_msr.
  // PMU: perf init on the BSP (PERF_CAPABILITIES, check_hw_exists), reset on every CPU.
  const uint32_t gp = p.pmu_version > 0 ? p.pmu_gp_counters : 0;
  if (p.intel() && gp > 0) {
    if (bsp && Has(g, Feature::kPdcm)) rd(0x345);
    if (bsp) {
      for (uint32_t i = 0; i < gp; ++i) rd(0x186 + i);
      if (p.pmu_version > 1) rd(0x38d);
      const uint32_t ctr0 = (p.perf_capabilities & (1ull << 13)) ? 0x4c1 : 0xc1;
      wr(ctr0, 0xabcd);
      rd(ctr0);
    }
    if (p.pmu_version > 1) {
      wr(0x38f, 0);  // GLOBAL_CTRL off.
      wr(0x390, ((1ull << gp) - 1) | (((1ull << p.pmu_fixed_counters) - 1) << 32));
    }
    for (uint32_t i = 0; i < gp; ++i) {
      wr(0x186 + i, 0);
      wr(0xc1 + i, 0);
    }
    if (p.pmu_version > 1) {
      wr(0x38d, 0);
      for (uint32_t i = 0; i < p.pmu_fixed_counters; ++i) wr(0x309 + i, 0);
      wr(0x186, 0x53003c);  // NMI watchdog: cycles, USR|OS|INT|EN.
      wr(0x38f, 1);
    }
  } else if (p.amd() && gp > 0) {
    const bool core = Has(g, Feature::kPerfCtrCore);
    auto ctl = [&](uint32_t i) { return core ? 0xc0010200 + 2 * i : 0xc0010000 + i; };
    auto ctr = [&](uint32_t i) { return core ? 0xc0010201 + 2 * i : 0xc0010004 + i; };
    const uint32_t n = core ? gp : 4;
    if (bsp) {
      for (uint32_t i = 0; i < n; ++i) rd(ctl(i));
      wr(ctr(0), 0xabcd);
      rd(ctr(0));
    }
    if (Has(g, Feature::kPerfMonV2)) {
      wr(0xc0000301, 0);                 // amd_pmu_cpu_reset: GLOBAL_CTL 0,
      wr(0xc0000302, (1ull << gp) - 1);  // GLOBAL_STATUS_CLR all counters.
    }
    for (uint32_t i = 0; i < n; ++i) {
      wr(ctl(i), 0);
      wr(ctr(i), 0);
    }
    wr(ctl(0), 0x530076);  // NMI watchdog: cycles not in halt.
    if (Has(g, Feature::kPerfMonV2)) wr(0xc0000301, 1);
  }
  if (p.amd()) {
    if (bsp) rd(0xc0010010);             // amd_special_default_mtrr: SYSCFG.
    const uint64_t de = rd(0xc0011029);  // init_amd: msr_set_bit(DE_CFG, LFENCE_SERIALIZE).
    if (p.de_cfg_supported & 2) wr(0xc0011029, de | 2);
  }
  // A nested-capable guest loads kvm_intel / kvm_amd (setup_vmcs_config / svm_hardware_enable).
  if (Has(g, Feature::kNestedVmx)) {
    rd(0x3a);
    for (uint32_t i = 0x480; i <= 0x491; ++i) rd(i);
  }
  if (p.amd() && Has(g, Feature::kSvm) && Has(g, Feature::kTscRateMsr)) {
    rd(0xc0010114);                                    // VM_CR: SVM disabled by BIOS?
    wr(0xc0010117, 0x7000000 + 0x1000 * uint64_t{v});  // VM_HSAVE_PA.
    wr(0xc0000104, 1ull << 32);                        // TSC_RATIO default.
  }
}

// One CPU's bring-up from startup_32 to the idle loop. Without long mode (a 32-bit kernel,
// arch/x86/kernel/head_32.S) the CPU stays in PAE protected mode: EFER.NXE only, SYSENTER but
// no 64-bit SYSCALL or segment-base MSRs.
void BootCpu(Guest& g, uint32_t v) {
  const bool bsp = v == 0;
  const bool intel = g.profile().intel();
  const bool lm = Has(g, Feature::kLm);
  // startup_32: protected mode, no paging yet. EFER.LME, then paging -> long mode.
  g.SetProtectedMode(v, 0x1000000 + 0x40);
  g.vcpu(v).regs.cr0 &= ~kCr0Pg;
  if (bsp) {
    g.Read(v, kMsrIa32ApicBase);
    g.Run(v);
  }
  uint64_t efer = g.Read(v, kMsrEfer);
  g.Run(v);
  if (lm) {
    g.Wrmsr(v, kMsrEfer, efer | kEferLme);
    g.EnterLongMode(v, kKernelText + 0x100 + 0x10 * v);
    // secondary_startup_64: EFER.SCE and NX.
    efer = g.Read(v, kMsrEfer);
    g.Run(v);
    g.Wrmsr(v, kMsrEfer, efer | kEferSce | (Has(g, Feature::kNx) ? kEferNxe : 0));
    g.Run(v);
    g.Wrmsr(v, kMsrGsBase, kPerCpuBase + 0x40000ull * v);
    g.Run(v);
  } else {
    if (Has(g, Feature::kNx)) g.Wrmsr(v, kMsrEfer, efer | kEferNxe);  // head_32.S: NX with PAE.
    g.SetProtectedMode(v, 0xc1000000 + 0x100 + 0x10 * v);
  }
  if (intel) {
    const uint64_t misc = g.Read(v, kMsrMiscEnable);
    g.Run(v);
    g.Wrmsr(v, kMsrMiscEnable, misc);  // Clearing XD_DISABLE (already clear): same value.
    g.Run(v);
    g.Read(v, kMsrFeatureControl);
    g.Run(v);
  }
  g.Wrmsr(v, kMsrBiosSignId, 0);  // Microcode revision probe: write 0, CPUID, read.
  g.Run(v);
  g.Read(v, kMsrBiosSignId);
  g.Run(v);
  if (Has(g, Feature::kTscAdjust)) {
    g.Read(v, kMsrIa32TscAdjust);
    g.Run(v);
  }
  // MTRRs (mtrr_bp_init / mtrr_ap_init) and PAT.
  const uint64_t cap = g.Read(v, kMsrMtrrCap);
  g.Run(v);
  g.Read(v, kMsrMtrrDefType);
  g.Run(v);
  const uint32_t vcnt = static_cast<uint32_t>(cap & 0xff);
  for (uint32_t i = 0; i < vcnt && i < 8; ++i) {
    g.Read(v, kMsrMtrrPhysBase0 + 2 * i);
    g.Run(v);
    g.Read(v, kMsrMtrrPhysBase0 + 2 * i + 1);
    g.Run(v);
  }
  if (bsp) {
    g.Read(v, kMsrMtrrFix64k00000);
    g.Run(v);
    g.Read(v, kMsrMtrrFix16k80000);
    g.Run(v);
    g.Read(v, kMsrMtrrFix16kA0000);
    g.Run(v);
    for (uint32_t i = 0; i < 8; ++i) {
      g.Read(v, kMsrMtrrFix4kC0000 + i);
      g.Run(v);
    }
  }
  g.Read(v, kMsrPat);
  g.Run(v);
  g.Wrmsr(v, kMsrPat, kLinuxPat);
  g.Run(v);
  // Machine check init: MCG_CAP, MCG_STATUS, then every bank's CTL and STATUS.
  const uint64_t mcg_cap = g.Read(v, kMsrMcgCap);
  g.Run(v);
  g.Wrmsr(v, kMsrMcgStatus, 0);
  g.Run(v);
  for (uint32_t b = 0; b < (mcg_cap & 0xff) && b < 32; ++b) {
    g.Wrmsr(v, kMsrMc0Ctl + 4 * b, ~0ull);
    g.Run(v);
    g.Wrmsr(v, kMsrMc0Ctl + 4 * b + 1, 0);
    g.Run(v);
  }
  if (lm) {
    SyscallSetup(g, v);
    g.Wrmsr(v, kMsrFsBase, 0);
    g.Run(v);
    g.Wrmsr(v, kMsrKernelGsBase, 0);
    g.Run(v);
  } else {
    // enable_sep_cpu (arch/x86/kernel/cpu/common.c): SYSENTER only.
    g.Wrmsr(v, kMsrSysenterCs, 0x60);
    g.Run(v);
    g.Wrmsr(v, kMsrSysenterEsp, kCpuEntryStack & 0xffffffffull);
    g.Run(v);
    g.Wrmsr(v, kMsrSysenterEip, 0xc1a00000);
    g.Run(v);
  }
  if (Has(g, Feature::kRdtscp) || Has(g, Feature::kRdpid)) {
    g.Wrmsr(v, kMsrTscAux, v);  // setup_getcpu: (node << 12) | cpu.
    g.Run(v);
  }
  if (Has(g, Feature::kSpecCtrl)) {
    g.Read(v, kMsrSpecCtrl);
    g.Run(v);
    g.Wrmsr(v, kMsrSpecCtrl, 0);
    g.Run(v);
  }
  LinuxFeatureProbe(g, v, bsp);
  KvmClockSetup(g, v);
  if (Has(g, Feature::kX2Apic)) EnableX2Apic(g, v);
  g.Read(v, kMsrIa32Tsc);
  g.Run(v);
}

absl::Status RunLinuxBoot(Guest& g, const WorkloadParams&) {
  const bool x2apic = Has(g, Feature::kX2Apic);
  BootCpu(g, 0);
  for (uint32_t ap = 1; ap < g.vcpu_count(); ++ap) {
    if (x2apic) {
      // INIT, then STARTUP with the trampoline at 0x9a000 (vector 0x9a).
      g.Wrmsr(0, kMsrX2ApicIcr, (uint64_t{ap} << 32) | 0x4500);
      g.Run(0);
      g.Wrmsr(0, kMsrX2ApicIcr, (uint64_t{ap} << 32) | 0x4600 | 0x9a);
      g.Run(0);
    }
    g.SetRealMode(ap, 0x9a000 & 0xffff);
    BootCpu(g, ap);
  }
  // Running: timers, reschedule IPIs, TSC reads, context switches, IBPB.
  for (uint32_t round = 0; round < 8; ++round) {
    for (uint32_t v = 0; v < g.vcpu_count(); ++v) {
      if (Has(g, Feature::kTscDeadline)) ArmTscDeadline(g, v, 3000000 + 1000 * round);
      g.Read(v, kMsrIa32Tsc);
      g.Run(v);
      if (Has(g, Feature::kLm)) {
        g.Wrmsr(v, kMsrFsBase, 0x00007f0000000000ull + 0x1000 * (round * 8 + v));
        g.Run(v);
      }
      if (Has(g, Feature::kSpecCtrl) || Has(g, Feature::kAmdIbpb)) {
        g.Wrmsr(v, kMsrPredCmd, 1);
        g.Run(v);
      }
      if (x2apic && g.vcpu_count() > 1) {
        const uint32_t dest = (v + 1 + round) % g.vcpu_count();
        g.Wrmsr(v, kMsrX2ApicIcr, (uint64_t{dest} << 32) | 0xfd);  // RESCHEDULE_VECTOR.
        g.Run(v);
        g.Wrmsr(v, kMsrX2ApicEoi, 0);
        g.Run(v);
      }
    }
  }
  return absl::OkStatus();
}

// Leaves real/protected mode for 64-bit mode the way startup_32 does: EFER.LME with paging off,
// then paging on (the CPU sets EFER.LMA).
void Boot64(Guest& g, uint32_t v, uint64_t rip) {
  g.SetProtectedMode(v, 0x1000000);
  g.vcpu(v).regs.cr0 &= ~kCr0Pg;
  g.Wrmsr(v, kMsrEfer, kEferLme | kEferSce | (Has(g, Feature::kNx) ? kEferNxe : 0));
  g.Run(v);
  g.EnterLongMode(v, rip);
}

// --- random -----------------------------------------------------------------------------------

uint64_t Canonical(uint64_t x) {
  return static_cast<uint64_t>(static_cast<int64_t>(x << 16) >> 16);
}

absl::Status RunRandom(Guest& g, const WorkloadParams& p) {
  const std::vector<MsrRow> rows = MsrTable(g.profile());
  // Candidate indices: every row's first/last index and their neighbours, range middles, and a
  // few indices nobody implements.
  std::vector<uint32_t> indices;
  std::vector<const MsrRow*> row_of;
  auto add = [&](uint32_t i, const MsrRow* r) {
    indices.push_back(i);
    row_of.push_back(r);
  };
  for (const MsrRow& r : rows) {
    add(r.index, &r);
    add(r.index - 1, nullptr);
    if (r.last != r.index) {
      add(r.last, &r);
      add(r.index + (r.last - r.index) / 2, &r);
    }
    add(r.last + 1, nullptr);
  }
  for (uint32_t i : {0x1234u, 0xabcu, 0x40000000u, 0x4b564dffu, 0xc0010000u, 0xffffffffu}) {
    add(i, nullptr);
  }
  for (uint32_t v = 0; v < g.vcpu_count(); ++v) {
    Boot64(g, v, 0xffffffff81000000ull + 0x100000 * v);
    if (Has(g, Feature::kX2Apic) && (v % 2 == 0)) EnableX2Apic(g, v);
  }
  static constexpr uint8_t kLengths[] = {2, 2, 2, 2, 2, 2, 3, 4, 5, 15};
  while (g.exits() < p.events) {
    const uint32_t v = static_cast<uint32_t>(g.Uniform(g.vcpu_count()));
    // Occasionally the guest changes mode.
    switch (g.Uniform(256)) {
      case 0:
        g.SetProtectedMode(v, g.Random() & 0xffffffffull);
        break;
      case 1:
        g.SetCompatibilityMode(v, g.Random() & 0xffffffffull);
        break;
      case 2:
      case 3:
        g.EnterLongMode(v, Canonical(g.Random()));
        break;
      default:
        break;
    }
    const uint64_t pick = g.Uniform(indices.size());
    const uint32_t index = indices[pick];
    const MsrRow* row = row_of[pick];
    const uint8_t len = kLengths[g.Uniform(sizeof(kLengths))];
    uint64_t rflags = kRflagsFixed1 | kRflagsIf;
    if (g.Uniform(64) == 0) rflags |= kRflagsTf;
    g.SetRflags(v, rflags);
    if (g.Uniform(64) == 0) g.SetInterruptibility(v, kBlockingBySti);
    const uint64_t rcx_junk = g.Uniform(4) == 0 ? g.Random() : 0;
    if (g.Uniform(2) == 0) {
      g.Rdmsr(v, index, len, rcx_junk);
    } else {
      uint64_t value = 0;
      switch (g.Uniform(10)) {
        case 0:
          value = 0;
          break;
        case 1:
          value = ~0ull;
          break;
        case 2:
          value = row != nullptr ? row->reset : g.Random();
          break;
        case 3:
          value = row != nullptr ? g.Random() & ~row->reserved_mask : g.Random();
          break;
        case 4:
          value = Canonical(g.Random());
          break;
        case 5:
          value = (row != nullptr ? row->reset : 0) ^ (1ull << g.Uniform(64));
          break;
        case 6:  // Guest-physical addresses in a small pool of pages, enable bit set.
          value = 0x3000000 + 0x1000 * g.Uniform(16) + 64 * g.Uniform(64) + 1;
          break;
        case 7:
          value = g.Random() & 0xff;
          break;
        default:
          value = g.Random();
          break;
      }
      if (row != nullptr && (row->checks & kCheckGuestMemory) != 0 && value < (4ull << 30) &&
          value >= 0x4000000) {
        value = 0x3000000 + (value & 0xfff);  // Keep guest-memory writes in the page pool.
      }
      const uint64_t rax_junk = g.Uniform(2) == 0 ? g.Random() : 0;
      const uint64_t rdx_junk = g.Uniform(2) == 0 ? g.Random() : 0;
      g.Wrmsr(v, index, value, len, rax_junk, rdx_junk);
    }
    g.SetInterruptibility(v, 0);
    g.Run(v);
  }
  return absl::OkStatus();
}

// --- scenarios for the golden corpus ----------------------------------------------------------

absl::Status RunEmpty(Guest&, const WorkloadParams&) { return absl::OkStatus(); }

// Every row of the profile's table: read, write the value read back, write the reset value,
// write all-ones, and read again. Covers every reference family and its faults.
absl::Status RunTableSweep(Guest& g, const WorkloadParams&) {
  const std::vector<MsrRow> rows = MsrTable(g.profile());
  Boot64(g, 0, kKernelText);
  if (Has(g, Feature::kX2Apic)) EnableX2Apic(g, 0);
  for (const MsrRow& r : rows) {
    std::vector<uint32_t> idx = {r.index};
    if (r.last != r.index) idx.push_back(r.last);
    for (uint32_t i : idx) {
      if (i == kMsrIa32ApicBase) continue;  // Keeps the APIC mode for the x2APIC rows.
      const uint64_t v = g.Read(0, i);
      g.Run(0);
      g.Wrmsr(0, i, v);
      g.Run(0);
      g.Wrmsr(0, i, r.reset);
      g.Run(0);
      g.Wrmsr(0, i, ~0ull);
      g.Run(0);
      g.Wrmsr(0, i, r.reserved_mask);
      g.Run(0);
      g.Read(0, i);
      g.Run(0);
    }
  }
  return absl::OkStatus();
}

absl::Status RunFaults(Guest& g, const WorkloadParams&) {
  Boot64(g, 0, kKernelText);
  g.Wrmsr(0, kMsrPat, 0x0007040600070402ull);  // Memory type 2 is reserved.
  g.Run(0);
  g.Wrmsr(0, kMsrPat, 0x0007040600070403ull);  // Type 3 too.
  g.Run(0);
  g.Wrmsr(0, kMsrLstar, 0xaaaaaaaaaaaaaaaaull);  // Non-canonical.
  g.Run(0);
  g.Wrmsr(0, kMsrFsBase, 0x0000800000000000ull);
  g.Run(0);
  g.Wrmsr(0, kMsrKernelGsBase, 0xffff7fffffffffffull);
  g.Run(0);
  g.Wrmsr(0, kMsrEfer, g.vcpu(0).regs.efer | (1ull << 1));  // Reserved EFER bit.
  g.Run(0);
  g.Wrmsr(0, kMsrEfer, g.vcpu(0).regs.efer & ~kEferLme);  // LME change with paging on.
  g.Run(0);
  g.Wrmsr(0, kMsrMtrrCap, 0);  // Read-only.
  g.Run(0);
  g.Wrmsr(0, kMsrMtrrDefType, 0x1000);  // Reserved bit.
  g.Run(0);
  g.Wrmsr(0, kMsrMtrrDefType, 0x2);  // Invalid type.
  g.Run(0);
  g.Wrmsr(0, kMsrMiscEnable, 0);  // Clears read-only bits 11 and 12.
  g.Run(0);
  g.Wrmsr(0, kMsrIa32ApicBase,
          kApicDefaultPhysBase | kApicBaseBsp | kApicBaseEnable | 0x1);  // Reserved bit 0.
  g.Run(0);
  g.Read(0, kMsrPredCmd);  // Write-only.
  g.Run(0);
  g.Wrmsr(0, kMsrPredCmd, 0x2);  // Reserved command bit.
  g.Run(0);
  g.Read(0, kMsrX2ApicTpr);  // x2APIC register in xAPIC mode.
  g.Run(0);
  g.Wrmsr(0, kMsrMc0Ctl + 1, 0x8000000000000000ull);  // MC0_STATUS: only 0.
  g.Run(0);
  g.Wrmsr(0, kMsrMc0Ctl + 4 * 64, 0);  // Bank beyond MCG_CAP.
  g.Run(0);
  g.Wrmsr(0, kMsrKvmStealTime, 0x2a04000 | 0x3e);  // Reserved bits 5:1.
  g.Run(0);
  g.Wrmsr(0, kMsrKvmPollControl, 2);  // Only bit 0.
  g.Run(0);
  g.Wrmsr(0, kMsrFeatureControl, 1);  // Lock...
  g.Run(0);
  g.Wrmsr(0, kMsrFeatureControl, 1);  // ...then any write faults.
  g.Run(0);
  g.Wrmsr(0, kMsrTscAux, 0x100000000ull);  // Bits 63:32 reserved (Intel).
  g.Run(0);
  return absl::OkStatus();
}

absl::Status RunUnknownMsrs(Guest& g, const WorkloadParams&) {
  Boot64(g, 0, kKernelText);
  for (uint32_t i : {0x1234u, 0xabcu, 0x40000000u, 0xc0011029u, 0x4b564dfeu}) {
    g.Rdmsr(0, i);
    g.Run(0);
    g.Wrmsr(0, i, 0x1122334455667788ull);
    g.Run(0);
  }
  g.Read(0, kMsrPat);  // A known MSR after the unknown ones.
  g.Run(0);
  return absl::OkStatus();
}

absl::Status RunRipWrap(Guest& g, const WorkloadParams&) {
  // 32-bit protected mode at the top of the 4 GiB space: RIP wraps to 0 (ref: SDM Vol1 §3.5).
  g.SetProtectedMode(0, 0xfffffffe);
  g.Read(0, kMsrPat);
  g.SetRip(0, 0xfffffffd);
  g.Wrmsr(0, kMsrPat, kLinuxPat, 3);  // A prefixed WRMSR (length 3).
  // A faulting access at the top does not move RIP.
  g.SetRip(0, 0xfffffffe);
  g.Wrmsr(0, kMsrPat, 0x02);
  // Compatibility mode (EFER.LMA, CS.L=0) wraps at 32 bits too.
  Boot64(g, 0, kKernelText);
  g.SetCompatibilityMode(0, 0xffffffff);
  g.Read(0, kMsrIa32Tsc);
  // 64-bit mode does not wrap at 32 bits.
  g.EnterLongMode(0, 0x00000000fffffffeull);
  g.Read(0, kMsrPat);
  return absl::OkStatus();
}

absl::Status RunSingleStep(Guest& g, const WorkloadParams&) {
  Boot64(g, 0, kKernelText);
  g.SetRflags(0, kRflagsFixed1 | kRflagsTf);
  g.Read(0, kMsrPat);  // Retired: #DB (single-step) pending.
  g.Run(0);
  g.Wrmsr(0, kMsrPat, kLinuxPat);  // Retired write: #DB.
  g.Run(0);
  g.Wrmsr(0, kMsrPat, 0x02);  // Faults: #GP, no #DB.
  g.Run(0);
  g.Rdmsr(0, 0x1234);  // Unknown MSR: #GP.
  g.Run(0);
  g.SetRflags(0, kRflagsFixed1 | kRflagsIf);
  g.SetInterruptibility(0, kBlockingBySti);  // sti; wrmsr: the STI shadow ends.
  g.Wrmsr(0, kMsrPat, kLinuxPat);
  g.Run(0);
  g.SetInterruptibility(0, kBlockingByMovSs);
  g.Read(0, kMsrPat);
  g.Run(0);
  return absl::OkStatus();
}

absl::Status RunKvmClock(Guest& g, const WorkloadParams&) {
  for (uint32_t v = 0; v < g.vcpu_count(); ++v) Boot64(g, v, kKernelText + 0x1000 * v);
  for (uint32_t v = 0; v < g.vcpu_count(); ++v) KvmClockSetup(g, v);
  // Re-enabling and moving the structures; disabling; the wall clock again.
  g.Wrmsr(0, kMsrKvmSystemTimeNew, 0);
  g.Run(0);
  g.Wrmsr(0, kMsrKvmSystemTimeNew, (kPvtiGpa + 0x800) | 1);
  g.Run(0);
  g.Wrmsr(0, kMsrKvmWallClockNew, kWallClockGpa);
  g.Run(0);
  for (uint32_t v = 0; v < g.vcpu_count(); ++v) {
    g.Read(v, kMsrKvmSystemTimeNew);
    g.Run(v);
    g.Read(v, kMsrKvmWallClockNew);
    g.Run(v);
    g.Read(v, kMsrIa32Tsc);
    g.Run(v);
  }
  // Legacy MSRs 0x11/0x12 and an address outside guest memory (silently ignored).
  g.Wrmsr(1 % g.vcpu_count(), 0x12, 0x2a0a000 | 1);
  g.Run(1 % g.vcpu_count());
  g.Wrmsr(0, 0x11, 0x2a0b000);
  g.Run(0);
  g.Wrmsr(0, kMsrKvmWallClockNew, 0x7ffff000000ull);
  g.Run(0);
  return absl::OkStatus();
}

absl::Status RunSmp(Guest& g, const WorkloadParams& p) {
  for (uint32_t v = 0; v < g.vcpu_count(); ++v) {
    Boot64(g, v, kKernelText + 0x2000 * v);
    EnableX2Apic(g, v);
  }
  for (uint32_t round = 0; round < 4; ++round) {
    for (uint32_t v = 0; v < g.vcpu_count(); ++v) {
      const uint32_t dest = (v + 1 + round) % g.vcpu_count();
      g.Wrmsr(v, kMsrX2ApicIcr, (uint64_t{dest} << 32) | 0xfd);
      g.Run(v);
      g.Wrmsr(v, kMsrX2ApicSelfIpi, 0xf0);
      g.Run(v);
      g.Wrmsr(v, kMsrX2ApicEoi, 0);
      g.Run(v);
      ArmTscDeadline(g, v, 100000 * (round + 1));
      g.Read(v, kMsrIa32TscDeadline);
      g.Run(v);
      g.Wrmsr(v, kMsrGsBase, kPerCpuBase + 0x40000ull * v);
      g.Run(v);
    }
  }
  (void)p;
  return absl::OkStatus();
}

// --- windows-boot -----------------------------------------------------------------------------
// A Windows 10/Server guest with QEMU's hv-* enlightenments, per the Hyper-V TLFS ("Hypervisor
// Top Level Functional Specification": guest OS id before the hypercall page, per-VP assist
// page, reference TSC page, SynIC and synthetic timers) as Windows and Linux's Hyper-V guest
// code drive it (arch/x86/hyperv/hv_init.c, drivers/hv/hv.c, drivers/clocksource/
// hyperv_timer.c); docs/workloads.md.

// Windows 10 2004 (build 19041): vendor Microsoft (1), OS Windows NT (4), version 10.0.
constexpr uint64_t kWindowsGuestOsId = (1ull << 48) | (4ull << 40) | (10ull << 32) | 19041;
constexpr uint64_t kHypercallPage = 0x1ff000;
constexpr uint64_t kRefTscPage = 0x1fe000;
constexpr uint64_t kVpAssistPages = 0x1e0000;  // One page per VP.
constexpr uint64_t kSimpPages = 0x1c0000;
constexpr uint64_t kSiefpPages = 0x1a0000;
constexpr uint64_t kNtKernel = 0xfffff80000000000ull;
constexpr uint64_t kVmbusVector = 0x2f;  // SINT2 (VMBUS_MESSAGE_SINT).
constexpr uint64_t kClockVector = 0xd1;  // Windows' clock interrupt vector (x64).
constexpr uint64_t kTick100ns = 156250;  // 15.625 ms.
constexpr uint64_t kHvStimerConfig = 1 | (1ull << 3) | (kClockVector << 4) | (1ull << 12);

void WindowsCpu(Guest& g, uint32_t v) {
  // Firmware (BSP) or the AP start-up code enters long mode: EFER.LME/SCE/NXE, then paging.
  if (v != 0) Boot64(g, v, kNtKernel + 0x400000 + 0x1000 * v);
  // KiInitializeProcessor: syscall entry, KPCR in GS, PAT, TSC_AUX = processor number.
  g.Wrmsr(v, kMsrGsBase, kNtKernel + 0x1f0000 + 0x10000 * v);
  g.Run(v);
  g.Wrmsr(v, kMsrKernelGsBase, 0);
  g.Run(v);
  g.Wrmsr(v, kMsrStar, 0x0023001000000000ull);
  g.Run(v);
  g.Wrmsr(v, kMsrLstar, kNtKernel + 0x20c000);
  g.Run(v);
  g.Wrmsr(v, kMsrCstar, kNtKernel + 0x20b000);
  g.Run(v);
  g.Wrmsr(v, kMsrSfmask, 0x4700);
  g.Run(v);
  g.Wrmsr(v, kMsrPat, 0x0007010600070106ull);
  g.Run(v);
  if (Has(g, Feature::kRdtscp)) {
    g.Wrmsr(v, kMsrTscAux, v);
    g.Run(v);
  }
  if (!Has(g, Feature::kHyperV)) return;
  // Per-VP enlightenments: VP index, VP assist page (apic_assist / PV EOI), SynIC, stimer 0.
  g.Read(v, kHvMsrVpIndex);
  g.Run(v);
  g.Wrmsr(v, kHvMsrVpAssistPage, (kVpAssistPages + 0x1000 * v) | 1);
  g.Run(v);
  g.Wrmsr(v, kHvMsrTpr, 0);
  g.Run(v);
  g.Read(v, kHvMsrSversion);
  g.Run(v);
  g.Wrmsr(v, kHvMsrSimp, (kSimpPages + 0x1000 * v) | 1);
  g.Run(v);
  g.Wrmsr(v, kHvMsrSiefp, (kSiefpPages + 0x1000 * v) | 1);
  g.Run(v);
  g.Wrmsr(v, kHvMsrSint0 + 2, kVmbusVector);  // VMBus messages.
  g.Run(v);
  g.Wrmsr(v, kHvMsrScontrol, 1);
  g.Run(v);
  g.Wrmsr(v, kHvMsrStimer0Config, kHvStimerConfig);  // Direct mode, auto-enable, clock vector.
  g.Run(v);
  g.Wrmsr(v, kHvMsrStimer0Count, g.Read(v, kHvMsrTimeRefCount) + kTick100ns);
  g.Run(v);
}

absl::Status RunWindowsBoot(Guest& g, const WorkloadParams&) {
  const bool hv = Has(g, Feature::kHyperV);
  // Partition-wide set-up on the BSP (HvlInitialize / hyperv_init): frequencies, guest OS id,
  // hypercall page, reference TSC page, crash-notification capability.
  Boot64(g, 0, kNtKernel + 0x400000);
  if (hv) {
    g.Read(0, kHvMsrTscFrequency);
    g.Run(0);
    g.Read(0, kHvMsrApicFrequency);
    g.Run(0);
    g.Wrmsr(0, kHvMsrGuestOsId, kWindowsGuestOsId);
    g.Run(0);
    const uint64_t hc = g.Read(0, kHvMsrHypercall);
    g.Run(0);
    g.Wrmsr(0, kHvMsrHypercall, (hc & 0xffe) | kHypercallPage | 1);
    g.Run(0);
    g.Wrmsr(0, kHvMsrReferenceTsc, kRefTscPage | 1);
    g.Run(0);
    g.Read(0, kHvMsrTimeRefCount);
    g.Run(0);
    g.Read(0, kHvMsrCrashCtl);
    g.Run(0);
  }
  WindowsCpu(g, 0);
  // Application processors: INIT / STARTUP through the synthetic ICR (xAPIC destination in bits
  // 63:56), then the same per-VP set-up.
  for (uint32_t ap = 1; ap < g.vcpu_count(); ++ap) {
    if (hv) {
      g.Wrmsr(0, kHvMsrIcr, (uint64_t{ap} << 56) | 0x4500);
      g.Run(0);
      g.Wrmsr(0, kHvMsrIcr, (uint64_t{ap} << 56) | 0x4600 | 0x10);
      g.Run(0);
    }
    WindowsCpu(g, ap);
  }
  if (!hv) return absl::OkStatus();
  // Running: clock ticks re-arm stimer 0, EOIs through the synthetic EOI MSR, IRQL changes
  // through TPR, VMBus messages acknowledged with EOM, reschedule IPIs, time reads.
  for (uint32_t round = 0; round < 8; ++round) {
    for (uint32_t v = 0; v < g.vcpu_count(); ++v) {
      const uint64_t now = g.Read(v, kHvMsrTimeRefCount);
      g.Run(v);
      g.Wrmsr(v, kHvMsrStimer0Count, now + kTick100ns);
      g.Run(v);
      g.Wrmsr(v, kHvMsrEoi, 0);
      g.Run(v);
      g.Wrmsr(v, kHvMsrTpr, round % 2 == 0 ? 0x20 : 0);  // DISPATCH_LEVEL and back.
      g.Run(v);
      if (round % 4 == 3) {
        g.Wrmsr(v, kHvMsrEom, 0);
        g.Run(v);
      }
      if (g.vcpu_count() > 1) {
        const uint32_t dest = (v + 1 + round) % g.vcpu_count();
        g.Wrmsr(v, kHvMsrIcr, (uint64_t{dest} << 56) | 0xe1);
        g.Run(v);
      }
    }
  }
  return absl::OkStatus();
}

void SetupRealMode(Machine& m, const WorkloadParams&) {
  for (Vcpu& v : m.vcpus) {
    v.regs.rip = 0xfff0;
    v.regs.cr0 = 0x60000010;
  }
}

std::vector<WorkloadDef> MakeWorkloads() {
  std::vector<WorkloadDef> w;
  w.push_back({"linux-boot",
               "Linux guest boot per CPU profile: long mode, MTRR/PAT, syscall MSRs, MCE banks, "
               "kvm-clock, x2APIC with INIT/SIPI and IPIs, TSC-deadline timers, SPEC_CTRL",
               "intel-icx", 4, UnknownMsrPolicy::kInjectGp, SetupRealMode, RunLinuxBoot, ""});
  w.push_back({"windows-boot",
               "Windows guest boot with Hyper-V enlightenments: guest OS id, hypercall page, "
               "reference TSC page, VP index and assist page, SynIC, stimer 0, synthetic "
               "EOI/ICR/TPR (docs/workloads.md)",
               "hyperv", 2, UnknownMsrPolicy::kInjectGp, nullptr, RunWindowsBoot, ""});
  w.push_back({"random",
               "--events random exits at table indices and neighbours, random values with junk "
               "upper halves, random lengths and modes (--seed)",
               "intel-icx", 4, UnknownMsrPolicy::kInjectGp, nullptr, RunRandom, ""});
  // Scenarios (workloads/golden_traces.h lists them with one line each).
  w.push_back({"empty", "No exits: header, snapshot and trailer only", "intel-icx", 1,
               UnknownMsrPolicy::kInjectGp, nullptr, RunEmpty, ""});
  w.push_back({"table-sweep", "Every MSR table row: read, write back, reset, all-ones, reserved",
               "intel-icx", 1, UnknownMsrPolicy::kInjectGp, nullptr, RunTableSweep, ""});
  w.push_back({"faults", "Writes that #GP: PAT types, non-canonical, EFER, MTRR, APIC_BASE...",
               "intel-icx", 1, UnknownMsrPolicy::kInjectGp, nullptr, RunFaults, ""});
  w.push_back({"unknown-msr-gp", "Unknown MSRs under inject-gp: #GP(0), RIP unchanged", "intel-icx",
               1, UnknownMsrPolicy::kInjectGp, nullptr, RunUnknownMsrs, ""});
  w.push_back({"unknown-msr-ignore",
               "Unknown MSRs under ignore: reads 0, writes dropped, RIP advances", "intel-icx", 1,
               UnknownMsrPolicy::kIgnore, nullptr, RunUnknownMsrs, ""});
  w.push_back({"unknown-msr-fail", "Unknown MSRs under fail: recorded VMM errors", "intel-icx", 1,
               UnknownMsrPolicy::kFail, nullptr, RunUnknownMsrs, ""});
  w.push_back({"rip-wrap-32", "RIP wraps at 32 bits in protected and compatibility mode",
               "intel-icx", 1, UnknownMsrPolicy::kInjectGp, nullptr, RunRipWrap, ""});
  w.push_back({"single-step", "RFLAGS.TF: #DB after retired exits, not after #GP; STI shadow",
               "intel-icx", 1, UnknownMsrPolicy::kInjectGp, nullptr, RunSingleStep, ""});
  w.push_back({"kvm-clock", "kvm-clock wall clock and system time: guest-memory writes",
               "intel-icx", 2, UnknownMsrPolicy::kInjectGp, nullptr, RunKvmClock, ""});
  w.push_back({"smp-ipi", "8 vCPUs in x2APIC mode: ICR IPIs, self-IPIs, EOI, TSC deadlines",
               "intel-icx", 8, UnknownMsrPolicy::kInjectGp, nullptr, RunSmp, ""});
  w.push_back({"torn-tail", "A boot recording cut off mid-record (replays clean, exit 3)",
               "intel-icx", 2, UnknownMsrPolicy::kInjectGp, SetupRealMode, RunLinuxBoot,
               "torn-tail"});
  w.push_back({"no-trailer", "A boot recording never closed (replays clean, exit 3)", "amd-zen3", 1,
               UnknownMsrPolicy::kInjectGp, SetupRealMode, RunLinuxBoot, "no-trailer"});
  return w;
}

}  // namespace

Guest::Guest(Machine& machine, Recorder& recorder, uint64_t seed)
    : machine_(machine),
      recorder_(recorder),
      vendor_(machine.profile->vendor),
      rng_(SplitMix64(seed ^ 0x6d73727472616365ull)) {}

uint64_t Guest::Random() {
  rng_ = SplitMix64(rng_);
  return rng_;
}

void Guest::SetRealMode(uint32_t v, uint64_t rip) {
  VcpuRegs& r = vcpu(v).regs;
  r.cr0 = 0x60000010;
  r.cr4 = 0;
  r.efer &= ~kEferLma;
  r.cs_l = false;
  r.rip = rip;
}

void Guest::SetProtectedMode(uint32_t v, uint64_t rip) {
  VcpuRegs& r = vcpu(v).regs;
  r.cr0 = kCr0Pe | kCr0Pg | 0x10;
  r.cr4 = 0;
  r.efer &= ~kEferLma;
  r.cs_l = false;
  r.rip = rip & 0xffffffffull;
}

void Guest::EnterLongMode(uint32_t v, uint64_t rip) {
  VcpuRegs& r = vcpu(v).regs;
  r.cr4 |= kCr4Pae;
  r.cr0 |= kCr0Pe | kCr0Pg;
  if ((r.efer & kEferLme) != 0) r.efer |= kEferLma;
  r.cs_l = r.long_mode_active();
  r.rip = r.cs_l ? rip : (rip & 0xffffffffull);
}

void Guest::SetCompatibilityMode(uint32_t v, uint64_t rip) {
  EnterLongMode(v, rip);
  VcpuRegs& r = vcpu(v).regs;
  r.cs_l = false;
  r.rip = rip & 0xffffffffull;
}

Exit Guest::MakeExit(Access access, uint8_t length) {
  Exit e = vendor_ == Vendor::kAmdSvm
               ? Exit::SvmMsr(access, length)
               : (access == Access::kRead ? Exit::Rdmsr(length) : Exit::Wrmsr(length));
  host_tsc_ += 200 + Uniform(800);
  e.host_tsc = host_tsc_;
  // A 3 GHz host booted at 2025-01-01T00:00:00Z.
  e.host_wall_ns = 1735689600000000000ull + host_tsc_ / 3;
  return e;
}

absl::StatusOr<Outcome> Guest::Handle(uint32_t v, const Exit& exit) {
  Vcpu& cpu = vcpu(v);
  cpu.regs.pending = PendingException{};  // The previous exception was delivered.
  ++exits_;
  if (progress_ && exits_ % (1u << 16) == 0) progress_(exits_);
  absl::StatusOr<Outcome> out = recorder_.Handle(exit, cpu, machine_.memory);
  if (save_restore_every_ != 0 && exits_ % save_restore_every_ == 0) {
    // A handler's VMM failure is recorded as a VMM-error host event; the workload goes on.
    (void)SaveRestore(v);
  }
  return out;
}

absl::Status Guest::SaveRestore(uint32_t v) {
  const Exit env = MakeExit(Access::kRead, 2);  // The host clock at this point.
  return recorder_.SaveRestore(vcpu(v), machine_.memory, env.host_tsc, env.host_wall_ns);
}

bool Guest::Rdmsr(uint32_t v, uint32_t index, uint8_t length, uint64_t rcx_junk) {
  VcpuRegs& r = vcpu(v).regs;
  r.reg(Gpr::kRcx) = (rcx_junk << 32) | index;
  const absl::StatusOr<Outcome> out = Handle(v, MakeExit(Access::kRead, length));
  return out.ok() && out->kind == Outcome::Kind::kRetired;
}

bool Guest::Wrmsr(uint32_t v, uint32_t index, uint64_t value, uint8_t length, uint64_t rax_junk,
                  uint64_t rdx_junk) {
  VcpuRegs& r = vcpu(v).regs;
  r.reg(Gpr::kRcx) = index;
  r.reg(Gpr::kRax) = (rax_junk << 32) | (value & 0xffffffffull);
  r.reg(Gpr::kRdx) = (rdx_junk << 32) | (value >> 32);
  const absl::StatusOr<Outcome> out = Handle(v, MakeExit(Access::kWrite, length));
  return out.ok() && out->kind == Outcome::Kind::kRetired;
}

uint64_t Guest::Read(uint32_t v, uint32_t index) {
  VcpuRegs& r = vcpu(v).regs;
  r.reg(Gpr::kRcx) = index;
  const absl::StatusOr<Outcome> out = Handle(v, MakeExit(Access::kRead, 2));
  return out.ok() && out->kind == Outcome::Kind::kRetired ? out->value : 0;
}

void Guest::Run(uint32_t v, uint64_t bytes) {
  VcpuRegs& r = vcpu(v).regs;
  r.pending = PendingException{};
  uint64_t rip = r.rip + (bytes != 0 ? bytes : 4 + Uniform(60));
  if (!r.in_64bit_mode()) rip &= 0xffffffffull;
  r.rip = rip;
  host_tsc_ += 1000 + Uniform(20000);
}

const std::vector<WorkloadDef>& Workloads() {
  static const auto* w = new std::vector<WorkloadDef>(MakeWorkloads());
  return *w;
}

const WorkloadDef* FindWorkload(absl::string_view name) {
  for (const WorkloadDef& w : Workloads()) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

}  // namespace msrtrace::workloads
