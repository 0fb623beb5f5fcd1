// The local APIC family: IA32_APIC_BASE (0x1b), IA32_TSC_DEADLINE (0x6e0) and the x2APIC MSRs
// (0x800-0x8ff), emulated as KVM's in-kernel LAPIC does (ref: arch/x86/kvm/lapic.c
// kvm_apic_set_base, kvm_x2apic_msr_read/write, kvm_lapic_reg_write, __kvm_x2apic_icr_write,
// kvm_{get,set}_lapic_tscdeadline_msr, kvm_lapic_reset).
//
// Model (decisions, documented so traces replay identically):
//   * The in-kernel irqchip (LAPIC and IOAPIC) is assumed: LVR = 0x14 | (nr_lvt - 1) << 16 with
//     no directed-EOI bit; nr_lvt = 7 with MCG_CAP.CMCI_P (bit 10), else 6.
//   * All APIC state lives in per-vCPU slots (a register file: APIC_BASE, TPR, SPIV, ICR, the
//     LVTs, TMICT, TDCR, timer start, TSC deadline, last self-IPI). x2APIC ID = vCPU id and
//     LDR = ((id >> 4) << 16) | (1 << (id & 0xf)) are derived, as KVM fixes them in x2APIC mode.
//   * No interrupt delivery: IPIs (ICR writes) and self-IPIs are recorded state only (the ICR
//     register, the slot "APIC.SELF_IPI.last" = vector | 0x100). IRR/ISR/TMR read 0, so PPR =
//     TPR and EOI has nothing to retire (KVM accepts any 32-bit EOI value). ESR reads 0.
//   * TSC-deadline timer: the deadline is kept only while LVTT is in TSC-deadline mode and the
//     APIC is hardware-enabled (otherwise reads 0, writes ignored, never #GP). A deadline that is
//     <= the guest TSC at an exit counts as fired (KVM clears it when it injects the timer
//     interrupt): reads then return 0 and the stored deadline is cleared. Reads are therefore
//     time-dependent (volatile row).
//   * APIC timer (one-shot/periodic): TMCCT is computed from the kvm-clock ns at the TMICT write
//     and at the read (bus cycle 1 ns, KVM's default; periodic periods below 200 us are raised to
//     200 us as with min_timer_period_us=200). A TDCR change does not rescale a running count.
//     TMCCT reads 0 in TSC-deadline mode.
// Built on the table handler: each x2APIC row names its register's slot and carries hooks
// (x2APIC-mode gate, then the register's rule); the gate #GPs by the row's flags and
// reserved_mask, so the printed table is the access rule.
#ifndef MSRTRACE_HANDLERS_LAPIC_H_
#define MSRTRACE_HANDLERS_LAPIC_H_

#include <cstdint>

#include "handlers/msr_table.h"

namespace msrtrace {

inline constexpr uint32_t kMsrIa32ApicBase = 0x1b;
inline constexpr uint32_t kMsrIa32TscDeadline = 0x6e0;
inline constexpr uint32_t kMsrX2ApicFirst = 0x800;
inline constexpr uint32_t kMsrX2ApicLast = 0x8ff;
// x2APIC register MSRs (0x800 + APIC register offset / 16; ref: asm/apicdef.h).
inline constexpr uint32_t kMsrX2ApicId = 0x802;
inline constexpr uint32_t kMsrX2ApicLvr = 0x803;
inline constexpr uint32_t kMsrX2ApicTpr = 0x808;
inline constexpr uint32_t kMsrX2ApicEoi = 0x80b;
inline constexpr uint32_t kMsrX2ApicLdr = 0x80d;
inline constexpr uint32_t kMsrX2ApicSpiv = 0x80f;
inline constexpr uint32_t kMsrX2ApicEsr = 0x828;
inline constexpr uint32_t kMsrX2ApicIcr = 0x830;
inline constexpr uint32_t kMsrX2ApicLvtt = 0x832;
inline constexpr uint32_t kMsrX2ApicLvt0 = 0x835;
inline constexpr uint32_t kMsrX2ApicLvt1 = 0x836;
inline constexpr uint32_t kMsrX2ApicLvtErr = 0x837;
inline constexpr uint32_t kMsrX2ApicSelfIpi = 0x83f;

// IA32_APIC_BASE bits (ref: SDM Vol3 §10.4.4, lapic.h).
inline constexpr uint64_t kApicBaseBsp = 1ull << 8;
inline constexpr uint64_t kApicBaseExtd = 1ull << 10;
inline constexpr uint64_t kApicBaseEnable = 1ull << 11;
inline constexpr uint64_t kApicDefaultPhysBase = 0xfee00000ull;
inline constexpr uint64_t kApicBaseResetAp = kApicDefaultPhysBase | kApicBaseEnable;  // 0xfee00800
inline constexpr uint64_t kApicBaseResetBsp = kApicBaseResetAp | kApicBaseBsp;        // 0xfee00900

// x2APIC ICR bits a write must leave clear: 13, 17:16, 31:20 (lapic.c X2APIC_ICR_RESERVED_BITS).
inline constexpr uint64_t kX2ApicIcrReserved = 0xfff32000ull;
inline constexpr uint64_t kApicIcrBusy = 1ull << 12;

// Slot names (per vCPU).
inline constexpr const char kApicBaseSlot[] = "IA32_APIC_BASE";
inline constexpr const char kTscDeadlineSlot[] = "IA32_TSC_DEADLINE";

// x2APIC logical ID of `id` in x2APIC mode (lapic.c kvm_apic_calc_x2apic_ldr).
constexpr uint32_t X2ApicLdr(uint32_t id) { return ((id >> 4) << 16) | (1u << (id & 0xf)); }

// APIC_BASE: reset 0xFEE00900 on the BSP (vCPU 0), 0xFEE00800 otherwise (OnVcpuReset). Writes:
// same value = no-op; reserved bits 7:0, 9, >= MAXPHYADDR, and EXTD without Feature::kX2Apic
// (for host writes too) -> #GP; EXTD=1,EN=0 (invalid mode) -> #GP; guest transitions
// x2APIC -> xAPIC and disabled -> x2APIC -> #GP (allowed for host-initiated writes).
// x2APIC MSRs: #GP unless APIC_BASE has EN=1 and EXTD=1. See lapic.cc for the per-register rules.
// Every row exists on every profile (KVM handles these indices for every CPU model).
const MsrFamilyDef& LapicFamily();

// `row` (one of LapicFamily().rows()) with its profile-dependent fields filled in for `profile`:
// APIC_BASE's reserved mask gains the bits >= MAXPHYADDR (ResolveRow, kCheckMaxPhyAddr) and EXTD
// without x2APIC; the LVR reset and LVT_CMCI access follow MCG_CAP.CMCI_P. Other rows are
// returned unchanged. The handler checks writes against this resolved row.
MsrRow ResolveLapicRow(const MsrRow& row, const CpuProfile& profile);

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_LAPIC_H_
