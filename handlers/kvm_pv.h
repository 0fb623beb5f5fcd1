// The KVM paravirtual MSR family: kvm-clock (wall clock and per-vCPU system time), async page
// faults, steal time, PV EOI, poll control and migration control (ref: arch/x86/kvm/msrs.c
// kvm_set_msr_common / kvm_get_msr_common, x86.c kvm_write_wall_clock,
// kvm_write_system_time, kvm_setup_guest_pvclock, kvm_pv_enable_async_pf(_int), lapic.c
// kvm_lapic_set_pv_eoi; Documentation/virt/kvm/x86/msr.rst).
//
// Feature gating: each MSR needs its KVM_FEATURE_* (profile.HasPv: true for all unless
// Feature::kPvEnforceCpuid). Where the profile lacks it, the resolved row carries
// kCheckReadOnly | kCheckWriteOnly and guest accesses answer MsrResult::Unsupported() (KVM's
// KVM_MSR_RET_UNSUPPORTED; the controller's unknown-MSR policy, #GP by default, applies). As in
// kvm_do_msr_access, a host-initiated read, or write of 0, to an absent-but-advertised PV MSR
// succeeds (reads 0, changes nothing). All rows exist on every profile.
//
// Built on the table handler: the rows name their state slots (the two wall-clock MSRs share
// one VM-wide slot, the two system-time MSRs one per-vCPU slot) and carry hooks for the
// feature gate, the kvm-clock guest-memory writes and the address probes.
//
// Reads return the stored value (ASYNC_PF_ACK reads 0), so no row is volatile. The guest-memory
// writes, however, depend on time (Exit::host_tsc, Exit::host_wall_ns): replay compares them
// through Controller::last_writes(). Time model: see tsc.h (fixed kModelTscKhz, kvm-clock ns =
// pvclock scale of host_tsc, guest TSC = host_tsc + offset).
//
// Wall clock (0x11 / 0x4b564d00, one VM-wide value): the write stores the GPA, then (GPA != 0)
// reads the u32 version there, makes it odd (+1, or +2 if it was odd), writes it, writes
// struct pvclock_wall_clock {u32 version; u32 sec; u32 nsec} (12 bytes, packed, little-endian)
// and finally version + 1. sec/nsec = host wall clock at guest boot = host_wall_ns - kvm-clock ns
// (KVM's kvm_get_wall_clock_epoch), sec truncated to 32 bits. An unbacked GPA writes nothing and
// the MSR write still succeeds. Each step is a separate logged guest write, as in KVM.
//
// System time (0x12 / 0x4b564d01, per vCPU): the write stores the value; with bit 0 set it writes
// struct pvclock_vcpu_time_info (32 bytes: u32 version, u32 pad0, u64 tsc_timestamp,
// u64 system_time, u32 tsc_to_system_mul, s8 tsc_shift, u8 flags, u8 pad[2]) at value & ~1
// immediately (KVM does it on the clock-update request before the next VM entry, which the
// guest cannot tell apart): version (old + 1) | 1, then the struct, then version + 1.
// tsc_timestamp = guest TSC, system_time = kvm-clock ns, mul/shift = scale of kModelTscKhz,
// flags = PVCLOCK_TSC_STABLE_BIT when the profile has Feature::kPvClocksourceStable (standing for
// KVM's master clock) unless vCPU 0 last enabled kvm-clock through the legacy MSR 0x12
// (boot_vcpu_runs_old_kvmclock disables the master clock), plus PVCLOCK_GUEST_STOPPED kept from
// the guest's copy. A structure crossing a page boundary (gfn_to_pfn_cache limit) or an unbacked
// GPA writes nothing.
//
// Other MSRs (stored, checked):
//   ASYNC_PF_EN 0x4b564d02: bits 5:4 reserved; bit 2 needs ASYNC_PF_VMEXIT, bit 3 needs
//     ASYNC_PF_INT; enabled with interrupt delivery (bits 0 and 3) needs 8 backed bytes at
//     value & ~0x3f, else #GP. In-kernel LAPIC assumed.
//   STEAL_TIME 0x4b564d03: bits 5:1 reserved. The steal-time record itself is written by KVM at
//     VM entry (record_steal_time), outside the MSR exit, and is not modelled.
//   PV_EOI_EN 0x4b564d04: address (value & ~1) must be 4-byte aligned; when enabled the byte
//     there must be backed, else #GP.
//   POLL_CONTROL 0x4b564d05: only bit 0; reset value 1 (kvm_arch_vcpu_postcreate).
//   ASYNC_PF_INT 0x4b564d06: bits 63:8 reserved.
//   ASYNC_PF_ACK 0x4b564d07: any value accepted (gated by ASYNC_PF_INT); reads 0; no state.
//   MIGRATION_CONTROL 0x4b564d08 (VM-wide): not handled by KVM itself (forwarded to the VMM,
//     which uses bit 0 = KVM_MIGRATION_READY); modelled as bit 0 only, other bits #GP.
#ifndef MSRTRACE_HANDLERS_KVM_PV_H_
#define MSRTRACE_HANDLERS_KVM_PV_H_

#include <cstdint>

#include "handlers/msr_table.h"

namespace msrtrace {

inline constexpr uint32_t kMsrKvmWallClock = 0x11;
inline constexpr uint32_t kMsrKvmSystemTime = 0x12;
inline constexpr uint32_t kMsrKvmWallClockNew = 0x4b564d00;
inline constexpr uint32_t kMsrKvmSystemTimeNew = 0x4b564d01;
inline constexpr uint32_t kMsrKvmAsyncPfEn = 0x4b564d02;
inline constexpr uint32_t kMsrKvmStealTime = 0x4b564d03;
inline constexpr uint32_t kMsrKvmPvEoiEn = 0x4b564d04;
inline constexpr uint32_t kMsrKvmPollControl = 0x4b564d05;
inline constexpr uint32_t kMsrKvmAsyncPfInt = 0x4b564d06;
inline constexpr uint32_t kMsrKvmAsyncPfAck = 0x4b564d07;
inline constexpr uint32_t kMsrKvmMigrationControl = 0x4b564d08;

// struct pvclock_vcpu_time_info / pvclock_wall_clock layout (pvclock-abi.h).
inline constexpr uint32_t kPvclockTimeInfoSize = 32;
inline constexpr uint32_t kPvclockWallClockSize = 12;
inline constexpr uint8_t kPvclockTscStableBit = 1u << 0;
inline constexpr uint8_t kPvclockGuestStopped = 1u << 1;

// Slot names: VM-wide wall clock and migration control; the rest per vCPU.
inline constexpr const char kKvmWallClockSlot[] = "MSR_KVM_WALL_CLOCK";
inline constexpr const char kKvmSystemTimeSlot[] = "MSR_KVM_SYSTEM_TIME";

const MsrFamilyDef& KvmPvFamily();

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_KVM_PV_H_
