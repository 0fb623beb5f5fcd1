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

namespace msrtrace {
namespace {

constexpr char kFamily[] = "hyperv";
constexpr uint32_t kMem = kCheckGuestMemory;
constexpr uint64_t kHigh32 = 0xffffffff00000000ull;
constexpr uint32_t kTscPageSize = 24;  // struct ms_hyperv_tsc_page: seq, reserved, scale, offset.

MsrRowBuilder Hv(uint32_t index, const char* name) {
  return MsrRowBuilder(index, name, kFamily).Requires(Feature::kHyperV);
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
          .Note("Partition-wide. Stores any value; writing 0 clears HYPERCALL.ENABLE. Guest "
                "access needs Hyper-V CPUID (hyperv_enabled; host always) and, enforced, "
                "HV_MSR_HYPERCALL_AVAILABLE. hyperv.c kvm_hv_set_msr_pw"),
      Hv(kHvMsrHypercall, "HV_X64_MSR_HYPERCALL")
          .Scope(MsrScope::kVm)
          .Checks(kMem)
          .Note("Partition-wide. Ignored (retires, unchanged) while GUEST_OS_ID is 0. With "
                "ENABLE (bit 0) writes vmcall (VMX, 0f 01 c1) or vmmcall (SVM, 0f 01 d9) and "
                "ret (c3) at the page (value & ~0xfff); an unbacked page #GPs. "
                "hyperv.c kvm_hv_set_msr_pw"),
      Hv(kHvMsrVpIndex, "HV_X64_MSR_VP_INDEX")
          .Checks(kCheckHostOnlyWrite | kCheckResetVaries)
          .Note("Reset: the vCPU index (kvm_hv_vcpu_init). Guest writes #GP; host writes set "
                "(u32)value, #GP at >= KVM_MAX_VCPUS (1024). hyperv.c kvm_hv_set_msr"),
      Hv(kHvMsrReset, "HV_X64_MSR_RESET")
          .Scope(MsrScope::kNone)
          .Note("Reads 0. Writing 1 requests a VM reset (KVM_REQ_HV_RESET, an exit to the VMM, "
                "not modelled); any value retires. hyperv.c kvm_hv_set_msr_pw"),
      Undefined(kHvMsrReset + 1, kHvMsrVpRuntime - 1),
      Hv(kHvMsrVpRuntime, "HV_X64_MSR_VP_RUNTIME")
          .Checks(kCheckHostOnlyWrite)
          .Volatile()
          .Note("Reads the vCPU's run time in 100 ns units (model: kvm-clock ns / 100) plus an "
                "offset; guest writes #GP; host writes set the offset so that the read returns "
                "the value (the slot holds the offset). hyperv.c kvm_hv_{get,set}_msr"),
      Undefined(kHvMsrVpRuntime + 1, kHvMsrTimeRefCount - 1),
      Hv(kHvMsrTimeRefCount, "HV_X64_MSR_TIME_REF_COUNT")
          .Scope(MsrScope::kNone)
          .Checks(kCheckHostOnlyWrite)
          .Volatile()
          .Note("Partition reference time in 100 ns: kvm-clock ns / 100, or the TSC page "
                "formula (tsc * scale >> 64) + offset once the page is set. Guest writes #GP, "
                "host writes are ignored. hyperv.c get_time_ref_counter, kvm_hv_set_msr_pw"),
      Hv(kHvMsrReferenceTsc, "HV_X64_MSR_REFERENCE_TSC")
          .Scope(MsrScope::kVm)
          .Checks(kMem)
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
          .Note("APIC EOI in any APIC mode: reads #GP (EOI is not readable), bits 63:32 #GP, "
                "else retires (nothing in service in the model). Enforced: "
                "HV_MSR_APIC_ACCESS_AVAILABLE. lapic.c kvm_hv_vapic_msr_write"),
      Hv(kHvMsrIcr, "HV_X64_MSR_ICR")
          .Scope(MsrScope::kNone)
          .Reserved(kX2ApicIcrReserved)
          .Note("The 64-bit ICR in any APIC mode (kvm_x2apic_icr_write): reserved bits #GP, BUSY "
                "cleared; stored in the lapic family's ICR, the IPI is not delivered. lapic.c "
                "kvm_hv_vapic_msr_{read,write}"),
      Hv(kHvMsrTpr, "HV_X64_MSR_TPR")
          .Scope(MsrScope::kNone)
          .Reserved(kHigh32)
          .Note("APIC TPR in any APIC mode: bits 63:32 #GP, bits 7:0 kept (the lapic family's "
                "TPR). lapic.c kvm_hv_vapic_msr_{read,write}"),
      Hv(kHvMsrVpAssistPage, "HV_X64_MSR_VP_ASSIST_PAGE")
          .Checks(kMem)
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
          .Note("SynIC event flags page. With ENABLE and KVM_CAP_HYPERV_SYNIC (not SYNIC2) a "
                "guest write zeroes the page (value & ~0xfff; unbacked #GP). Stored. hyperv.c "
                "synic_set_msr"),
      Hv(kHvMsrSimp, "HV_X64_MSR_SIMP")
          .Checks(kMem)
          .Note("SynIC message page; as SIEFP. hyperv.c synic_set_msr"),
      Hv(kHvMsrEom, "HV_X64_MSR_EOM")
          .Scope(MsrScope::kNone)
          .Note("SynIC end of message: reads 0, writes retire (pending messages are re-delivered "
                "by KVM outside the exit, not modelled). hyperv.c synic_{get,set}_msr"),
      Undefined(kHvMsrEom + 1, kHvMsrSint0 - 1),
      Hv(kHvMsrSint0, "HV_X64_MSR_SINT")
          .Last(kHvMsrSint15)
          .Reset(kHvSintMasked)
          .Checks(kCheckValueRules)
          .Note("SINT0-15, reset MASKED (bit 16). A guest write of an unmasked vector below 16 "
                "#GPs (host writes may); otherwise the whole value is stored. hyperv.c "
                "synic_set_sint"),
      Hv(kHvMsrStimer0Config, "HV_X64_MSR_STIMER")
          .Last(kHvMsrStimer3Count)
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
          .Note("Partition-wide; guest writes of non-zero #GP, 0 and host values stored. "
                "hyperv.c kvm_hv_set_msr_pw"),
      Hv(kHvMsrTscInvariantControl, "HV_X64_MSR_TSC_INVARIANT_CONTROL")
          .Scope(MsrScope::kVm)
          .Reserved(~1ull)
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

void PutLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetLe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
uint64_t GetLe64(const uint8_t* p) {
  return static_cast<uint64_t>(GetLe32(p)) | static_cast<uint64_t>(GetLe32(p + 4)) << 32;
}
uint64_t MulShr64(uint64_t a, uint64_t b) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
}

class HypervHandler : public TableHandler {
 public:
  HypervHandler(StateLayout& layout, const CpuProfile& profile, std::vector<MsrRow> rows)
      : TableHandler(layout, profile, std::move(rows), &IndexName),
        tsc_offset_(EnsureTscOffsetSlot(layout)),
        page_status_(layout.AddVmSlot("HV.tsc_page_status", 0)),
        page_seq_(layout.AddVmSlot("HV.tsc_ref.sequence", 0)),
        page_scale_(layout.AddVmSlot("HV.tsc_ref.scale", 0)),
        page_offset_(layout.AddVmSlot("HV.tsc_ref.offset", 0)),
        page_tsc_offset_(layout.AddVmSlot("HV.tsc_ref.guest_tsc_offset", 0)),
        apic_tpr_(layout.FindVcpuSlot("APIC.TPR")),
        apic_icr_(layout.FindVcpuSlot("APIC.ICR")),
        pv_eoi_(layout.FindVcpuSlot("MSR_KVM_PV_EOI_EN")),
        old_kvmclock_(layout.FindVmSlot("KVM_CLOCK.boot_vcpu_runs_old_kvmclock")) {
    for (const Entry& e : entries()) {
      switch (e.row.index) {
        case kHvMsrGuestOsId:
          guest_os_id_ = &e;
          break;
        case kHvMsrHypercall:
          hypercall_ = &e;
          break;
        case kHvMsrVpIndex:
          vp_index_ = &e;
          break;
        case kHvMsrReferenceTsc:
          reference_tsc_ = &e;
          break;
        case kHvMsrTscEmulationControl:
          tsc_emulation_control_ = &e;
          break;
        default:
          break;
      }
    }
  }

