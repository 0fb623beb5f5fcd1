// The time-stamp counter family (IA32_TSC 0x10, IA32_TSC_ADJUST 0x3b) and the time model that
// the local APIC and kvm-clock handlers share.
//
// Time model (deterministic: every time-dependent result is a function of state and the exit):
//   * The host TSC at an exit is Exit::host_tsc; the host wall clock is Exit::host_wall_ns.
//   * TSC scaling ratio is 1: guest TSC = host_tsc + offset (mod 2^64), where `offset` is the
//     per-vCPU slot kTscOffsetSlot (KVM's l1_tsc_offset; ref: msrs.c kvm_get_msr_common
//     MSR_IA32_TSC, `kvm_scale_tsc(rdtsc(), ratio) + offset`). The offset resets to 0, i.e. at
//     reset the guest TSC equals the host TSC. (KVM instead synchronizes the TSC to ~0 at vCPU
//     creation; a recorder that wants that records host_tsc relative to vCPU creation, or
//     host-writes IA32_TSC=0 at set-up.)
//   * The TSC runs at the fixed frequency kModelTscKhz on every profile. Host nanoseconds (the
//     kvmclock base, KVM's get_kvmclock_base_ns with kvmclock_offset = 0: the model's host TSC
//     counts from guest boot) are host_tsc converted with the pvclock scale of that frequency,
//     exactly as a guest converts TSC deltas with pvclock_vcpu_time_info, so the kvm-clock
//     structures the PV handlers write are self-consistent.
#ifndef MSRTRACE_HANDLERS_TSC_H_
#define MSRTRACE_HANDLERS_TSC_H_

#include <cstdint>

#include "absl/status/status.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"
#include "harness/core/controller.h"
#include "harness/core/msr_handler.h"

namespace msrtrace {

inline constexpr uint32_t kMsrIa32Tsc = 0x10;
inline constexpr uint32_t kMsrIa32TscAdjust = 0x3b;

// Slot holding IA32_TSC_ADJUST (per vCPU).
inline constexpr const char kTscAdjustSlot[] = "IA32_TSC_ADJUST";

// The model's TSC frequency (kHz), the same on every profile: 2.0 GHz. Documented constant, so
// traces replay identically on any host.
inline constexpr uint64_t kModelTscKhz = 2'000'000;

// A pvclock TSC-to-nanoseconds scale: ns = ((delta << shift) or (delta >> -shift)) * mul >> 32.
struct PvclockScale {
  uint32_t mul = 0;
  int8_t shift = 0;
};

// The scale that converts ticks of a `tsc_hz` clock to nanoseconds, computed the way KVM's
// kvm_get_time_scale(NSEC_PER_SEC, tsc_hz) does (normalise the rate to (1e9/2, 1e9*2] by shifts,
// then mul = 2^32 * 1e9 / rate). REQUIRES: tsc_hz > 0.
PvclockScale ComputePvclockScale(uint64_t tsc_hz);

// pvclock_scale_delta(): applies `scale` to `delta` ticks (128-bit intermediate, no overflow).
uint64_t PvclockScaleDelta(uint64_t delta, PvclockScale scale);

// The scale of kModelTscKhz.
PvclockScale ModelPvclockScale();

// Host nanoseconds at this exit: PvclockScaleDelta(exit.host_tsc, ModelPvclockScale()). This is
// the kvm-clock value (ns since guest boot) of the model.
uint64_t KvmclockNs(const ExitContext& ctx);

// The guest TSC at this exit: host_tsc + the offset in per-vCPU slot `offset_slot`.
uint64_t GuestTsc(ExitContext& ctx, SlotId offset_slot);

// The per-vCPU slot kTscOffsetSlot in `layout`, reserving it (reset 0) if no family has yet.
// Every family that reads the guest TSC calls this, so install order does not matter.
SlotId EnsureTscOffsetSlot(StateLayout& layout);

// True if `row` exists on `profile` (feature and vendor), as msr_table.h RowExists.
bool FamilyRowExists(const MsrRow& row, const CpuProfile& profile);

// IA32_TSC and IA32_TSC_ADJUST (ref: msrs.c kvm_set_msr_common / kvm_get_msr_common):
//   TSC read:   guest TSC (host-initiated reads too; no nesting, so L1 offset == offset).
//   TSC write:  guest: offset so that guest TSC = value, and the same delta is added to
//               TSC_ADJUST (`ia32_tsc_adjust_msr += adj`); host-initiated: offset set
//               (kvm_synchronize_tsc, modelled without its sync window), TSC_ADJUST unchanged.
//   TSC_ADJUST read:  the stored value (no feature check in KVM).
//   TSC_ADJUST write: with Feature::kTscAdjust: guest: offset += value - old, store; host: store
//               only. Without the feature every write is silently ignored (no #GP), also host
//               writes (the whole case is inside `if (guest_cpu_cap_has(TSC_ADJUST))`).
// Both rows always exist (KVM handles both indices on every CPU model).
// Table-driven: IA32_TSC keeps no slot of its own (its hooks use the offset), TSC_ADJUST names
// its slot and has a write hook.
const MsrFamilyDef& TscFamily();

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_TSC_H_
