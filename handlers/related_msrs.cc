// The related MSRs of the reference rows (DeclaredRow::related, harness/core/declared_rows.h): MSRs
// whose per-vCPU state KVM couples, so a write to one may change what another reads on the same
// vCPU, and must not on any other vCPU. The vcpu-isolation oracle reads them on the other vCPUs
// around each retired write to the row. Indices are architectural (SDM Vol4); the couplings are
// KVM's:
//   TSC / TSC_ADJUST / TSC_DEADLINE: a guest TSC write moves TSC_ADJUST by the same delta, a
//     TSC_ADJUST write moves the TSC, and the deadline is compared with the TSC (Linux
//     arch/x86/kvm x86.c kvm_set_msr_common MSR_IA32_TSC / MSR_IA32_TSC_ADJUST; lapic.c
//     kvm_set_lapic_tscdeadline_msr);
//   APIC_BASE / x2APIC registers: the x2APIC enable bit makes the 0x800-0x8ff registers
//     readable, and the local APIC timer reads the deadline (lapic.c kvm_apic_set_base,
//     kvm_x2apic_msr_read);
//   MTRR_DEF_TYPE / fixed and variable ranges: DEF_TYPE's E and FE bits enable the ranges,
//     which share one per-vCPU MTRR state (mtrr.c kvm_mtrr_set_msr, mtrr_is_enabled);
//   PERF_GLOBAL_CTRL / PERFEVTSEL / FIXED_CTR_CTRL / counters: one per-vCPU PMU whose enable
//     state the global control gates (pmu.c kvm_pmu_set_msr, intel_pmu_set_msr,
//     amd_pmu_set_msr).
#include <cstdint>
#include <initializer_list>

#include "handlers/msr_table.h"

namespace msrtrace {
namespace {

struct Coupling {
  uint32_t first, last;                       // Rows starting in [first, last] get...
  std::initializer_list<IndexRange> related;  // ...these related ranges.
};

// x2APIC registers a local APIC's state shows in (ID, version, TPR, LDR, SVR, LVT timer,
// timer initial / current count): enough to see a mode switch or a shared APIC.
constexpr IndexRange kX2ApicState[] = {
    {0x802, 0x803}, {0x808, 0x808}, {0x80d, 0x80d}, {0x80f, 0x80f}, {0x832, 0x832}, {0x838, 0x839},
};

const Coupling* Couplings(size_t* n) {
  static const Coupling kCouplings[] = {
      // Time.
      {0x10, 0x10, {{0x3b, 0x3b}, {0x6e0, 0x6e0}}},  // TSC -> TSC_ADJUST, TSC_DEADLINE.
      {0x3b, 0x3b, {{0x10, 0x10}, {0x6e0, 0x6e0}}},  // TSC_ADJUST -> TSC, TSC_DEADLINE.
      {0x6e0, 0x6e0, {{0x10, 0x10}, {0x3b, 0x3b}, {0x832, 0x832}, {0x838, 0x839}}},
      // Local APIC.
      {0x1b,
       0x1b,
       {kX2ApicState[0],
        kX2ApicState[1],
        kX2ApicState[2],
        kX2ApicState[3],
        kX2ApicState[4],
        kX2ApicState[5],
        {0x6e0, 0x6e0}}},
      {0x800, 0x8ff, {{0x1b, 0x1b}}},  // x2APIC registers -> APIC_BASE.
      // MTRRs (IA32_MTRRCAP 0xfe, PhysBase/PhysMask 0x200-0x21f, fixed 0x250-0x26f).
      {0x2ff,
       0x2ff,
       {{0xfe, 0xfe}, {0x200, 0x21f}, {0x250, 0x250}, {0x258, 0x259}, {0x268, 0x26f}}},
      {0x200, 0x21f, {{0x2ff, 0x2ff}}},
      {0x250, 0x26f, {{0x2ff, 0x2ff}}},
      // Intel PMU: PMC 0xc1-, PERFEVTSEL 0x186-, fixed counters 0x309-, FIXED_CTR_CTRL 0x38d,
      // GLOBAL_STATUS 0x38e, GLOBAL_CTRL 0x38f, full-width PMC 0x4c1-.
      {0x38f, 0x38f, {{0xc1, 0xc8}, {0x186, 0x18d}, {0x309, 0x30b}, {0x38d, 0x38e}}},
      {0x186, 0x18d, {{0xc1, 0xc8}, {0x38f, 0x38f}}},
      {0x38d, 0x38d, {{0x309, 0x30b}, {0x38f, 0x38f}}},
      {0xc1, 0xc8, {{0x186, 0x18d}, {0x4c1, 0x4c8}}},
      {0x4c1, 0x4c8, {{0xc1, 0xc8}}},
      // AMD PMU: GLOBAL_STATUS 0xc0000300, GLOBAL_CTL 0xc0000301, K7 EVNTSEL/PERFCTR
      // 0xc0010000-7, F15h PERF_CTL/CTR 0xc0010200-0xc001020b.
      {0xc0000301, 0xc0000301, {{0xc0000300, 0xc0000300}, {0xc0010200, 0xc001020b}}},
      {0xc0010000, 0xc0010003, {{0xc0010004, 0xc0010007}, {0xc0010200, 0xc001020b}}},
      {0xc0010200, 0xc001020b, {{0xc0000301, 0xc0000301}, {0xc0010000, 0xc0010007}}},
  };
  *n = sizeof(kCouplings) / sizeof(kCouplings[0]);
  return kCouplings;
}

}  // namespace

void AddRelatedMsrs(const MsrRow& row, DeclaredRow* d) {
  size_t n = 0;
  const Coupling* couplings = Couplings(&n);
  for (size_t i = 0; i < n; ++i) {
    const Coupling& c = couplings[i];
    if (row.index < c.first || row.index > c.last) continue;
    for (const IndexRange& r : c.related) {
      // The row's own indices are compared anyway.
      if (r.first >= row.index && r.last <= row.last) continue;
      d->AddRelated(r.first, r.last);
    }
  }
}

}  // namespace msrtrace