  void OnVcpuReset(Vcpu& vcpu) override {
    // kvm_hv_vcpu_init: vp_index = vcpu_idx.
    if (vp_index_ != nullptr && vp_index_->has_slots) vcpu.slots[vp_index_->first_slot] = vcpu.id;
  }

  absl::StatusOr<MsrResult> ReadMsr(const Entry& e, uint32_t index, ExitContext& ctx) override {
    const bool host = ctx.host_initiated();
    if (!host && !GuestMayAccess(index)) return MsrResult::Gp();
    if (e.row.checks & kCheckWriteOnly) return MsrResult::Gp();  // EOI and undefined indices.
    if (IsSynic(index) && !SynicActive() && !host) return MsrResult::Gp();
    switch (index) {
      case kHvMsrVpRuntime:
        return MsrResult::Ok(KvmclockNs(ctx) / 100 + Slot(e, index, ctx));
      case kHvMsrTimeRefCount:
        return MsrResult::Ok(TimeRefCount(ctx));
      case kHvMsrIcr:
        if (apic_icr_ < 0) return MsrResult::Gp();  // !lapic_in_kernel.
        return MsrResult::Ok(ctx.slot(static_cast<SlotId>(apic_icr_)));
      case kHvMsrTpr:
        if (apic_tpr_ < 0) return MsrResult::Gp();
        return MsrResult::Ok(ctx.slot(static_cast<SlotId>(apic_tpr_)));
      default:
        return GenericRead(e, index, ctx);
    }
  }

