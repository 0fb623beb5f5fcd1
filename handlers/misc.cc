#include "handlers/misc.h"

#include <memory>
#include <utility>
#include <vector>

#include "handlers/families.h"
#include "handlers/table_handler.h"

namespace msrtrace {
namespace {

constexpr char kFamily[] = "misc";

// --- Hooks: KVM's rules beyond the rows' checks (msrs.c kvm_set_msr_common; vmx.c) ----------

// ref: vmx.c is_vmx_feature_control_msr_valid: the guest may not write once LOCK is set; the
// valid bits differ for the host.
MsrResult WriteFeatureControl(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                              ExitContext& ctx) {
  const bool host = ctx.host_initiated();
  uint64_t& slot = t.Slot(e, index, ctx);
  if (!host && (slot & kFeatCtlLocked)) return MsrResult::Gp();
  if (value & ~FeatureControlValidBits(t.profile(), host)) return MsrResult::Gp();
  slot = value;
  return MsrResult::Ok();
}

// ref: msrs.c: guest_has_pred_cmd_msr() gates guest writes.
MsrResult WritePredCmd(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                       ExitContext& ctx) {
  const CpuProfile& p = t.profile();
  if (!ctx.host_initiated() && !p.Has(Feature::kSpecCtrl) && !p.Has(Feature::kAmdIbpb) &&
      !p.Has(Feature::kSbpb)) {
    return MsrResult::Gp();
  }
  return t.GenericWrite(e, index, value, ctx);
}

// ref: msrs.c: !boot_cpu_has(X86_FEATURE_FLUSH_L1D) -> 1 for host writes too (the profile stands
// for the host as well).
MsrResult WriteFlushCmd(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                        ExitContext& ctx) {
  if (!t.profile().Has(Feature::kFlushL1d)) return MsrResult::Gp();
  return t.GenericWrite(e, index, value, ctx);
}

// The stored value of the single-index row `index` of the family, `fallback` without one.
uint64_t RowValue(TableHandler& t, uint32_t index, ExitContext& ctx, uint64_t fallback) {
  const TableEntry* e = t.FindEntry(index);
  return e != nullptr ? t.Slot(*e, index, ctx) : fallback;
}

// Host only; clearing CPUID_FAULT while MISC_FEATURES_ENABLES.CPUID_FAULT is set #GPs.
MsrResult WritePlatformInfo(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                            ExitContext& ctx) {
  if (!ctx.host_initiated()) return MsrResult::Gp();
  if (!(value & kPlatformInfoCpuidFault) &&
      (RowValue(t, kMsrMiscFeaturesEnables, ctx, 0) & kMiscFeaturesCpuidFault)) {
    return MsrResult::Gp();
  }
  t.Slot(e, index, ctx) = value;
  return MsrResult::Ok();
}

// CPUID_FAULT only while PLATFORM_INFO.CPUID_FAULT is set (host too).
MsrResult WriteMiscFeaturesEnables(TableHandler& t, const TableEntry& e, uint32_t index,
                                   uint64_t value, ExitContext& ctx) {
  if (value & e.row.reserved_mask) return MsrResult::Gp();
  if ((value & kMiscFeaturesCpuidFault) &&
      !(RowValue(t, kMsrPlatformInfo, ctx, kPlatformInfoCpuidFault) & kPlatformInfoCpuidFault)) {
    return MsrResult::Gp();
  }
  t.Slot(e, index, ctx) = value;
  return MsrResult::Ok();
}

// ref: msrs.c case MSR_IA32_MISC_ENABLE: guest writes may not change BTS/PEBS_UNAVAIL and keep
// EMON; MWAIT toggles need SSE3 only without the default-on quirk.
MsrResult WriteMiscEnable(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                          ExitContext& ctx) {
  uint64_t& slot = t.Slot(e, index, ctx);
  const uint64_t old = slot;
  if (!ctx.host_initiated()) {
    if ((old ^ value) & (kMiscEnableBtsUnavail | kMiscEnablePebsUnavail)) return MsrResult::Gp();
    value = (value & ~kMiscEnableEmon) | (old & kMiscEnableEmon);
  }
  if (!kMiscEnableNoMwaitQuirk && ((old ^ value) & kMiscEnableMwait) &&
      !t.profile().Has(Feature::kSse3)) {
    return MsrResult::Gp();
  }
  slot = value;
  return MsrResult::Ok();
}

// Bits 3, 6 and 8 (flush-filter disable, IGNNE emulation, TLB cache disable) are cleared before
// the reserved check.
MsrResult WriteHwcr(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                    ExitContext& ctx) {
  value &= ~0x148ull;
  if (value & ~(kHwcrMcStatusWrEn | kHwcrTscFreqSel)) return MsrResult::Gp();
  t.Slot(e, index, ctx) = value;
  return MsrResult::Ok();
}

const std::vector<MsrRow>& Rows() {
  static const auto* rows = new std::vector<MsrRow>{
      MsrRowBuilder(0x17, "IA32_PLATFORM_ID", kFamily)
          .Checks(kCheckReadOnly)
          .Scope(MsrScope::kNone)
          .Note("Reads 0; KVM has no set case, so writes are KVM_MSR_RET_UNSUPPORTED (#GP). "
                "msrs.c kvm_get_msr_common"),
      MsrRowBuilder(0x2a, "IA32_EBL_CR_POWERON", kFamily)
          .Checks(kCheckReadOnly)
          .Scope(MsrScope::kNone)
          .Note("Reads 0; writes unsupported (#GP). msrs.c kvm_get_msr_common"),
      MsrRowBuilder(0x2c, "MSR_EBC_FREQUENCY_ID", kFamily)
          .Reset(1ull << 24)
          .Checks(kCheckReadOnly)
          .Scope(MsrScope::kNone)
          .Note("Fixed 1<<24 (core clock multiplier); writes unsupported (#GP). msrs.c"),
      MsrRowBuilder(kMsrFeatureControl, "IA32_FEATURE_CONTROL", kFamily)
          .Reserved(~kKvmSupportedFeatureControl)
          .Checks(kCheckLockBit)
          .Only(Vendor::kIntelVmx)
          .OnWrite(&WriteFeatureControl)
          .Note("VMX only. Guest: #GP once LOCK (bit 0) is set, #GP for bits outside "
                "msr_ia32_feature_control_valid_bits (LOCK; VMX bits 1/2 with nested VMX; "
                "SGX_LC 17/SGX 18 with SGX; LMCE 20 with MCG_CAP.LMCE_P). Host may write any "
                "KVM_SUPPORTED_FEATURE_CONTROL bits even when locked. reserved_mask is the "
                "guest's for the profile. vmx.c is_vmx_feature_control_msr_valid"),
      MsrRowBuilder(kMsrSpecCtrl, "IA32_SPEC_CTRL", kFamily)
          .Reserved(~0x87ull)
          .Requires(Feature::kSpecCtrl)
          .Note("Guest without SPEC_CTRL CPUID: read and write #GP (vmx.c/svm.c return 1); "
                "the handler stays installed for host access. Reserved = bits the host CPU "
                "rejects (kvm_spec_ctrl_test_value trial WRMSR); modelled per profile: "
                "IBRS|STIBP|SSBD on Intel, +PSFD (bit 7) on AMD Zen 3. Applies to host "
                "writes too"),
      MsrRowBuilder(kMsrPredCmd, "IA32_PRED_CMD", kFamily)
          .Reserved(~0x81ull)
          .Checks(kCheckWriteOnly)
          .Scope(MsrScope::kNone)
          .OnWrite(&WritePredCmd)
          .Note("Write-only: reads are KVM_MSR_RET_UNSUPPORTED. Guest needs SPEC_CTRL, "
                "AMD_IBPB or SBPB CPUID (else #GP); IBPB (bit 0) with SPEC_CTRL/AMD_IBPB, SBPB "
                "(bit 7) with SBPB, other bits #GP; 0 is a no-op. The host is assumed to have "
                "the profile's features. msrs.c"),
      MsrRowBuilder(kMsrBiosSignId, "IA32_BIOS_SIGN_ID", kFamily)
          .Reset(0x100000000ull)
          .Checks(kCheckWritesIgnored | kCheckHostOnlyWrite)
          .Note("UCODE_REV. Guest writes are dropped without #GP; host writes set the value. "
                "Reset 0x100000000 on VMX (__vmx_vcpu_reset, quirk STUFF_FEATURE_MSRS), "
                "0x01000065 on SVM; taken from the profile. msrs.c; vmx.c; svm.c"),
      MsrRowBuilder(0xcd, "MSR_FSB_FREQ", kFamily)
          .Reset(3)
          .Checks(kCheckReadOnly)
          .Scope(MsrScope::kNone)
          .Note("Fixed 3; writes unsupported (#GP). msrs.c kvm_get_msr_common"),
      MsrRowBuilder(kMsrPlatformInfo, "MSR_PLATFORM_INFO", kFamily)
          .Reset(kPlatformInfoCpuidFault)
          .Checks(kCheckHostOnlyWrite)
          .OnWrite(&WritePlatformInfo)
          .Note("Reset CPUID_FAULT (bit 31) (kvm_vcpu_reset). Guest writes #GP; host writes "
                "#GP when clearing CPUID_FAULT while MISC_FEATURES_ENABLES.CPUID_FAULT is set. "
                "Guest reads allowed (guest_can_read_msr_platform_info defaults to true). "
                "msrs.c"),
      MsrRowBuilder(kMsrFlushCmd, "IA32_FLUSH_CMD", kFamily)
          .Reserved(~1ull)
          .Checks(kCheckWriteOnly)
          .Scope(MsrScope::kNone)
          .Requires(Feature::kFlushL1d)
          .OnWrite(&WriteFlushCmd)
          .Note("Write-only: reads are KVM_MSR_RET_UNSUPPORTED. Guest without FLUSH_L1D: #GP; "
                "only bit 0 (L1D_FLUSH); 0 is a no-op. The host is assumed to have the "
                "profile's features (host writes #GP without FLUSH_L1D). msrs.c"),
      MsrRowBuilder(kMsrBblCrCtl3, "MSR_IA32_BBL_CR_CTL3", kFamily)
          .Reset(0xbe702111ull)
          .Checks(kCheckWritesIgnored)
          .Scope(MsrScope::kNone)
          .Note("Legacy MSR: fixed 0xbe702111, writes dropped (no #GP). msrs.c"),
      MsrRowBuilder(kMsrMiscFeaturesEnables, "MSR_MISC_FEATURES_ENABLES", kFamily)
          .Reserved(~kMiscFeaturesCpuidFault)
          .OnWrite(&WriteMiscFeaturesEnables)
          .Note("Only CPUID_FAULT (bit 0), and only while PLATFORM_INFO.CPUID_FAULT is set; "
                "else #GP (host too). msrs.c"),
      MsrRowBuilder(0x198, "IA32_PERF_STATUS", kFamily)
          .Reset(1000ull | (4ull << 40))
          .Checks(kCheckReadOnly)
          .Scope(MsrScope::kNone)
          .Note("Fixed 1000 | 4<<40; writes unsupported (#GP). msrs.c"),
      MsrRowBuilder(kMsrMiscEnable, "IA32_MISC_ENABLE", kFamily)
          .Reset(kMiscEnableReset)
          .ReadOnly(kMiscEnableBtsUnavail | kMiscEnablePebsUnavail)
          .OnWrite(&WriteMiscEnable)
          .Note("Reset 0x1800. Guest: changing bits 11/12 (PMU_RO_MASK) #GPs; EMON (bit 7) "
                "writes are ignored (old value kept, no #GP); no other reserved bits. MWAIT "
                "(bit 18) toggles need SSE3 only without the default-on quirk "
                "MISC_ENABLE_NO_MWAIT (modelled on). Host writes store anything. msrs.c"),
      MsrRowBuilder(0x1fc, "MSR_IA32_POWER_CTL", kFamily).Note("Plain storage, any value. msrs.c"),
      MsrRowBuilder(kMsrHwcr, "MSR_K7_HWCR", kFamily)
          .Reserved(~(kHwcrMcStatusWrEn | kHwcrTscFreqSel | 0x148ull))
          .OnWrite(&WriteHwcr)
          .Note("Bits 3, 6, 8 are silently cleared; then only McStatusWrEn (18) and "
                "TscFreqSel (24) may be set, else #GP (host too). Handled for both vendors "
                "(kvm_set_msr_common). McStatusWrEn gates AMD MCi_STATUS writes. msrs.c"),
      MsrRowBuilder(0xc001001b, "MSR_K7_CLK_CTL", kFamily)
          .Reset(0x20000000)
          .Checks(kCheckReadOnly)
          .Scope(MsrScope::kNone)
          .Note("Fixed 0x20000000 (K7 ramp-up count). KVM has no set case: writes unsupported "
                "(#GP) -- decision from the absence of a set case. msrs.c"),
  };
  return *rows;
}

absl::Span<const MsrRow> RowsSpan() { return absl::MakeConstSpan(Rows()); }

absl::Status Install(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(controller,
                             std::make_unique<TableHandler>(controller.layout(), profile,
                                                            RowsToInstall(MiscFamily(), profile)));
}

}  // namespace

uint64_t FeatureControlValidBits(const CpuProfile& profile, bool host_initiated) {
  if (host_initiated) return kKvmSupportedFeatureControl;
  uint64_t valid = kFeatCtlLocked;
  if (profile.Has(Feature::kNestedVmx)) valid |= kFeatCtlVmxInsideSmx | kFeatCtlVmxOutsideSmx;
  if (profile.Has(Feature::kSgx)) {
    valid |= kFeatCtlSgx;
    if (profile.Has(Feature::kSgxLc)) valid |= kFeatCtlSgxLc;
  }
  if (profile.mcg_cap_extra & kMcgLmceP) valid |= kFeatCtlLmce;
  return valid;
}

uint64_t SpecCtrlValidBits(const CpuProfile& profile) {
  constexpr uint64_t kIbrsStibpSsbd = 0x7;
  constexpr uint64_t kPsfd = 1ull << 7;
  return profile.amd() ? (kIbrsStibpSsbd | kPsfd) : kIbrsStibpSsbd;
}

uint64_t PredCmdValidBits(const CpuProfile& profile) {
  uint64_t valid = 0;
  if (profile.Has(Feature::kSpecCtrl) || profile.Has(Feature::kAmdIbpb)) valid |= 1;
  if (profile.Has(Feature::kSbpb)) valid |= 1ull << 7;
  return valid;
}

absl::Span<const MsrRow> MiscRows() { return RowsSpan(); }

MsrRow ResolveMiscRow(const MsrRow& row, const CpuProfile& profile) {
  MsrRow r = row;
  switch (row.index) {
    case kMsrFeatureControl:
      r.reserved_mask = ~FeatureControlValidBits(profile, /*host_initiated=*/false);
      break;
    case kMsrSpecCtrl:
      r.reserved_mask = ~SpecCtrlValidBits(profile);
      break;
    case kMsrPredCmd:
      r.reserved_mask = ~PredCmdValidBits(profile);
      break;
    case kMsrFlushCmd:
      r.reserved_mask = profile.Has(Feature::kFlushL1d) ? ~1ull : ~0ull;
      break;
    case kMsrBiosSignId:
      r.reset = profile.ucode_rev;
      break;
    default:
      break;
  }
  return r;
}

const MsrFamilyDef& MiscFamily() {
  static constexpr MsrFamilyDef kDef = {kFamily, &RowsSpan, &ResolveMiscRow, &Install};
  return kDef;
}

}  // namespace msrtrace
