// The "feature" family: ARCH_CAPABILITIES and PERF_CAPABILITIES (msr_based_features_all), SMBASE
// and SMI_COUNT (host-restored state), TSX_CTRL, UMWAIT_CONTROL, XSS, XFD/XFD_ERR and the CET
// MSRs. Everything is table-driven except the CET U_CET/S_CET SUPPRESS+WAIT_ENDBR rule.
// Sources: x86.c kvm_{get,set}_msr_common and __kvm_set_msr (CET pre-checks), vmx.c
// vmx_{get,set}_msr (TSX_CTRL, UMWAIT_CONTROL).
#include <memory>
#include <vector>

#include "handlers/breadth.h"
#include "handlers/families.h"
#include "handlers/table_handler.h"

namespace msrtrace {
namespace {

constexpr char kFamily[] = "feature";

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
          .Checks(kCheckAbsentWithoutFeature)
          .Requires(Feature::kShstk)
          .Note("Needs SHSTK or IBT (else KVM_MSR_RET_UNSUPPORTED, host too). Reserved: bits "
                "9:6, SHSTK bits 1:0 without SHSTK, IBT bits 5:2, 11:10, 63:12 without IBT; "
                "SUPPRESS (10) with WAIT_ENDBR (11) #GP. x86.c kvm_is_valid_u_s_cet"),
      MsrRowBuilder(kMsrSCet, "IA32_S_CET", kFamily)
          .Reserved(kCetReservedBits)
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
      MsrRowBuilder(kMsrXss, "IA32_XSS", kFamily)
          .Requires(Feature::kXsaves)
          .Note("Guest without XSAVES: #GP. Bits outside guest_supported_xss #GP (host too): "
                "none without CET, CET_USER|CET_KERNEL (11, 12) with CET. x86.c "
                "kvm_set_msr_common MSR_IA32_XSS"),
  };
  return *rows;
}

std::string IndexName(const MsrRow& row, uint32_t index) {
  if (row.index == kMsrPl0Ssp) {
    static const char* const kNames[] = {"IA32_PL0_SSP", "IA32_PL1_SSP", "IA32_PL2_SSP",
                                         "IA32_PL3_SSP"};
    return kNames[index - kMsrPl0Ssp];
  }
  return row.name;
}

class FeatureHandler : public TableHandler {
 public:
  FeatureHandler(StateLayout& layout, const CpuProfile& profile, std::vector<MsrRow> rows)
      : TableHandler(layout, profile, std::move(rows), &IndexName) {}

  absl::StatusOr<MsrResult> WriteMsr(const Entry& e, uint32_t index, uint64_t value,
                                     ExitContext& ctx) override {
    // ref: x86.c kvm_is_valid_u_s_cet: SUPPRESS and WAIT_ENDBR together are invalid.
    if ((index == kMsrUCet || index == kMsrSCet) && (value & kCetSuppress) &&
        (value & kCetWaitEndbr)) {
      return MsrResult::Gp();
    }
    return GenericWrite(e, index, value, ctx);
  }
};

absl::Span<const MsrRow> RowsSpan() { return absl::MakeConstSpan(Rows()); }

absl::Status Install(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(controller,
                             std::make_unique<FeatureHandler>(controller.layout(), profile,
                                                              RowsToInstall(Rows(), profile)));
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
  static constexpr MsrFamilyDef kDef = {kFamily, &RowsSpan, &Install};
  return kDef;
}

}  // namespace msrtrace