  absl::StatusOr<MsrResult> WriteMsr(const Entry& e, uint32_t index, uint64_t value,
                                     ExitContext& ctx) override {
    const bool host = ctx.host_initiated();
    if (!host && !GuestMayAccess(index)) return MsrResult::Gp();
    if (e.row.checks & kCheckReadOnly) return MsrResult::Gp();  // Undefined indices.
    if (IsSynic(index) || IsStimer(index)) {
      // synic_set_msr / stimer_set_*: an inactive SynIC takes only host writes of 0.
      if (!SynicActive() && (!host || value != 0)) return MsrResult::Gp();
    }
    switch (index) {
      case kHvMsrGuestOsId:
        Slot(e, index, ctx) = value;
        if (value == 0) Slot(*hypercall_, kHvMsrHypercall, ctx) &= ~kHvHypercallEnable;
        return MsrResult::Ok();
      case kHvMsrHypercall:
        return WriteHypercall(e, value, ctx);
      case kHvMsrVpIndex:
        if (!host || static_cast<uint32_t>(value) >= kHvMaxVpIndex) return MsrResult::Gp();
        Slot(e, index, ctx) = static_cast<uint32_t>(value);
        return MsrResult::Ok();
      case kHvMsrReset:
      case kHvMsrEom:
        return MsrResult::Ok();
      case kHvMsrVpRuntime:
        if (!host) return MsrResult::Gp();
        Slot(e, index, ctx) = value - KvmclockNs(ctx) / 100;
        return MsrResult::Ok();
      case kHvMsrReferenceTsc:
        Slot(e, index, ctx) = value;
        if (value & kHvReferenceTscEnable) {
          ctx.vm_slot(page_status_) = static_cast<uint64_t>(host ? HvTscPageStatus::kHostChanged
                                                                 : HvTscPageStatus::kGuestChanged);
          SetupTscPage(ctx);
        } else {
          ctx.vm_slot(page_status_) = static_cast<uint64_t>(HvTscPageStatus::kUnset);
        }
        return MsrResult::Ok();
      case kHvMsrEoi:
        if (value & e.row.reserved_mask) return MsrResult::Gp();
        return apic_tpr_ < 0 ? MsrResult::Gp() : MsrResult::Ok();
      case kHvMsrIcr:
        if (apic_icr_ < 0 || (value & e.row.reserved_mask)) return MsrResult::Gp();
        ctx.slot(static_cast<SlotId>(apic_icr_)) = value & ~kApicIcrBusy;
        return MsrResult::Ok();
      case kHvMsrTpr:
        if (apic_tpr_ < 0 || (value & e.row.reserved_mask)) return MsrResult::Gp();
        ctx.slot(static_cast<SlotId>(apic_tpr_)) = value & 0xff;
        return MsrResult::Ok();
      case kHvMsrVpAssistPage:
        return WriteVpAssistPage(e, value, ctx);
      case kHvMsrSiefp:
      case kHvMsrSimp:
        if ((value & kHvSynicPageEnable) && !host && profile().hv_synic == 1) {
          static const std::array<uint8_t, kPageSize> kZero{};
          if (!ctx.WriteGuest(value & ~(kPageSize - 1), kZero.data(), kZero.size())) {
            return MsrResult::Gp();  // kvm_clear_guest failed.
          }
        }
        Slot(e, index, ctx) = value;
        return MsrResult::Ok();
      case kHvMsrTscEmulationStatus:
        if (value != 0 && !host) return MsrResult::Gp();
        break;
      case kHvMsrTscInvariantControl:
        if (value & e.row.reserved_mask) return MsrResult::Gp();
        if (!host && Slot(e, index, ctx) != 0 && value == 0) return MsrResult::Gp();
        break;
      default:
        break;
    }
    if (index >= kHvMsrSint0 && index <= kHvMsrSint15) {
      // synic_set_sint: vectors 0-15 are invalid unless masked (or host-written).
      if ((value & 0xff) < 16 && !host && !(value & kHvSintMasked)) return MsrResult::Gp();
      Slot(e, index, ctx) = value;
      return MsrResult::Ok();
    }
    if (IsStimer(index)) return WriteStimer(e, index, value, ctx);
    return GenericWrite(e, index, value, ctx);
  }

