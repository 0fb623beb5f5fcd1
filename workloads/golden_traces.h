// The named golden traces in corpus/golden/: one value per file, each with what it covers.
// Every file is produced by `msrtrace record --golden=NAME -o corpus/golden/NAME.trace`
// (tools/regen_golden.sh regenerates all), replayed clean by ctest (corpus/CMakeLists.txt), and
// checked against a fresh recording so the committed files never drift. Traces whose name starts
// with "incomplete-" are deliberately cut short: they replay clean with exit status 3.
#ifndef MSRTRACE_CORPUS_GOLDEN_TRACES_H_
#define MSRTRACE_CORPUS_GOLDEN_TRACES_H_

#include <cstddef>
#include <cstdint>

namespace msrtrace {

enum class GoldenTrace {
  kEmpty,                   // No exits: header, snapshot and trailer only.
  kLinuxBootIntelIcx,       // Linux boot on intel-icx, 4 vCPUs: long mode, MTRR/PAT, MCE,
                            // syscall MSRs, kvm-clock, x2APIC INIT/SIPI/IPIs, TSC deadline.
  kLinuxBootAmdZen3,        // Linux boot on amd-zen3 (SVM exit encoding), 2 vCPUs.
  kLinuxBootIntelMinimal,   // Linux boot on intel-minimal: no x2APIC/PV, feature-absent #GPs.
  kTableSweepIntelIcx,      // Every table row of intel-icx: read, write back, reset, ~0, rsvd.
  kTableSweepAmdZen3,       // The same on amd-zen3.
  kTableSweepIntelMinimal,  // The same on intel-minimal.
  kFaults,                  // Writes that #GP: PAT types 2/3, non-canonical, EFER, MTRR...
  kUnknownMsrInjectGp,      // Unknown MSRs under inject-gp: #GP(0), RIP unchanged.
  kUnknownMsrIgnore,        // Unknown MSRs under ignore: reads 0, writes dropped, RIP moves.
  kUnknownMsrFail,          // Unknown MSRs under fail: recorded VMM errors.
  kRipWrap32,               // RIP wraps at 32 bits in protected and compatibility mode.
  kSingleStep,              // RFLAGS.TF: #DB after retired exits, none after #GP; STI shadow.
  kKvmClock,                // kvm-clock wall clock and system time: guest-memory writes.
  kSmpIpi,                  // 8 vCPUs in x2APIC mode: IPIs, self-IPIs, EOI, TSC deadlines.
  kRandomIntelIcx,          // 2000 random exits on intel-icx (seed 1), 4 vCPUs.
  kRandomAmdZen3,           // 1000 random exits on amd-zen3 (seed 2), 3 vCPUs.
  kIncompleteTornTail,      // A boot recording cut off mid-record: exit 3, clean.
  kIncompleteNoTrailer,     // A boot recording never closed (no trailer): exit 3, clean.
  kWindowsBootHyperv,       // Windows boot with Hyper-V enlightenments on hyperv, 2 vCPUs.
  kCount,
};

struct GoldenTraceDef {
  GoldenTrace id;
  const char* name;      // File name without ".trace".
  const char* workload;  // workloads/workloads.h.
  const char* profile;
  uint32_t vcpus;
  uint64_t seed;
  uint64_t events;  // For "random".
};

inline constexpr GoldenTraceDef kGoldenTraces[] = {
    {GoldenTrace::kEmpty, "empty", "empty", "intel-icx", 1, 1, 0},
    {GoldenTrace::kLinuxBootIntelIcx, "linux-boot-intel-icx", "linux-boot", "intel-icx", 4, 1, 0},
    {GoldenTrace::kLinuxBootAmdZen3, "linux-boot-amd-zen3", "linux-boot", "amd-zen3", 2, 1, 0},
    {GoldenTrace::kLinuxBootIntelMinimal, "linux-boot-intel-minimal", "linux-boot", "intel-minimal",
     1, 1, 0},
    {GoldenTrace::kTableSweepIntelIcx, "table-sweep-intel-icx", "table-sweep", "intel-icx", 1, 1,
     0},
    {GoldenTrace::kTableSweepAmdZen3, "table-sweep-amd-zen3", "table-sweep", "amd-zen3", 1, 1, 0},
    {GoldenTrace::kTableSweepIntelMinimal, "table-sweep-intel-minimal", "table-sweep",
     "intel-minimal", 1, 1, 0},
    {GoldenTrace::kFaults, "faults", "faults", "intel-icx", 1, 1, 0},
    {GoldenTrace::kUnknownMsrInjectGp, "unknown-msr-gp", "unknown-msr-gp", "intel-icx", 1, 1, 0},
    {GoldenTrace::kUnknownMsrIgnore, "unknown-msr-ignore", "unknown-msr-ignore", "intel-icx", 1, 1,
     0},
    {GoldenTrace::kUnknownMsrFail, "unknown-msr-fail", "unknown-msr-fail", "intel-icx", 1, 1, 0},
    {GoldenTrace::kRipWrap32, "rip-wrap-32", "rip-wrap-32", "intel-icx", 1, 1, 0},
    {GoldenTrace::kSingleStep, "single-step", "single-step", "intel-icx", 1, 1, 0},
    {GoldenTrace::kKvmClock, "kvm-clock", "kvm-clock", "intel-icx", 2, 1, 0},
    {GoldenTrace::kSmpIpi, "smp-ipi", "smp-ipi", "intel-icx", 8, 1, 0},
    {GoldenTrace::kRandomIntelIcx, "random-intel-icx", "random", "intel-icx", 4, 1, 2000},
    {GoldenTrace::kRandomAmdZen3, "random-amd-zen3", "random", "amd-zen3", 3, 2, 1000},
    {GoldenTrace::kIncompleteTornTail, "incomplete-torn-tail", "torn-tail", "intel-icx", 2, 1, 0},
    {GoldenTrace::kIncompleteNoTrailer, "incomplete-no-trailer", "no-trailer", "amd-zen3", 1, 1, 0},
    {GoldenTrace::kWindowsBootHyperv, "windows-boot-hyperv", "windows-boot", "hyperv", 2, 1, 0},
};
static_assert(sizeof(kGoldenTraces) / sizeof(kGoldenTraces[0]) ==
                  static_cast<size_t>(GoldenTrace::kCount),
              "one definition per GoldenTrace");

inline const GoldenTraceDef& GoldenTraceOf(GoldenTrace t) {
  return kGoldenTraces[static_cast<int>(t)];
}

}  // namespace msrtrace

#endif  // MSRTRACE_CORPUS_GOLDEN_TRACES_H_
