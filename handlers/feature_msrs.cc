// The "feature" family: ARCH_CAPABILITIES and PERF_CAPABILITIES (msr_based_features_all), SMBASE
// and SMI_COUNT (host-restored state), TSX_CTRL, UMWAIT_CONTROL, XSS, XFD/XFD_ERR and the CET
// MSRs. Everything is table-driven except the CET U_CET/S_CET SUPPRESS+WAIT_ENDBR rule.
// Sources: x86.c kvm_{get,set}_msr_common and __kvm_set_msr (CET pre-checks), vmx.c
// vmx_{get,set}_msr (TSX_CTRL, UMWAIT_CONTROL).
#include <memory>
#include <vector>

#include "absl/strings/str_format.h"
#include "handlers/breadth.h"
#include "handlers/families.h"
#include "handlers/table_handler.h"

namespace msrtrace {
namespace {

constexpr char kFamily[] = "feature";

// Family state: IA32_FEATURE_CONTROL, the misc family's (absent on AMD).
enum FeatureState : size_t { kFeatureControl = 0 };
constexpr TableStateDef kFeatureState[] = {
    {"IA32_FEATURE_CONTROL", 0, MsrScope::kVcpu, /*shared=*/false, /*borrowed=*/true},
};

// ref: vmx.c MSR_IA32_SGXLEPUBKEYHASH0..3: a locked FEATURE_CONTROL without SGX_LC_ENABLED
// makes guest writes fault.
MsrResult SgxHashWrite(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                       ExitContext& ctx) {
  if (!ctx.host_initiated() && t.HasState(kFeatureControl)) {
    const uint64_t fc = t.State(kFeatureControl, ctx);
    if ((fc & 1) && !(fc & (1ull << 17))) return MsrResult::Gp();
  }
  return t.GenericWrite(e, index, value, ctx);
}

// ref: x86.c kvm_is_valid_u_s_cet: SUPPRESS and WAIT_ENDBR together are invalid.
MsrResult CetWrite(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                   ExitContext& ctx) {
  if ((value & kCetSuppress) && (value & kCetWaitEndbr)) return MsrResult::Gp();
  return t.GenericWrite(e, index, value, ctx);
}

const std::vector<MsrRow>& Rows() {
  static const auto* rows = new std::vector<MsrRow>{
      MsrRowBuilder(kMsrSmiCount, "MSR_SMI_COUNT", kFamily)
          .Checks(kCheckHostOnlyWrite)
          .Note("Guest reads vcpu->arch.smi_count; guest writes #GP, host writes set it. "
                "x86.c kvm_{get,set}_msr_common"),
      MsrRowBuilder(kMsrSmbase, "IA32_SMBASE", kFamily)
          .Reset(kSmbaseReset)
          .Checks(kCheckHostOnlyRead | kCheckHostOnlyWrite)
          .Note("Host-only (KVM_GET/SET_MSRS for migration): guest reads and writes #GP. Reset "
                "0x30000 (kvm_vcpu_reset). x86.c kvm_{get,set}_msr_common"),
      MsrRowBuilder(kMsrUmwaitControl, "IA32_UMWAIT_CONTROL", kFamily)
          .Reserved(0xffffffff00000002ull)
          .Requires(Feature::kWaitpkg)
          .Only(Vendor::kIntelVmx)
          .Note("VMX only. Guest without WAITPKG: #GP. Bit 1 and bits 63:32 reserved (host "
                "too). vmx.c vmx_set_msr MSR_IA32_UMWAIT_CONTROL"),
      MsrRowBuilder(kMsrArchCapabilities, "IA32_ARCH_CAPABILITIES", kFamily)
          .Checks(kCheckHostOnlyWrite)
          .Requires(Feature::kArchCapabilities)
          .Note("Reads vcpu->arch.arch_capabilities (reset kvm_get_arch_capabilities(), the "
                "profile's value); guest without CPUID 7.EDX[29]: #GP. Guest writes #GP, host "
                "writes set it (read-only feature MSR). x86.c kvm_{get,set}_msr_common"),
      MsrRowBuilder(kMsrTsxCtrl, "IA32_TSX_CTRL", kFamily)
          .Reserved(~0x3ull)
          .Requires(Feature::kTsxCtrl)
          .Only(Vendor::kIntelVmx)
          .Note("VMX only. Guest needs ARCH_CAPABILITIES.TSX_CTRL_MSR (bit 7), else #GP; only "
                "RTM_DISABLE (0) and CPUID_CLEAR (1), else #GP (host too). vmx.c vmx_set_msr"),
      MsrRowBuilder(kMsrXfd, "IA32_XFD", kFamily)
          .Requires(Feature::kXfd)
          .Note("Guest without XFD CPUID: #GP. Bits outside kvm_guest_supported_xfd() "
                "(XFEATURE_MASK_USER_DYNAMIC & guest XCR0: AMX TILE_DATA, bit 18) #GP (host "
                "too). x86.c kvm_set_msr_common MSR_IA32_XFD"),
      MsrRowBuilder(kMsrXfdErr, "IA32_XFD_ERR", kFamily)
          .Requires(Feature::kXfd)
          .Note("As IA32_XFD: guest without XFD #GP; bits outside the supported XFD set #GP. "
                "x86.c kvm_set_msr_common MSR_IA32_XFD_ERR"),
      MsrRowBuilder(kMsrPerfCapabilities, "IA32_PERF_CAPABILITIES", kFamily)
          .Checks(kCheckHostOnlyWrite)
          .Requires(Feature::kPdcm)
          .Note("Reads vcpu->arch.perf_capabilities (reset kvm_caps.supported_perf_cap, the "
                "profile's value); guest without PDCM: #GP. Guest writes #GP; host writes "
                "outside supported_perf_cap #GP. x86.c kvm_{get,set}_msr_common"),
      MsrRowBuilder(kMsrUCet, "IA32_U_CET", kFamily)
          .Reserved(kCetReservedBits)
          .OnWrite(&CetWrite)
          .Checks(kCheckAbsentWithoutFeature)
          .Requires(Feature::kShstk)
          .Note("Needs SHSTK or IBT (else KVM_MSR_RET_UNSUPPORTED, host too). Reserved: bits "
                "9:6, SHSTK bits 1:0 without SHSTK, IBT bits 5:2, 11:10, 63:12 without IBT; "
                "SUPPRESS (10) with WAIT_ENDBR (11) #GP. x86.c kvm_is_valid_u_s_cet"),
      MsrRowBuilder(kMsrSCet, "IA32_S_CET", kFamily)
          .Reserved(kCetReservedBits)
          .OnWrite(&CetWrite)
          .Checks(kCheckAbsentWithoutFeature)
          .Requires(Feature::kShstk)
          .Note("As IA32_U_CET. x86.c kvm_is_valid_u_s_cet; vmx.c GUEST_S_CET"),
      MsrRowBuilder(kMsrPl0Ssp, "IA32_PL_SSP", kFamily)
          .Last(kMsrPl3Ssp)
          .Reserved(0x3)
          .Checks(kCheckAbsentWithoutFeature | kCheckCanonical)
          .Requires(Feature::kShstk)
          .Note("PL0_SSP..PL3_SSP. Need SHSTK (else KVM_MSR_RET_UNSUPPORTED, host too); "
                "non-canonical or not 4-byte aligned #GP. x86.c __kvm_set_msr"),
      MsrRowBuilder(kMsrIntSspTab, "IA32_INT_SSP_TAB", kFamily)
          .Checks(kCheckAbsentWithoutFeature | kCheckCanonical)
          .Requires(Feature::kShstk)
          .Note("Needs SHSTK (else KVM_MSR_RET_UNSUPPORTED); non-canonical #GP; no alignment "
                "rule. x86.c __kvm_set_msr"),
      MsrRowBuilder(0x8c, "IA32_SGXLEPUBKEYHASH", kFamily)
          .Last(0x8f)
          .OnWrite(&SgxHashWrite)
          .Requires(Feature::kSgxLc)
          .Only(Vendor::kIntelVmx)
          .Note("VMX. Guest without SGX_LC: #GP; guest writes also #GP once FEATURE_CONTROL is "
                "locked without SGX_LC_ENABLED (bit 17); host any. Reset: the host's hash (0 in "
                "the profiles, none of which has SGX). vmx.c vmx_{get,set}_msr"),
      MsrRowBuilder(0x3f1, "MSR_IA32_PEBS_ENABLE", kFamily)
          .Checks(kCheckAbsentWithoutFeature)
          .Requires(Feature::kPebs)
          .Only(Vendor::kIntelVmx)
          .Note("Only with PERF_CAPABILITIES PEBS format (else KVM_MSR_RET_UNSUPPORTED); with "
                "baseline the GP and fixed counter bits (pebs_enable_mask). No profile has "
                "PEBS. pmu_intel.c intel_pmu_set_msr"),
      MsrRowBuilder(0x3f2, "MSR_PEBS_DATA_CFG", kFamily)
          .Reserved(~0xff00000full)
          .Checks(kCheckAbsentWithoutFeature)
          .Requires(Feature::kPebs)
          .Only(Vendor::kIntelVmx)
          .Note("PEBS baseline only; bits outside 0xff00000f #GP (pebs_data_cfg_mask). "
                "pmu_intel.c"),
      MsrRowBuilder(0x560, "MSR_IA32_RTIT_OUTPUT_BASE", kFamily)
          .Last(0x561)
          .Checks(kCheckFeatureGatesHost)
          .Requires(Feature::kIntelPt)
          .Only(Vendor::kIntelVmx)
          .Note("RTIT_OUTPUT_BASE/MASK. Only with pt_mode=host_guest (default system mode: #GP, "
                "host too); no profile enables guest PT. vmx.c vmx_{get,set}_msr"),
      MsrRowBuilder(0x570, "MSR_IA32_RTIT_CTL_STATUS_CR3", kFamily)
          .Last(0x572)
          .Checks(kCheckFeatureGatesHost)
          .Requires(Feature::kIntelPt)
          .Only(Vendor::kIntelVmx)
          .Note("RTIT_CTL, RTIT_STATUS, RTIT_CR3_MATCH, as RTIT_OUTPUT_BASE. vmx.c"),
      MsrRowBuilder(0x580, "MSR_IA32_RTIT_ADDR", kFamily)
          .Last(0x587)
          .Checks(kCheckFeatureGatesHost)
          .Requires(Feature::kIntelPt)
          .Only(Vendor::kIntelVmx)
          .Note("RTIT_ADDR0_A..ADDR3_B, as RTIT_OUTPUT_BASE. vmx.c"),
      MsrRowBuilder(0x600, "MSR_IA32_DS_AREA", kFamily)
          .Checks(kCheckAbsentWithoutFeature | kCheckCanonical)
          .Requires(Feature::kPebs)
          .Only(Vendor::kIntelVmx)
          .Note("With guest DS/PEBS only (else KVM_MSR_RET_UNSUPPORTED); non-canonical #GP. "
                "pmu_intel.c intel_pmu_set_msr"),
      MsrRowBuilder(0xd90, "IA32_BNDCFGS", kFamily)
          .Reserved(0xffcull)
          .Checks(kCheckFeatureGatesHost | kCheckCanonical)
          .Requires(Feature::kMpx)
          .Only(Vendor::kIntelVmx)
          .Note("VMX with host MPX and guest MPX, else #GP (host too without host MPX; no "
                "profile has MPX). Bits 11:2 reserved; the base must be canonical. vmx.c "
                "vmx_set_msr MSR_IA32_BNDCFGS"),
      MsrRowBuilder(kMsrXss, "IA32_XSS", kFamily)
          .Requires(Feature::kXsaves)
          .Note("Guest without XSAVES: #GP. Bits outside guest_supported_xss #GP (host too): "
                "none without CET, CET_USER|CET_KERNEL (11, 12) with CET. x86.c "
                "kvm_set_msr_common MSR_IA32_XSS"),
  };
  return *rows;
}

std::string IndexName(const MsrRow& row, uint32_t index) {
  const uint32_t off = index - row.index;
  switch (row.index) {
    case kMsrPl0Ssp:
      return absl::StrFormat("IA32_PL%u_SSP", off);
    case 0x560:
      return off == 0 ? "MSR_IA32_RTIT_OUTPUT_BASE" : "MSR_IA32_RTIT_OUTPUT_MASK";
    case 0x570: {
      static const char* const kNames[] = {"MSR_IA32_RTIT_CTL", "MSR_IA32_RTIT_STATUS",
                                           "MSR_IA32_RTIT_CR3_MATCH"};
      return kNames[off];
    }
    case 0x580:
      return absl::StrFormat("MSR_IA32_RTIT_ADDR%u_%c", off / 2, off % 2 == 0 ? 'A' : 'B');
    default:
      if (row.index == row.last) return row.name;
      return absl::StrFormat("%s%u", row.name, off);
  }
}

absl::Span<const MsrRow> RowsSpan() { return absl::MakeConstSpan(Rows()); }

absl::Status Install(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(controller,
                             std::make_unique<TableHandler>(controller.layout(), profile,
                                                            RowsToInstall(FeatureFamily(), profile),
                                                            &IndexName, kFeatureState));
}

}  // namespace

MsrRow ResolveFeatureRow(const MsrRow& row, const CpuProfile& profile) {
  MsrRow r = row;
  switch (row.index) {
    case kMsrArchCapabilities:
      r.reset = profile.arch_capabilities;
      break;
    case kMsrPerfCapabilities:
      r.reset = profile.perf_capabilities;
      r.reserved_mask = ~profile.perf_capabilities;
      break;
    case kMsrXfd:
    case kMsrXfdErr:
      r.reserved_mask = ~profile.supported_xfd;
      break;
    case kMsrXss:
      r.reserved_mask = ~profile.supported_xss;
      break;
    case kMsrUCet:
    case kMsrSCet:
      // SHSTK or IBT makes the MSR exist; each feature's bits are reserved without it.
      if (!profile.Has(Feature::kShstk) && profile.Has(Feature::kIbt)) {
        r.requires_feature = Feature::kIbt;
      }
      if (!profile.Has(Feature::kShstk)) r.reserved_mask |= kCetShstkBits;
      if (!profile.Has(Feature::kIbt)) r.reserved_mask |= kCetIbtBits;
      break;
    default:
      break;
  }
  return r;
}

const MsrFamilyDef& FeatureFamily() {
  static constexpr MsrFamilyDef kDef = {kFamily, &RowsSpan, &ResolveFeatureRow, &Install};
  return kDef;
}

}  // namespace msrtrace