 private:
  static bool IsSynic(uint32_t index) { return index >= kHvMsrScontrol && index <= kHvMsrSint15; }
  static bool IsStimer(uint32_t index) {
    return index >= kHvMsrStimer0Config && index <= kHvMsrStimer3Count;
  }
  static bool IsSyndbg(uint32_t index) {
    return (index >= kHvMsrSyndbgControl && index <= kHvMsrSyndbgPendingBuffer) ||
           index == kHvMsrSyndbgOptions;
  }
  bool SynicActive() const { return profile().hv_synic != 0; }

  // kvm_hv_{get,set}_msr_common's hyperv_enabled check, hv_check_msr_access and the SYNDBG
  // kernel-debugging gate, for guest accesses.
  bool GuestMayAccess(uint32_t index) const {
    const CpuProfile& p = profile();
    if (!p.Has(Feature::kHyperV)) return false;
    if (IsSyndbg(index) && !p.hv_syndbg) return false;
    if (!p.Has(Feature::kHvEnforceCpuid)) return true;
    const uint32_t eax = p.hv_features_eax;
    const uint32_t edx = p.hv_features_edx;
    if (IsSynic(index)) return (eax & kHvSynicAvailable) != 0;
    if (IsStimer(index)) return (eax & kHvSyntimerAvailable) != 0;
    if (IsSyndbg(index)) return (edx & kHvDebugMsrsAvailable) != 0;
    if (index >= kHvMsrCrashP0 && index <= kHvMsrCrashCtl) {
      return (edx & kHvGuestCrashMsrAvailable) != 0;
    }
    switch (index) {
      case kHvMsrGuestOsId:
      case kHvMsrHypercall:
        return (eax & kHvHypercallAvailable) != 0;
      case kHvMsrVpRuntime:
        return (eax & kHvVpRuntimeAvailable) != 0;
      case kHvMsrTimeRefCount:
        return (eax & kHvTimeRefCountAvailable) != 0;
      case kHvMsrVpIndex:
        return (eax & kHvVpIndexAvailable) != 0;
      case kHvMsrReset:
        return (eax & kHvResetAvailable) != 0;
      case kHvMsrReferenceTsc:
        return (eax & kHvReferenceTscAvailable) != 0;
      case kHvMsrEoi:
      case kHvMsrIcr:
      case kHvMsrTpr:
      case kHvMsrVpAssistPage:
        return (eax & kHvApicAccessAvailable) != 0;
      case kHvMsrTscFrequency:
      case kHvMsrApicFrequency:
        return (eax & kHvAccessFrequencyMsrs) != 0;
      case kHvMsrReenlightenmentControl:
      case kHvMsrTscEmulationControl:
      case kHvMsrTscEmulationStatus:
        return (eax & kHvAccessReenlightenment) != 0;
      case kHvMsrTscInvariantControl:
        return (eax & kHvAccessTscInvariant) != 0;
      default:
        return false;  // Undefined indices.
    }
  }

