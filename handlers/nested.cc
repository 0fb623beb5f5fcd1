// The "nested" family: nested-virtualization and AMD-specific MSRs. The VMX capability MSRs
// (IA32_VMX_BASIC..IA32_VMX_VMFUNC, values per profile), AMD VM_CR, VM_HSAVE_PA, TSC_RATIO,
// DE_CFG, VIRT_SPEC_CTRL, OSVW_ID_LENGTH/OSVW_STATUS, and the AMD northbridge/legacy MSRs and
// RAPL/PERF_CTL MSRs that KVM answers with 0 or whose writes it drops. Table-driven; hooks for
// the VMX value table, VM_CR's lock rules, VM_HSAVE_PA's host path and TSC_RATIO's host rule.
// Sources: vmx.c vmx_{get,set}_msr, vmx_get_vmx_msr (nested.c nested_vmx_setup_ctls_msrs);
// svm.c svm_{get,set}_msr, svm_set_vm_cr; x86.c kvm_{get,set}_msr_common.
#include <memory>
#include <vector>

#include "absl/strings/str_format.h"
#include "handlers/breadth.h"
#include "handlers/families.h"
#include "handlers/table_handler.h"
#include "harness/core/vcpu.h"

namespace msrtrace {
namespace {

constexpr char kFamily[] = "nested";

// --- Hooks: vmx.c / svm.c rules beyond the rows' checks --------------------------------------

// The profile's nested_vmx_setup_ctls_msrs() values (vmx_get_vmx_msr).
MsrResult ReadVmx(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  if (t.FeatureGated(e, ctx)) return MsrResult::Gp();
  return MsrResult::Ok(t.profile().vmx_msrs[index - kMsrVmxBasic]);
}
// Guest writes #GP; host writes (vmx_set_vmx_msr restore) only of the current value.
MsrResult WriteVmx(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                   ExitContext& ctx) {
  if (t.FeatureGated(e, ctx) || !ctx.host_initiated()) return MsrResult::Gp();
  return value == t.profile().vmx_msrs[index - kMsrVmxBasic] ? MsrResult::Ok() : MsrResult::Gp();
}

// ref: svm.c svm_set_vm_cr: once SVMDIS is set, LOCK and SVMDIS keep their values; SVMDIS with
// EFER.SVME #GPs (fault-atomic here).
MsrResult WriteVmCr(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                    ExitContext& ctx) {
  if (value & e.row.reserved_mask) return MsrResult::Gp();
  uint64_t& slot = t.Slot(e, index, ctx);
  uint64_t chg = kVmCrValid;
  if (slot & kVmCrSvmDis) chg &= ~(kVmCrSvmLock | kVmCrSvmDis);
  const uint64_t next = (slot & ~chg) | (value & chg);
  if ((next & kVmCrSvmDis) && (ctx.regs().efer & kEferSvme)) return MsrResult::Gp();
  slot = next;
  return MsrResult::Ok();
}

// ref: svm.c: guests need page_address_valid(); the host may write anything. Stored & PAGE_MASK.
MsrResult WriteVmHsavePa(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                         ExitContext& ctx) {
  if (!ctx.host_initiated() && (value & e.row.reserved_mask)) return MsrResult::Gp();
  t.Slot(e, index, ctx) = value & ~0xfffull;
  return MsrResult::Ok();
}

// Without TSCRATEMSR the host may write only the default ratio.
MsrResult WriteTscRatio(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                        ExitContext& ctx) {
  if (!t.profile().Has(Feature::kTscRateMsr) &&
      (!ctx.host_initiated() || value != kTscRatioDefault)) {
    return MsrResult::Gp();
  }
  return t.GenericWrite(e, index, value, ctx);
}

MsrRowBuilder ZeroRead(uint32_t index, const char* name, const char* note) {
  return MsrRowBuilder(index, name, kFamily).Scope(MsrScope::kNone).Note(note);
}

const std::vector<MsrRow>& Rows() {
  static const auto* rows = new std::vector<MsrRow>{
      MsrRowBuilder(0x79, "IA32_UCODE_WRITE", kFamily)
          .Checks(kCheckWriteOnly | kCheckWritesIgnored)
          .Scope(MsrScope::kNone)
          .Note("Writes dropped (no microcode load); no get case, reads "
                "KVM_MSR_RET_UNSUPPORTED. x86.c kvm_set_msr_common"),
      ZeroRead(0x199, "IA32_PERF_CTL", "Reads 0; no set case (#GP). x86.c kvm_get_msr_common")
          .Checks(kCheckReadOnly),
      MsrRowBuilder(kMsrVmxBasic, "IA32_VMX", kFamily)
          .Last(kMsrVmxVmfunc)
          .Checks(kCheckHostOnlyWrite | kCheckFeatureGatesHost)
          .Scope(MsrScope::kNone)
          .Requires(Feature::kNestedVmx)
          .Only(Vendor::kIntelVmx)
          .OnRead(&ReadVmx)
          .OnWrite(&WriteVmx)
          .Note("VMX capability MSRs BASIC..VMFUNC, the profile's nested_vmx_setup_ctls_msrs() "
                "values. Without nested VMX: #GP (host too). Guest writes #GP (read-only). Host "
                "writes (vmx_set_vmx_msr restore) are modelled as accepted only when equal to "
                "the current value. vmx.c vmx_{get,set}_msr"),
      ZeroRead(0x606, "MSR_RAPL_POWER_UNIT", "Reads 0; no set case (#GP). x86.c kvm_get_msr_common")
          .Checks(kCheckReadOnly),
      ZeroRead(0x611, "MSR_PKG_ENERGY_STATUS",
               "Reads 0; no set case (#GP). x86.c kvm_get_msr_common")
          .Checks(kCheckReadOnly),
      ZeroRead(0x619, "MSR_DRAM_ENERGY_STATUS",
               "Reads 0; no set case (#GP). x86.c kvm_get_msr_common")
          .Checks(kCheckReadOnly),
      ZeroRead(0x639, "MSR_PP0_ENERGY_STATUS",
               "Reads 0; no set case (#GP). x86.c kvm_get_msr_common")
          .Checks(kCheckReadOnly),
      ZeroRead(0x641, "MSR_PP1_ENERGY_STATUS",
               "Reads 0; no set case (#GP). x86.c kvm_get_msr_common")
          .Checks(kCheckReadOnly),
      MsrRowBuilder(kMsrTscRatio, "MSR_AMD64_TSC_RATIO", kFamily)
          .Reset(kTscRatioDefault)
          .Reserved(kTscRatioReserved)
          .Requires(Feature::kTscRateMsr)
          .Only(Vendor::kAmdSvm)
          .OnWrite(&WriteTscRatio)
          .Note("SVM. Guest without TSCRATEMSR: #GP; host may then write only the default "
                "1.0 (0x100000000). Bits 63:40 reserved (#GP). svm.c svm_{get,set}_msr"),
      ZeroRead(kMsrAmdSyscfg, "MSR_AMD64_SYSCFG",
               "Reads 0; no set case (#GP). x86.c kvm_get_msr_common")
          .Checks(kCheckReadOnly),
      MsrRowBuilder(0xc001001f, "MSR_AMD64_NB_CFG", kFamily)
          .Checks(kCheckWritesIgnored)
          .Scope(MsrScope::kNone)
          .Note("Reads 0, writes dropped. x86.c kvm_{get,set}_msr_common"),
      MsrRowBuilder(0xc0010020, "MSR_AMD64_PATCH_LOADER", kFamily)
          .Checks(kCheckWriteOnly | kCheckWritesIgnored)
          .Scope(MsrScope::kNone)
          .Note("Writes dropped; no get case (reads KVM_MSR_RET_UNSUPPORTED). x86.c"),
      ZeroRead(0xc0010055, "MSR_K8_INT_PENDING_MSG",
               "Reads 0; no set case (#GP). x86.c kvm_get_msr_common")
          .Checks(kCheckReadOnly),
      ZeroRead(kMsrMmioConfBase, "MSR_FAM10H_MMIO_CONF_BASE",
               "Reads 0; writes of 0 accepted, anything else #GP. x86.c kvm_set_msr_common")
          .Reserved(~0ull),
      ZeroRead(0xc0010112, "MSR_K8_TSEG_ADDR",
               "Reads 0; no set case (#GP). x86.c kvm_get_msr_common")
          .Checks(kCheckReadOnly),
      ZeroRead(0xc0010113, "MSR_K8_TSEG_MASK",
               "Reads 0; no set case (#GP). x86.c kvm_get_msr_common")
          .Checks(kCheckReadOnly),
      MsrRowBuilder(kMsrVmCr, "MSR_VM_CR", kFamily)
          .Reserved(~kVmCrValid)
          .Only(Vendor::kAmdSvm)
          .OnWrite(&WriteVmCr)
          .Note("SVM. Bits 4:0 only (else #GP). Once SVMDIS (4) is set, LOCK (3) and SVMDIS "
                "keep their values; setting SVMDIS while EFER.SVME is set #GP (KVM stores "
                "before that check; the model is fault-atomic). svm.c svm_set_vm_cr"),
      MsrRowBuilder(kMsrVmHsavePa, "MSR_VM_HSAVE_PA", kFamily)
          .Reserved(0xfff)
          .Checks(kCheckMaxPhyAddr)
          .Only(Vendor::kAmdSvm)
          .OnWrite(&WriteVmHsavePa)
          .Note("SVM. Guest: must be page aligned and below MAXPHYADDR (page_address_valid), "
                "else #GP. Host: any value (migration from old kernels). Stored & PAGE_MASK. "
                "svm.c svm_set_msr"),
      MsrRowBuilder(kMsrVirtSpecCtrl, "MSR_AMD64_VIRT_SPEC_CTRL", kFamily)
          .Reserved(~(1ull << 2))
          .Requires(Feature::kVirtSsbd)
          .Only(Vendor::kAmdSvm)
          .Note("SVM. Guest without VIRT_SSBD: #GP; only SSBD (bit 2), else #GP (host too). "
                "svm.c svm_{get,set}_msr"),
      MsrRowBuilder(kMsrOsvwIdLength, "MSR_AMD64_OSVW_ID_LENGTH", kFamily)
          .Checks(kCheckFeatureGatesHost)
          .Requires(Feature::kOsvw)
          .Note("Without OSVW CPUID: #GP (host too). Reset: SVM sets length >= 3 "
                "(svm_vcpu_create; the profile's host has 3). x86.c kvm_{get,set}_msr_common"),
      MsrRowBuilder(kMsrOsvwStatus, "MSR_AMD64_OSVW_STATUS", kFamily)
          .Checks(kCheckFeatureGatesHost)
          .Requires(Feature::kOsvw)
          .Note("As OSVW_ID_LENGTH; reset 0 (no erratum reported). x86.c"),
      MsrRowBuilder(0xc0011022, "MSR_AMD64_DC_CFG", kFamily)
          .Checks(kCheckWritesIgnored)
          .Scope(MsrScope::kNone)
          .Note("Reads 0, writes dropped. x86.c kvm_{get,set}_msr_common"),
      MsrRowBuilder(0xc0011023, "MSR_AMD64_TW_CFG", kFamily)
          .Checks(kCheckWritesIgnored)
          .Scope(MsrScope::kNone)
          .Note("Reads 0, writes dropped. x86.c kvm_{get,set}_msr_common"),
      MsrRowBuilder(kMsrDeCfg, "MSR_AMD64_DE_CFG", kFamily)
          .Only(Vendor::kAmdSvm)
          .Note("SVM. Bits outside the host's supported DE_CFG feature bits (LFENCE_SERIALIZE, "
                "bit 1) #GP (host too). svm.c svm_set_msr; x86.c msr_based_features_all"),
      MsrRowBuilder(0xc001102a, "MSR_AMD64_BU_CFG2", kFamily)
          .Checks(kCheckWritesIgnored)
          .Scope(MsrScope::kNone)
          .Note("Reads 0, writes dropped. x86.c kvm_{get,set}_msr_common"),
      MsrRowBuilder(0xc001102c, "MSR_F15H_EX_CFG", kFamily)
          .Checks(kCheckWritesIgnored)
          .Scope(MsrScope::kNone)
          .Note("Reads 0, writes dropped. x86.c kvm_{get,set}_msr_common"),
  };
  return *rows;
}

std::string IndexName(const MsrRow& row, uint32_t index) {
  if (row.index == kMsrVmxBasic) {
    static const char* const kNames[] = {
        "IA32_VMX_BASIC",          "IA32_VMX_PINBASED_CTLS",      "IA32_VMX_PROCBASED_CTLS",
        "IA32_VMX_EXIT_CTLS",      "IA32_VMX_ENTRY_CTLS",         "IA32_VMX_MISC",
        "IA32_VMX_CR0_FIXED0",     "IA32_VMX_CR0_FIXED1",         "IA32_VMX_CR4_FIXED0",
        "IA32_VMX_CR4_FIXED1",     "IA32_VMX_VMCS_ENUM",          "IA32_VMX_PROCBASED_CTLS2",
        "IA32_VMX_EPT_VPID_CAP",   "IA32_VMX_TRUE_PINBASED_CTLS", "IA32_VMX_TRUE_PROCBASED_CTLS",
        "IA32_VMX_TRUE_EXIT_CTLS", "IA32_VMX_TRUE_ENTRY_CTLS",    "IA32_VMX_VMFUNC"};
    return kNames[index - kMsrVmxBasic];
  }
  return row.name;
}

absl::Span<const MsrRow> RowsSpan() { return absl::MakeConstSpan(Rows()); }

absl::Status Install(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(controller, std::make_unique<TableHandler>(
                                             controller.layout(), profile,
                                             RowsToInstall(NestedFamily(), profile), &IndexName));
}

}  // namespace

MsrRow ResolveNestedRow(const MsrRow& row, const CpuProfile& profile) {
  MsrRow r = row;
  switch (row.index) {
    case kMsrDeCfg:
      r.reserved_mask = ~profile.de_cfg_supported;
      break;
    case kMsrOsvwIdLength:
      r.reset = profile.amd() ? 3 : 0;
      break;
    default:
      break;
  }
  return r;
}

const MsrFamilyDef& NestedFamily() {
  static constexpr MsrFamilyDef kDef = {kFamily, &RowsSpan, &ResolveNestedRow, &Install};
  return kDef;
}

}  // namespace msrtrace
