// The "hyperv" family (hyperv.h): rows as data, hooks for what needs code (the access gates of
// kvm_hv_{get,set}_msr_common and hv_check_msr_access, the hypercall and TSC pages, SynIC and
// stimer write rules, the vAPIC MSRs, VP_INDEX/VP_RUNTIME host paths).
#include "handlers/hyperv.h"

#include <array>
#include <memory>
#include <vector>

#include "absl/strings/str_format.h"
#include "handlers/families.h"
#include "handlers/lapic.h"
#include "handlers/table_handler.h"
#include "handlers/tsc.h"
#include "harness/core/le_bytes.h"

namespace msrtrace {
namespace {

constexpr char kFamily[] = "hyperv";
constexpr uint32_t kMem = kCheckGuestMemory;
constexpr uint64_t kHigh32 = 0xffffffff00000000ull;
constexpr uint32_t kTscPageSize = 24;  // struct ms_hyperv_tsc_page: seq, reserved, scale, offset.

uint64_t MulShr64(uint64_t a, uint64_t b) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
}

// Family state, in TableStateDef order: the TSC offset (tsc.h) and the TSC page state, reserved
// after the rows' slots; the lapic family's TPR/ICR and the kvm-pv family's PV EOI and
// old-kvmclock flag, borrowed when those families are installed.
enum HvState : size_t {
  kTscOffset = 0,
  kPageStatus,     // HvTscPageStatus.
  kPageSeq,        // The TSC page as last written: sequence, scale, offset,
  kPageScale,      //
  kPageOffset,     //
  kPageTscOffset,  // and the writing vCPU's TSC offset then.
  kApicTpr,
  kApicIcr,
  kPvEoi,
  kOldKvmclock,
};
constexpr TableStateDef kHvState[] = {
    {kTscOffsetSlot, 0, MsrScope::kVcpu, /*shared=*/true, /*borrowed=*/false,
     /*has_bsp_reset=*/false, 0, /*after_rows=*/true},
    {"HV.tsc_page_status", 0, MsrScope::kVm, false, false, false, 0, /*after_rows=*/true},
    {"HV.tsc_ref.sequence", 0, MsrScope::kVm, false, false, false, 0, /*after_rows=*/true},
    {"HV.tsc_ref.scale", 0, MsrScope::kVm, false, false, false, 0, /*after_rows=*/true},
    {"HV.tsc_ref.offset", 0, MsrScope::kVm, false, false, false, 0, /*after_rows=*/true},
    {"HV.tsc_ref.guest_tsc_offset", 0, MsrScope::kVm, false, false, false, 0,
     /*after_rows=*/true},
    {"APIC.TPR", 0, MsrScope::kVcpu, /*shared=*/false, /*borrowed=*/true},
    {"APIC.ICR", 0, MsrScope::kVcpu, /*shared=*/false, /*borrowed=*/true},
    {"MSR_KVM_PV_EOI_EN", 0, MsrScope::kVcpu, /*shared=*/false, /*borrowed=*/true},
    {"KVM_CLOCK.boot_vcpu_runs_old_kvmclock", 0, MsrScope::kVm, /*shared=*/false,
     /*borrowed=*/true},
};

bool IsSynic(uint32_t index) { return index >= kHvMsrScontrol && index <= kHvMsrSint15; }
bool IsStimer(uint32_t index) {
  return index >= kHvMsrStimer0Config && index <= kHvMsrStimer3Count;
}
bool IsSyndbg(uint32_t index) {
  return (index >= kHvMsrSyndbgControl && index <= kHvMsrSyndbgPendingBuffer) ||
         index == kHvMsrSyndbgOptions;
}
bool SynicActive(const TableHandler& t) { return t.profile().hv_synic != 0; }

// hv_check_msr_access: the HYPERV_CPUID_FEATURES bit a guest access needs with
// KVM_CAP_HYPERV_ENFORCE_CPUID. Indices in no range (the undefined ones) are refused.
struct HvAccessGate {
  uint32_t first;
  uint32_t last;
  bool edx;  // The bit is in EDX (else EAX).
  uint32_t bit;
};
constexpr HvAccessGate kHvAccessGates[] = {
    {kHvMsrGuestOsId, kHvMsrHypercall, false, kHvHypercallAvailable},
    {kHvMsrVpIndex, kHvMsrVpIndex, false, kHvVpIndexAvailable},
    {kHvMsrReset, kHvMsrReset, false, kHvResetAvailable},
    {kHvMsrVpRuntime, kHvMsrVpRuntime, false, kHvVpRuntimeAvailable},
    {kHvMsrTimeRefCount, kHvMsrTimeRefCount, false, kHvTimeRefCountAvailable},
    {kHvMsrReferenceTsc, kHvMsrReferenceTsc, false, kHvReferenceTscAvailable},
    {kHvMsrTscFrequency, kHvMsrApicFrequency, false, kHvAccessFrequencyMsrs},
    {kHvMsrEoi, kHvMsrVpAssistPage, false, kHvApicAccessAvailable},
    {kHvMsrScontrol, kHvMsrSint15, false, kHvSynicAvailable},
    {kHvMsrStimer0Config, kHvMsrStimer3Count, false, kHvSyntimerAvailable},
    {kHvMsrSyndbgControl, kHvMsrSyndbgPendingBuffer, true, kHvDebugMsrsAvailable},
    {kHvMsrSyndbgOptions, kHvMsrSyndbgOptions, true, kHvDebugMsrsAvailable},
    {kHvMsrCrashP0, kHvMsrCrashCtl, true, kHvGuestCrashMsrAvailable},
    {kHvMsrReenlightenmentControl, kHvMsrTscEmulationStatus, false, kHvAccessReenlightenment},
    {kHvMsrTscInvariantControl, kHvMsrTscInvariantControl, false, kHvAccessTscInvariant},
};

// kvm_hv_{get,set}_msr_common's hyperv_enabled check, hv_check_msr_access and the SYNDBG
// kernel-debugging gate, for guest accesses.
bool GuestMayAccess(const CpuProfile& p, uint32_t index) {
  if (!p.Has(Feature::kHyperV)) return false;
  if (IsSyndbg(index) && !p.hv_syndbg) return false;
  if (!p.Has(Feature::kHvEnforceCpuid)) return true;
  for (const HvAccessGate& g : kHvAccessGates) {
    if (index >= g.first && index <= g.last) {
      return ((g.edx ? p.hv_features_edx : p.hv_features_eax) & g.bit) != 0;
    }
  }
  return false;
}

// --- Hooks -------------------------------------------------------------------------------------
// Every row's read and write hook is HvRead<Body> / HvWrite<Body>: the family's access gates,
// then the row's own part (Body; the generic path where KVM has no more).

template <MsrReadHook Body>
MsrResult HvRead(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  const bool host = ctx.host_initiated();
  if (!host && !GuestMayAccess(t.profile(), index)) return MsrResult::Gp();
  if (e.row.checks & kCheckWriteOnly) return MsrResult::Gp();  // EOI and undefined indices.
  if (IsSynic(index) && !SynicActive(t) && !host) return MsrResult::Gp();
  return Body(t, e, index, ctx);
}

template <MsrWriteHook Body>
MsrResult HvWrite(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                  ExitContext& ctx) {
  const bool host = ctx.host_initiated();
  if (!host && !GuestMayAccess(t.profile(), index)) return MsrResult::Gp();
  if (e.row.checks & kCheckReadOnly) return MsrResult::Gp();  // Undefined indices.
  // synic_set_msr / stimer_set_*: an inactive SynIC takes only host writes of 0.
  if ((IsSynic(index) || IsStimer(index)) && !SynicActive(t) && (!host || value != 0)) {
    return MsrResult::Gp();
  }
  return Body(t, e, index, value, ctx);
}

MsrResult ReadGeneric(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  return t.GenericRead(e, index, ctx);
}
MsrResult WriteGeneric(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                       ExitContext& ctx) {
  return t.GenericWrite(e, index, value, ctx);
}
// RESET (the VM reset request) and EOM (re-delivery) are not modelled: any value retires.
MsrResult Retire(TableHandler&, const TableEntry&, uint32_t, uint64_t, ExitContext&) {
  return MsrResult::Ok();
}

// The value of the family's single-index row `index`.
uint64_t& RowSlot(TableHandler& t, uint32_t index, ExitContext& ctx) {
  return t.Slot(*t.FindEntry(index), index, ctx);
}

// kvm_hv_set_msr_pw: writing 0 clears HYPERCALL.ENABLE.
MsrResult WriteGuestOsId(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                         ExitContext& ctx) {
  t.Slot(e, index, ctx) = value;
  if (value == 0) RowSlot(t, kHvMsrHypercall, ctx) &= ~kHvHypercallEnable;
  return MsrResult::Ok();
}

// kvm_hv_set_msr_pw: ignored without a guest OS id; with ENABLE, vmx_patch_hypercall /
// svm_patch_hypercall, then "ret".
MsrResult WriteHypercall(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                         ExitContext& ctx) {
  if (RowSlot(t, kHvMsrGuestOsId, ctx) == 0) return MsrResult::Ok();
  if (value & kHvHypercallEnable) {
    const uint8_t third = t.profile().intel() ? 0xc1 : 0xd9;
    const uint8_t code[4] = {0x0f, 0x01, third, 0xc3};
    if (!ctx.WriteGuest(value & ~(kPageSize - 1), code, sizeof(code))) return MsrResult::Gp();
  }
  t.Slot(e, index, ctx) = value;
  return MsrResult::Ok();
}

// Host only: (u32)value below KVM_MAX_VCPUS.
MsrResult WriteVpIndex(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                       ExitContext& ctx) {
  if (!ctx.host_initiated() || static_cast<uint32_t>(value) >= kHvMaxVpIndex) {
    return MsrResult::Gp();
  }
  t.Slot(e, index, ctx) = static_cast<uint32_t>(value);
  return MsrResult::Ok();
}
// kvm_hv_vcpu_init: vp_index = vcpu_idx.
uint64_t ResetVpIndex(const TableHandler&, const TableEntry&, uint32_t, uint32_t vcpu_id) {
  return vcpu_id;
}

// The slot holds the host-set offset to kvm-clock time in 100 ns units.
MsrResult ReadVpRuntime(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  return MsrResult::Ok(KvmclockNs(ctx) / 100 + t.Slot(e, index, ctx));
}
MsrResult WriteVpRuntime(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                         ExitContext& ctx) {
  if (!ctx.host_initiated()) return MsrResult::Gp();
  t.Slot(e, index, ctx) = value - KvmclockNs(ctx) / 100;
  return MsrResult::Ok();
}

// The master clock: the kvm-clock model's stable flag (kvm_pv.h).
bool MasterClock(TableHandler& t, ExitContext& ctx) {
  if (!t.profile().Has(Feature::kPvClocksourceStable)) return false;
  return !t.HasState(kOldKvmclock) || t.State(kOldKvmclock, ctx) == 0;
}

// Records the TSC page as written and marks it set.
void PageSet(TableHandler& t, ExitContext& ctx, uint32_t seq, uint64_t scale, uint64_t offset) {
  t.State(kPageSeq, ctx) = seq;
  t.State(kPageScale, ctx) = scale;
  t.State(kPageOffset, ctx) = offset;
  t.State(kPageTscOffset, ctx) = t.State(kTscOffset, ctx);
  t.State(kPageStatus, ctx) = static_cast<uint64_t>(HvTscPageStatus::kSet);
}

// kvm_hv_setup_tsc_page with the writing vCPU's clock.
void SetupTscPage(TableHandler& t, ExitContext& ctx) {
  uint64_t& status = t.State(kPageStatus, ctx);
  const auto s = static_cast<HvTscPageStatus>(status);
  if (s == HvTscPageStatus::kBroken || s == HvTscPageStatus::kSet || s == HvTscPageStatus::kUnset) {
    return;
  }
  const uint64_t gpa = RowSlot(t, kHvMsrReferenceTsc, ctx) & ~(kPageSize - 1);
  std::array<uint8_t, kTscPageSize> page{};
  if (!ctx.ReadGuest(gpa, page.data(), 4)) {
    status = static_cast<uint64_t>(HvTscPageStatus::kBroken);
    return;
  }
  uint32_t seq = GetLe32(page.data());
  const bool unsafe =
      s != HvTscPageStatus::kGuestChanged && RowSlot(t, kHvMsrTscEmulationControl, ctx) != 0;
  if (seq != 0 && unsafe) {  // Keep the guest's page (tsc_page_update_unsafe).
    if (!ctx.ReadGuest(gpa, page.data(), page.size())) {
      status = static_cast<uint64_t>(HvTscPageStatus::kBroken);
      return;
    }
    PageSet(t, ctx, seq, GetLe64(&page[8]), GetLe64(&page[16]));
    return;
  }
  const uint8_t zero[4] = {};
  if (!ctx.WriteGuest(gpa, zero, sizeof(zero))) {
    status = static_cast<uint64_t>(HvTscPageStatus::kBroken);
    return;
  }
  // compute_tsc_page_parameters from the vCPU's pvclock_vcpu_time_info (kvm_pv.h).
  const PvclockScale clock = ModelPvclockScale();
  const unsigned __int128 max_mul = static_cast<unsigned __int128>(100) << (32 - clock.shift);
  if (!MasterClock(t, ctx) || clock.mul >= max_mul) {
    status = static_cast<uint64_t>(HvTscPageStatus::kBroken);
    return;
  }
  const uint64_t scale = static_cast<uint64_t>(
      (static_cast<unsigned __int128>(1) << (32 + clock.shift)) * clock.mul / 100);
  const uint64_t guest_tsc = ctx.exit().host_tsc + t.State(kTscOffset, ctx);
  const uint64_t offset = KvmclockNs(ctx) / 100 - MulShr64(guest_tsc, scale);
  PutLe64(&page[8], scale);
  PutLe64(&page[16], offset);
  page[0] = page[1] = page[2] = page[3] = 0;
  page[4] = page[5] = page[6] = page[7] = 0;
  ctx.WriteGuest(gpa, page.data(), page.size());
  ++seq;
  if (seq == 0xffffffffu || seq == 0) seq = 1;
  uint8_t raw[4];
  PutLe32(raw, seq);
  ctx.WriteGuest(gpa, raw, sizeof(raw));
  PageSet(t, ctx, seq, scale, offset);
}

// get_time_ref_counter: kvm-clock / 100, or the TSC page formula once the page is set.
MsrResult ReadTimeRefCount(TableHandler& t, const TableEntry&, uint32_t, ExitContext& ctx) {
  if (static_cast<HvTscPageStatus>(t.State(kPageStatus, ctx)) != HvTscPageStatus::kSet) {
    return MsrResult::Ok(KvmclockNs(ctx) / 100);
  }
  const uint64_t tsc = ctx.exit().host_tsc + t.State(kPageTscOffset, ctx);
  return MsrResult::Ok(MulShr64(tsc, t.State(kPageScale, ctx)) + t.State(kPageOffset, ctx));
}

// Stored; with ENABLE the page is (re)computed (kvm_hv_setup_tsc_page).
MsrResult WriteReferenceTsc(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                            ExitContext& ctx) {
  t.Slot(e, index, ctx) = value;
  if (value & kHvReferenceTscEnable) {
    t.State(kPageStatus, ctx) = static_cast<uint64_t>(
        ctx.host_initiated() ? HvTscPageStatus::kHostChanged : HvTscPageStatus::kGuestChanged);
    SetupTscPage(t, ctx);
  } else {
    t.State(kPageStatus, ctx) = static_cast<uint64_t>(HvTscPageStatus::kUnset);
  }
  return MsrResult::Ok();
}

// lapic.c kvm_hv_vapic_msr_write: #GP without an in-kernel local APIC (!lapic_in_kernel).
MsrResult WriteEoi(TableHandler& t, const TableEntry& e, uint32_t, uint64_t value, ExitContext&) {
  if (value & e.row.reserved_mask) return MsrResult::Gp();
  return t.HasState(kApicTpr) ? MsrResult::Ok() : MsrResult::Gp();
}
MsrResult ReadIcr(TableHandler& t, const TableEntry&, uint32_t, ExitContext& ctx) {
  if (!t.HasState(kApicIcr)) return MsrResult::Gp();
  return MsrResult::Ok(t.State(kApicIcr, ctx));
}
MsrResult WriteIcr(TableHandler& t, const TableEntry& e, uint32_t, uint64_t value,
                   ExitContext& ctx) {
  if (!t.HasState(kApicIcr) || (value & e.row.reserved_mask)) return MsrResult::Gp();
  t.State(kApicIcr, ctx) = value & ~kApicIcrBusy;
  return MsrResult::Ok();
}
MsrResult ReadTpr(TableHandler& t, const TableEntry&, uint32_t, ExitContext& ctx) {
  if (!t.HasState(kApicTpr)) return MsrResult::Gp();
  return MsrResult::Ok(t.State(kApicTpr, ctx));
}
MsrResult WriteTpr(TableHandler& t, const TableEntry& e, uint32_t, uint64_t value,
                   ExitContext& ctx) {
  if (!t.HasState(kApicTpr) || (value & e.row.reserved_mask)) return MsrResult::Gp();
  t.State(kApicTpr, ctx) = value & 0xff;
  return MsrResult::Ok();
}

// Without ENABLE PV EOI is turned off; with it the page's first u32 is zeroed (error hva: #GP)
// and PV EOI points at the page.
MsrResult WriteVpAssistPage(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                            ExitContext& ctx) {
  if (!(value & kHvVpAssistPageEnable)) {
    t.Slot(e, index, ctx) = value;
    if (t.HasState(kPvEoi)) t.State(kPvEoi, ctx) = 0;  // kvm_lapic_set_pv_eoi(0).
    return MsrResult::Ok();
  }
  const uint64_t gpa = (value >> 12) << 12;
  const uint8_t zero[4] = {};
  if (!ctx.WriteGuest(gpa, zero, sizeof(zero))) return MsrResult::Gp();
  t.Slot(e, index, ctx) = value;
  if (t.HasState(kPvEoi)) t.State(kPvEoi, ctx) = gpa | 1;
  return MsrResult::Ok();
}

// SIEFP / SIMP: with ENABLE and SynIC v1 a guest write zeroes the page (kvm_clear_guest).
MsrResult WriteSynicPage(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                         ExitContext& ctx) {
  if ((value & kHvSynicPageEnable) && !ctx.host_initiated() && t.profile().hv_synic == 1) {
    static const std::array<uint8_t, kPageSize> kZero{};
    if (!ctx.WriteGuest(value & ~(kPageSize - 1), kZero.data(), kZero.size())) {
      return MsrResult::Gp();
    }
  }
  t.Slot(e, index, ctx) = value;
  return MsrResult::Ok();
}

// synic_set_sint: vectors 0-15 are invalid unless masked (or host-written).
MsrResult WriteSint(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                    ExitContext& ctx) {
  if ((value & 0xff) < 16 && !ctx.host_initiated() && !(value & kHvSintMasked)) {
    return MsrResult::Gp();
  }
  t.Slot(e, index, ctx) = value;
  return MsrResult::Ok();
}

// stimer_set_config (even indices) / stimer_set_count (odd).
MsrResult WriteStimer(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                      ExitContext& ctx) {
  const bool host = ctx.host_initiated();
  const uint32_t off = index - kHvMsrStimer0Config;
  const uint32_t config_index = kHvMsrStimer0Config + (off & ~1u);
  uint64_t& config = t.Slot(e, config_index, ctx);
  if (off % 2 == 0) {
    if (!host && t.profile().Has(Feature::kHvEnforceCpuid) && (value & kHvStimerDirectMode) &&
        !(t.profile().hv_features_edx & kHvStimerDirectModeAvailable)) {
      return MsrResult::Gp();
    }
    const uint64_t sintx = (value >> 16) & 0xf;
    if ((config & kHvStimerEnable) && !(value & kHvStimerDirectMode) && sintx == 0) {
      value &= ~kHvStimerEnable;
    }
    config = value;
    return MsrResult::Ok();
  }
  t.Slot(e, index, ctx) = value;
  if (!host) {
    if (value == 0) {
      config &= ~kHvStimerEnable;
    } else if (config & kHvStimerAutoEnable) {
      config |= kHvStimerEnable;
    }
  }
  return MsrResult::Ok();
}

// Guest writes of non-zero #GP.
MsrResult WriteTscEmulationStatus(TableHandler& t, const TableEntry& e, uint32_t index,
                                  uint64_t value, ExitContext& ctx) {
  if (value != 0 && !ctx.host_initiated()) return MsrResult::Gp();
  return t.GenericWrite(e, index, value, ctx);
}

// Once set, the guest cannot clear HV_EXPOSE_INVARIANT_TSC.
MsrResult WriteTscInvariantControl(TableHandler& t, const TableEntry& e, uint32_t index,
                                   uint64_t value, ExitContext& ctx) {
  if (value & e.row.reserved_mask) return MsrResult::Gp();
  if (!ctx.host_initiated() && t.Slot(e, index, ctx) != 0 && value == 0) return MsrResult::Gp();
  return t.GenericWrite(e, index, value, ctx);
}

MsrRowBuilder Hv(uint32_t index, const char* name) {
  return MsrRowBuilder(index, name, kFamily)
      .Requires(Feature::kHyperV)
      .OnRead(&HvRead<&ReadGeneric>)
      .OnWrite(&HvWrite<&WriteGeneric>);
}
MsrRowBuilder Undefined(uint32_t first, uint32_t last) {
  return Hv(first, "HV_X64_MSR_UNDEFINED")
      .Last(last)
      .Scope(MsrScope::kNone)
      .Checks(kCheckReadOnly | kCheckWriteOnly)
      .Note(
          "Inside the range x86.c routes to hyperv.c but not a Hyper-V MSR: reads and writes "
          "#GP, host ones too (kvm_hv_{get,set}_msr default case)");
}

const std::vector<MsrRow>& Rows() {
  static const auto* rows = new std::vector<MsrRow>{
      Hv(kHvMsrGuestOsId, "HV_X64_MSR_GUEST_OS_ID")
          .Scope(MsrScope::kVm)
          .OnWrite(&HvWrite<&WriteGuestOsId>)
          .Note("Partition-wide. Stores any value; writing 0 clears HYPERCALL.ENABLE. Guest "
                "access needs Hyper-V CPUID (hyperv_enabled; host always) and, enforced, "
                "HV_MSR_HYPERCALL_AVAILABLE. hyperv.c kvm_hv_set_msr_pw"),
      Hv(kHvMsrHypercall, "HV_X64_MSR_HYPERCALL")
          .Scope(MsrScope::kVm)
          .Checks(kMem)
          .OnWrite(&HvWrite<&WriteHypercall>)
          .Note("Partition-wide. Ignored (retires, unchanged) while GUEST_OS_ID is 0. With "
                "ENABLE (bit 0) writes vmcall (VMX, 0f 01 c1) or vmmcall (SVM, 0f 01 d9) and "
                "ret (c3) at the page (value & ~0xfff); an unbacked page #GPs. "
                "hyperv.c kvm_hv_set_msr_pw"),
      Hv(kHvMsrVpIndex, "HV_X64_MSR_VP_INDEX")
          .Checks(kCheckHostOnlyWrite | kCheckResetVaries)
          .OnWrite(&HvWrite<&WriteVpIndex>)
          .OnReset(&ResetVpIndex)
          .Note("Reset: the vCPU index (kvm_hv_vcpu_init). Guest writes #GP; host writes set "
                "(u32)value, #GP at >= KVM_MAX_VCPUS (1024). hyperv.c kvm_hv_set_msr"),
      Hv(kHvMsrReset, "HV_X64_MSR_RESET")
          .Scope(MsrScope::kNone)
          .OnWrite(&HvWrite<&Retire>)
          .Note("Reads 0. Writing 1 requests a VM reset (KVM_REQ_HV_RESET, an exit to the VMM, "
                "not modelled); any value retires. hyperv.c kvm_hv_set_msr_pw"),
      Undefined(kHvMsrReset + 1, kHvMsrVpRuntime - 1),
      Hv(kHvMsrVpRuntime, "HV_X64_MSR_VP_RUNTIME")
          .Checks(kCheckHostOnlyWrite)
          .Volatile()
          .OnRead(&HvRead<&ReadVpRuntime>)
          .OnWrite(&HvWrite<&WriteVpRuntime>)
          .Note("Reads the vCPU's run time in 100 ns units (model: kvm-clock ns / 100) plus an "
                "offset; guest writes #GP; host writes set the offset so that the read returns "
                "the value (the slot holds the offset). hyperv.c kvm_hv_{get,set}_msr"),
      Undefined(kHvMsrVpRuntime + 1, kHvMsrTimeRefCount - 1),
      Hv(kHvMsrTimeRefCount, "HV_X64_MSR_TIME_REF_COUNT")
          .Scope(MsrScope::kNone)
          .Checks(kCheckHostOnlyWrite)
          .Volatile()
          .OnRead(&HvRead<&ReadTimeRefCount>)
          .Note("Partition reference time in 100 ns: kvm-clock ns / 100, or the TSC page "
                "formula (tsc * scale >> 64) + offset once the page is set. Guest writes #GP, "
                "host writes are ignored. hyperv.c get_time_ref_counter, kvm_hv_set_msr_pw"),
      Hv(kHvMsrReferenceTsc, "HV_X64_MSR_REFERENCE_TSC")
          .Scope(MsrScope::kVm)
          .Checks(kMem)
          .OnWrite(&HvWrite<&WriteReferenceTsc>)
          .Note("Partition-wide; any value stored. With ENABLE (bit 0) KVM fills the TSC page at "
                "value & ~0xfff (sequence 0, then {seq, 0, scale, offset}, then seq + 1) when the "
                "master clock is in use; else the page is broken (sequence 0) and "
                "TIME_REF_COUNT uses kvm-clock. hyperv.c kvm_hv_setup_tsc_page"),
      Hv(kHvMsrTscFrequency, "HV_X64_MSR_TSC_FREQUENCY")
          .Scope(MsrScope::kNone)
          .Reset(kModelTscKhz * 1000)
          .Checks(kCheckHostOnlyWrite)
          .Note("virtual_tsc_khz * 1000 (the model's 2 GHz). Guest writes #GP, host writes "
                "ignored; enforced: HV_ACCESS_FREQUENCY_MSRS. hyperv.c kvm_hv_get_msr"),
      Hv(kHvMsrApicFrequency, "HV_X64_MSR_APIC_FREQUENCY")
          .Scope(MsrScope::kNone)
          .Reset(kHvApicFrequency)
          .Checks(kCheckHostOnlyWrite)
          .Note("1e9 / apic_bus_cycle_ns (1 ns default): 1 GHz. Guest writes #GP, host writes "
                "ignored. hyperv.c kvm_hv_get_msr"),
      Undefined(kHvMsrApicFrequency + 1, kHvMsrEoi - 1),
      Hv(kHvMsrEoi, "HV_X64_MSR_EOI")
          .Scope(MsrScope::kNone)
          .Reserved(kHigh32)
          .Checks(kCheckWriteOnly)
          .OnWrite(&HvWrite<&WriteEoi>)
          .Note("APIC EOI in any APIC mode: reads #GP (EOI is not readable), bits 63:32 #GP, "
                "else retires (nothing in service in the model). Enforced: "
                "HV_MSR_APIC_ACCESS_AVAILABLE. lapic.c kvm_hv_vapic_msr_write"),
      Hv(kHvMsrIcr, "HV_X64_MSR_ICR")
          .Scope(MsrScope::kNone)
          .Reserved(kX2ApicIcrReserved)
          .OnRead(&HvRead<&ReadIcr>)
          .OnWrite(&HvWrite<&WriteIcr>)
          .Note("The 64-bit ICR in any APIC mode (kvm_x2apic_icr_write): reserved bits #GP, BUSY "
                "cleared; stored in the lapic family's ICR, the IPI is not delivered. lapic.c "
                "kvm_hv_vapic_msr_{read,write}"),
      Hv(kHvMsrTpr, "HV_X64_MSR_TPR")
          .Scope(MsrScope::kNone)
          .Reserved(kHigh32)
          .OnRead(&HvRead<&ReadTpr>)
          .OnWrite(&HvWrite<&WriteTpr>)
          .Note("APIC TPR in any APIC mode: bits 63:32 #GP, bits 7:0 kept (the lapic family's "
                "TPR). lapic.c kvm_hv_vapic_msr_{read,write}"),
      Hv(kHvMsrVpAssistPage, "HV_X64_MSR_VP_ASSIST_PAGE")
          .Checks(kMem)
          .OnWrite(&HvWrite<&WriteVpAssistPage>)
          .Note("Stored. With ENABLE (bit 0) the page (value >> 12) must be guest memory (else "
                "#GP); its first u32 (apic_assist) is zeroed and PV EOI is pointed at it "
                "(MSR_KVM_PV_EOI_EN = page | 1); without ENABLE PV EOI is turned off (0). "
                "hyperv.c kvm_hv_set_msr"),
      Undefined(kHvMsrVpAssistPage + 1, kHvMsrScontrol - 1),
      Hv(kHvMsrScontrol, "HV_X64_MSR_SCONTROL")
          .Note("SynIC. Reset ENABLE when the VMM activated SynIC (kvm_hv_activate_synic), else "
                "0. Without an active SynIC guest access #GPs, host writes only 0. Any value "
                "stored (the guest write's exit to the VMM is not modelled). hyperv.c "
                "synic_{get,set}_msr"),
      Hv(kHvMsrSversion, "HV_X64_MSR_SVERSION")
          .Reset(kHvSynicVersion1)
          .Checks(kCheckHostOnlyWrite)
          .Note("SynIC version 1 (synic_init). Guest writes #GP; host writes store. hyperv.c "
                "synic_set_msr"),
      Hv(kHvMsrSiefp, "HV_X64_MSR_SIEFP")
          .Checks(kMem)
          .OnWrite(&HvWrite<&WriteSynicPage>)
          .Note("SynIC event flags page. With ENABLE and KVM_CAP_HYPERV_SYNIC (not SYNIC2) a "
                "guest write zeroes the page (value & ~0xfff; unbacked #GP). Stored. hyperv.c "
                "synic_set_msr"),
      Hv(kHvMsrSimp, "HV_X64_MSR_SIMP")
          .Checks(kMem)
          .OnWrite(&HvWrite<&WriteSynicPage>)
          .Note("SynIC message page; as SIEFP. hyperv.c synic_set_msr"),
      Hv(kHvMsrEom, "HV_X64_MSR_EOM")
          .Scope(MsrScope::kNone)
          .OnWrite(&HvWrite<&Retire>)
          .Note("SynIC end of message: reads 0, writes retire (pending messages are re-delivered "
                "by KVM outside the exit, not modelled). hyperv.c synic_{get,set}_msr"),
      Undefined(kHvMsrEom + 1, kHvMsrSint0 - 1),
      Hv(kHvMsrSint0, "HV_X64_MSR_SINT")
          .Last(kHvMsrSint15)
          .Reset(kHvSintMasked)
          .Checks(kCheckValueRules)
          .OnWrite(&HvWrite<&WriteSint>)
          .Note("SINT0-15, reset MASKED (bit 16). A guest write of an unmasked vector below 16 "
                "#GPs (host writes may); otherwise the whole value is stored. hyperv.c "
                "synic_set_sint"),
      Hv(kHvMsrStimer0Config, "HV_X64_MSR_STIMER")
          .Last(kHvMsrStimer3Count)
          .OnWrite(&HvWrite<&WriteStimer>)
          .Note("STIMER0-3 CONFIG (even) / COUNT (odd). Need an active SynIC (host: only 0). "
                "CONFIG: DIRECT_MODE needs the CPUID bit when enforced; an enabled timer "
                "rewritten with SINTx 0 and no direct mode is disabled. COUNT: a guest write of "
                "0 clears CONFIG.ENABLE, of non-zero sets it with AUTO_ENABLE. Expiry is not "
                "modelled. hyperv.c stimer_set_{config,count}"),
      Hv(kHvMsrSyndbgControl, "HV_X64_MSR_SYNDBG")
          .Last(kHvMsrSyndbgPendingBuffer)
          .Checks(kCheckValueRules)
          .Scope(MsrScope::kVm)
          .Note("SYNDBG_CONTROL, STATUS, SEND/RECV/PENDING_BUFFER: partition-wide, stored. Guest "
                "access needs kernel debugging in CPUID 0x40000080 (and, enforced, "
                "HV_FEATURE_DEBUG_MSRS_AVAILABLE), else #GP. hyperv.c syndbg_{get,set}_msr"),
      Hv(kHvMsrSyndbgOptions, "HV_X64_MSR_SYNDBG_OPTIONS")
          .Checks(kCheckValueRules)
          .Scope(MsrScope::kVm)
          .Note("As the other SYNDBG MSRs. hyperv.c syndbg_{get,set}_msr"),
      Hv(kHvMsrCrashP0, "HV_X64_MSR_CRASH_P")
          .Last(kHvMsrCrashP4)
          .Scope(MsrScope::kVm)
          .Note("Crash parameters 0-4, partition-wide, stored. Enforced: "
                "HV_FEATURE_GUEST_CRASH_MSR_AVAILABLE. hyperv.c kvm_hv_msr_set_crash_data"),
      Hv(kHvMsrCrashCtl, "HV_X64_MSR_CRASH_CTL")
          .Scope(MsrScope::kVm)
          .Reserved(~kHvCrashCtlNotify)
          .Checks(kCheckWritesIgnored | kCheckHostOnlyWrite | kCheckReservedIgnored)
          .Note("Host writes store value & CRASH_NOTIFY (bit 63); guest writes change nothing "
                "(with bit 63 they request a crash exit to the VMM, not modelled). hyperv.c "
                "kvm_hv_msr_set_crash_ctl"),
      Hv(kHvMsrReenlightenmentControl, "HV_X64_MSR_REENLIGHTENMENT_CONTROL")
          .Scope(MsrScope::kVm)
          .Note("Partition-wide, any value stored. Enforced: HV_ACCESS_REENLIGHTENMENT. "
                "hyperv.c kvm_hv_set_msr_pw"),
      Hv(kHvMsrTscEmulationControl, "HV_X64_MSR_TSC_EMULATION_CONTROL")
          .Scope(MsrScope::kVm)
          .Note("Partition-wide, any value stored; while non-zero KVM keeps a set TSC page "
                "(tsc_page_update_unsafe). hyperv.c kvm_hv_set_msr_pw"),
      Hv(kHvMsrTscEmulationStatus, "HV_X64_MSR_TSC_EMULATION_STATUS")
          .Checks(kCheckValueRules)
          .Scope(MsrScope::kVm)
          .OnWrite(&HvWrite<&WriteTscEmulationStatus>)
          .Note("Partition-wide; guest writes of non-zero #GP, 0 and host values stored. "
                "hyperv.c kvm_hv_set_msr_pw"),
      Hv(kHvMsrTscInvariantControl, "HV_X64_MSR_TSC_INVARIANT_CONTROL")
          .Scope(MsrScope::kVm)
          .Reserved(~1ull)
          .OnWrite(&HvWrite<&WriteTscInvariantControl>)
          .Note("Only bit 0 (HV_EXPOSE_INVARIANT_TSC), else #GP (host too); once set the guest "
                "cannot clear it. Enforced: HV_ACCESS_TSC_INVARIANT. hyperv.c "
                "kvm_hv_set_msr_pw"),
  };
  return *rows;
}

std::string IndexName(const MsrRow& row, uint32_t index) {
  const uint32_t off = index - row.index;
  switch (row.index) {
    case kHvMsrSint0:
      return absl::StrFormat("HV_X64_MSR_SINT%u", off);
    case kHvMsrStimer0Config:
      return absl::StrFormat("HV_X64_MSR_STIMER%u_%s", off / 2, off % 2 == 0 ? "CONFIG" : "COUNT");
    case kHvMsrCrashP0:
      return absl::StrFormat("HV_X64_MSR_CRASH_P%u", off);
    case kHvMsrSyndbgControl: {
      static const char* const kNames[] = {
          "HV_X64_MSR_SYNDBG_CONTROL", "HV_X64_MSR_SYNDBG_STATUS", "HV_X64_MSR_SYNDBG_SEND_BUFFER",
          "HV_X64_MSR_SYNDBG_RECV_BUFFER", "HV_X64_MSR_SYNDBG_PENDING_BUFFER"};
      return kNames[off];
    }
    default:
      if (row.index != row.last) return absl::StrFormat("%s_%X", row.name, index);
      return row.name;
  }
}

absl::Span<const MsrRow> RowsSpan() { return absl::MakeConstSpan(Rows()); }

absl::Status Install(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(
      controller,
      std::make_unique<TableHandler>(controller.layout(), profile,
                                     RowsToInstall(HypervFamily(), profile), &IndexName, kHvState));
}

}  // namespace

MsrRow ResolveHypervRow(const MsrRow& row, const CpuProfile& profile) {
  MsrRow r = row;
  if (row.index == kHvMsrScontrol) r.reset = profile.hv_synic != 0 ? kHvSynicControlEnable : 0;
  return r;
}

const MsrFamilyDef& HypervFamily() {
  static constexpr MsrFamilyDef kDef = {kFamily, &RowsSpan, &ResolveHypervRow, &Install};
  return kDef;
}

}  // namespace msrtrace