  MsrResult WriteHypercall(const Entry& e, uint64_t value, ExitContext& ctx) {
    // kvm_hv_set_msr_pw: ignored without a guest OS id.
    if (Slot(*guest_os_id_, kHvMsrGuestOsId, ctx) == 0) return MsrResult::Ok();
    if (value & kHvHypercallEnable) {
      // vmx_patch_hypercall / svm_patch_hypercall, then "ret".
      const uint8_t third = profile().intel() ? 0xc1 : 0xd9;
      const uint8_t code[4] = {0x0f, 0x01, third, 0xc3};
      if (!ctx.WriteGuest(value & ~(kPageSize - 1), code, sizeof(code))) return MsrResult::Gp();
    }
    Slot(e, kHvMsrHypercall, ctx) = value;
    return MsrResult::Ok();
  }

  MsrResult WriteVpAssistPage(const Entry& e, uint64_t value, ExitContext& ctx) {
    if (!(value & kHvVpAssistPageEnable)) {
      Slot(e, kHvMsrVpAssistPage, ctx) = value;
      if (pv_eoi_ >= 0) ctx.slot(static_cast<SlotId>(pv_eoi_)) = 0;  // kvm_lapic_set_pv_eoi(0).
      return MsrResult::Ok();
    }
    const uint64_t gpa = (value >> 12) << 12;
    const uint8_t zero[4] = {};
    if (!ctx.WriteGuest(gpa, zero, sizeof(zero))) return MsrResult::Gp();  // Error hva.
    Slot(e, kHvMsrVpAssistPage, ctx) = value;
    if (pv_eoi_ >= 0) ctx.slot(static_cast<SlotId>(pv_eoi_)) = gpa | 1;
    return MsrResult::Ok();
  }

  MsrResult WriteStimer(const Entry& e, uint32_t index, uint64_t value, ExitContext& ctx) {
    const bool host = ctx.host_initiated();
    const uint32_t off = index - kHvMsrStimer0Config;
    const uint32_t config_index = kHvMsrStimer0Config + (off & ~1u);
    uint64_t& config = Slot(e, config_index, ctx);
    if (off % 2 == 0) {  // stimer_set_config.
      if (!host && profile().Has(Feature::kHvEnforceCpuid) && (value & kHvStimerDirectMode) &&
          !(profile().hv_features_edx & kHvStimerDirectModeAvailable)) {
        return MsrResult::Gp();
      }
      const uint64_t sintx = (value >> 16) & 0xf;
      if ((config & kHvStimerEnable) && !(value & kHvStimerDirectMode) && sintx == 0) {
        value &= ~kHvStimerEnable;
      }
      config = value;
      return MsrResult::Ok();
    }
    Slot(e, index, ctx) = value;  // stimer_set_count.
    if (!host) {
      if (value == 0) {
        config &= ~kHvStimerEnable;
      } else if (config & kHvStimerAutoEnable) {
        config |= kHvStimerEnable;
      }
    }
    return MsrResult::Ok();
  }

  // The master clock: the kvm-clock model's stable flag (kvm_pv.h).
  bool MasterClock(ExitContext& ctx) const {
    if (!profile().Has(Feature::kPvClocksourceStable)) return false;
    return old_kvmclock_ < 0 || ctx.vm_slot(static_cast<SlotId>(old_kvmclock_)) == 0;
  }

