// The "debug" family: IA32_DEBUGCTL, the legacy last-branch/last-interrupt MSRs and, when the
// guest has LBR (PERF_CAPABILITIES.LBR_FMT), the LBR stack MSRs. Table-driven: DEBUGCTL's resolved
// row drops unsupported BTF/LBR on VMX (dropped_mask) instead of faulting. Sources: vmx.c
// vmx_set_msr / vmx_get_supported_debugctl; svm.c svm_{get,set}_msr; x86.c kvm_get_msr_common
// (LASTBRANCH*); pmu_intel.c intel_pmu_handle_lbr_msrs_access.
#include <memory>
#include <vector>

#include "absl/strings/str_format.h"
#include "handlers/breadth.h"
#include "handlers/families.h"
#include "handlers/table_handler.h"

namespace msrtrace {
namespace {

constexpr char kFamily[] = "debug";

const std::vector<MsrRow>& Rows() {
  static const auto* rows = new std::vector<MsrRow>{
      MsrRowBuilder(kMsrLbrSelect, "MSR_LBR_SELECT", kFamily)
          .Checks(kCheckAbsentWithoutFeature)
          .Requires(Feature::kLbr)
          .Only(Vendor::kIntelVmx)
          .Volatile()
          .Note("Only with guest LBR (PERF_CAPABILITIES.LBR_FMT); else KVM_MSR_RET_UNSUPPORTED. "
                "Accesses go to the hardware LBR MSRs while the guest LBR perf event is active. "
                "pmu_intel.c intel_pmu_handle_lbr_msrs_access"),
      MsrRowBuilder(kMsrLbrTos, "MSR_LBR_TOS", kFamily)
          .Checks(kCheckAbsentWithoutFeature)
          .Requires(Feature::kLbr)
          .Only(Vendor::kIntelVmx)
          .Volatile()
          .Note("As MSR_LBR_SELECT; the CPU moves it as branches retire (volatile). "
                "pmu_intel.c"),
      MsrRowBuilder(kMsrDebugCtl, "IA32_DEBUGCTL", kFamily)
          // Resolved per profile: reserved = the unsupported bits; on VMX unsupported BTF/LBR are
          // dropped (dropped_mask), the others #GP.
          .Note("VMX: supported bits (vmx_get_supported_debugctl) are LBR (0) and "
                "FREEZE_LBRS_ON_PMI (11) with guest LBR; unsupported BTF (1) / LBR (0) are "
                "dropped without #GP (kvm_pr_unimpl_wrmsr), any other unsupported bit #GP. "
                "SVM with LBR virtualization: bits 5:0 stored in the LBR VMCB, others #GP "
                "(DEBUGCTL_RESERVED_BITS). vmx.c vmx_set_msr; svm.c svm_set_msr"),
      MsrRowBuilder(kMsrLastBranchFromIp, "MSR_IA32_LAST_BRANCH_INT", kFamily)
          .Last(kMsrLastBranchFromIp + 3)
          .Checks(kCheckReadOnly)
          .Scope(MsrScope::kNone)
          .Note("LASTBRANCHFROMIP/TOIP, LASTINTFROMIP/TOIP: read 0 on VMX (x86.c "
                "kvm_get_msr_common); on SVM the LBR VMCB's br_from/br_to/last_excp_from/to, 0 "
                "until DEBUGCTL.LBR records branches (volatile on AMD; svm.c svm_get_msr). No "
                "set case: writes KVM_MSR_RET_UNSUPPORTED"),
      MsrRowBuilder(0x680, "MSR_LBR_NHM_FROM", kFamily)
          .Last(0x69f)
          .Checks(kCheckAbsentWithoutFeature)
          .Requires(Feature::kLbr)
          .Only(Vendor::kIntelVmx)
          .Volatile()
          .Note("32 LBR FROM entries (x86_perf_get_lbr records), as MSR_LBR_SELECT. "
                "pmu_intel.c intel_pmu_is_valid_lbr_msr"),
      MsrRowBuilder(0x6c0, "MSR_LBR_NHM_TO", kFamily)
          .Last(0x6df)
          .Checks(kCheckAbsentWithoutFeature)
          .Requires(Feature::kLbr)
          .Only(Vendor::kIntelVmx)
          .Volatile()
          .Note("32 LBR TO entries, as MSR_LBR_SELECT. pmu_intel.c"),
      MsrRowBuilder(0xdc0, "MSR_LBR_INFO", kFamily)
          .Last(0xddf)
          .Checks(kCheckAbsentWithoutFeature)
          .Requires(Feature::kLbr)
          .Only(Vendor::kIntelVmx)
          .Volatile()
          .Note("32 LBR INFO entries (LBR format 5), as MSR_LBR_SELECT. pmu_intel.c"),
  };
  return *rows;
}

std::string IndexName(const MsrRow& row, uint32_t index) {
  if (row.index == kMsrLastBranchFromIp) {
    static const char* const kNames[] = {"MSR_IA32_LASTBRANCHFROMIP", "MSR_IA32_LASTBRANCHTOIP",
                                         "MSR_IA32_LASTINTFROMIP", "MSR_IA32_LASTINTTOIP"};
    return kNames[index - kMsrLastBranchFromIp];
  }
  if (row.index == row.last) return row.name;
  return absl::StrFormat("%s_%u", row.name, index - row.index);
}

// DEBUGCTL bits VMX supports for the profile (vmx_get_supported_debugctl; BUS_LOCK_DETECT and
// RTM_DEBUG are not in any profile).
uint64_t VmxSupportedDebugCtl(const CpuProfile& profile) {
  return (profile.perf_capabilities & kPerfCapLbrFmt) != 0 && profile.Has(Feature::kLbr)
             ? (kDebugCtlLbr | kDebugCtlFreezeLbrsOnPmi)
             : 0;
}

absl::Span<const MsrRow> RowsSpan() { return absl::MakeConstSpan(Rows()); }

absl::Status Install(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(controller, std::make_unique<TableHandler>(
                                             controller.layout(), profile,
                                             RowsToInstall(DebugFamily(), profile), &IndexName));
}

}  // namespace

MsrRow ResolveDebugRow(const MsrRow& row, const CpuProfile& profile) {
  MsrRow r = row;
  if (row.index == kMsrDebugCtl) {
    r.reserved_mask = profile.intel() ? ~VmxSupportedDebugCtl(profile) : ~kSvmDebugCtlValid;
    // ref: vmx.c vmx_set_msr: unsupported BTF and LBR are dropped (kvm_pr_unimpl_wrmsr).
    r.dropped_mask = profile.intel() ? (kDebugCtlBtf | kDebugCtlLbr) : 0;
  }
  if (row.index == kMsrLastBranchFromIp) r.volatile_value = profile.amd();
  return r;
}

const MsrFamilyDef& DebugFamily() {
  static constexpr MsrFamilyDef kDef = {kFamily, &RowsSpan, &ResolveDebugRow, &Install};
  return kDef;
}

}  // namespace msrtrace