  // kvm_hv_setup_tsc_page with the writing vCPU's clock.
  void SetupTscPage(ExitContext& ctx) {
    uint64_t& status = ctx.vm_slot(page_status_);
    const auto s = static_cast<HvTscPageStatus>(status);
    if (s == HvTscPageStatus::kBroken || s == HvTscPageStatus::kSet ||
        s == HvTscPageStatus::kUnset) {
      return;
    }
    const uint64_t gpa = Slot(*reference_tsc_, kHvMsrReferenceTsc, ctx) & ~(kPageSize - 1);
    std::array<uint8_t, kTscPageSize> page{};
    if (!ctx.ReadGuest(gpa, page.data(), 4)) {
      status = static_cast<uint64_t>(HvTscPageStatus::kBroken);
      return;
    }
    uint32_t seq = GetLe32(page.data());
    const bool unsafe = s != HvTscPageStatus::kGuestChanged &&
                        Slot(*tsc_emulation_control_, kHvMsrTscEmulationControl, ctx) != 0;
    if (seq != 0 && unsafe) {  // Keep the guest's page (tsc_page_update_unsafe).
      if (!ctx.ReadGuest(gpa, page.data(), page.size())) {
        status = static_cast<uint64_t>(HvTscPageStatus::kBroken);
        return;
      }
      ctx.vm_slot(page_seq_) = seq;
      ctx.vm_slot(page_scale_) = GetLe64(&page[8]);
      ctx.vm_slot(page_offset_) = GetLe64(&page[16]);
      ctx.vm_slot(page_tsc_offset_) = ctx.slot(tsc_offset_);
      status = static_cast<uint64_t>(HvTscPageStatus::kSet);
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
    if (!MasterClock(ctx) || clock.mul >= max_mul) {
      status = static_cast<uint64_t>(HvTscPageStatus::kBroken);
      return;
    }
    const uint64_t scale = static_cast<uint64_t>(
        (static_cast<unsigned __int128>(1) << (32 + clock.shift)) * clock.mul / 100);
    const uint64_t offset = KvmclockNs(ctx) / 100 - MulShr64(GuestTsc(ctx, tsc_offset_), scale);
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
    ctx.vm_slot(page_seq_) = seq;
    ctx.vm_slot(page_scale_) = scale;
    ctx.vm_slot(page_offset_) = offset;
    ctx.vm_slot(page_tsc_offset_) = ctx.slot(tsc_offset_);
    status = static_cast<uint64_t>(HvTscPageStatus::kSet);
  }

  // get_time_ref_counter.
  uint64_t TimeRefCount(ExitContext& ctx) const {
    if (static_cast<HvTscPageStatus>(ctx.vm_slot(page_status_)) != HvTscPageStatus::kSet) {
      return KvmclockNs(ctx) / 100;
    }
    const uint64_t tsc = ctx.exit().host_tsc + ctx.vm_slot(page_tsc_offset_);
    return MulShr64(tsc, ctx.vm_slot(page_scale_)) + ctx.vm_slot(page_offset_);
  }

  SlotId tsc_offset_;
  SlotId page_status_;
  SlotId page_seq_;
  SlotId page_scale_;
  SlotId page_offset_;
  SlotId page_tsc_offset_;
  int apic_tpr_;      // -1 without the lapic family.
  int apic_icr_;      // -1 without the lapic family.
  int pv_eoi_;        // -1 without the kvm-pv family.
  int old_kvmclock_;  // -1 without the kvm-pv family.
  const Entry* guest_os_id_ = nullptr;
  const Entry* hypercall_ = nullptr;
  const Entry* vp_index_ = nullptr;
  const Entry* reference_tsc_ = nullptr;
  const Entry* tsc_emulation_control_ = nullptr;
};

absl::Span<const MsrRow> RowsSpan() { return absl::MakeConstSpan(Rows()); }

absl::Status Install(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(
      controller, std::make_unique<HypervHandler>(controller.layout(), profile,
                                                  RowsToInstall(HypervFamily(), profile)));
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
