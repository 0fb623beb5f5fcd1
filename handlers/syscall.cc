#include "handlers/syscall.h"

#include <memory>
#include <vector>

#include "handlers/families.h"
#include "handlers/table_handler.h"

namespace msrtrace {
namespace {

constexpr char kFamily[] = "syscall";
constexpr uint64_t kHigh32 = 0xffffffff00000000ull;

// --- Hooks: vmx.c / svm.c / msrs.c rules beyond the rows' checks ----------------------------

// VMX keeps SYSENTER_CS in a 32-bit VMCS field.
MsrResult WriteSysenterCs(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                          ExitContext& ctx) {
  t.Slot(e, index, ctx) = t.profile().intel() ? (value & 0xffffffffull) : value;
  return MsrResult::Ok();
}

// Canonicalized, then svm.c keeps (u32)data for AMD guests.
MsrResult WriteSysenterEspEip(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                              ExitContext& ctx) {
  value = CanonicalizeAddress(value, t.profile().canonical_bits());
  if (t.profile().amd()) value &= 0xffffffffull;
  t.Slot(e, index, ctx) = value;
  return MsrResult::Ok();
}

// EFER lives in VcpuRegs.
MsrResult ReadEfer(TableHandler&, const TableEntry&, uint32_t, ExitContext& ctx) {
  return MsrResult::Ok(ctx.regs().efer);
}

// ref: msrs.c set_efer().
MsrResult WriteEfer(TableHandler& t, const TableEntry&, uint32_t, uint64_t value,
                    ExitContext& ctx) {
  const uint64_t old = ctx.regs().efer;
  if (value & ~EferHostSupportedBits(t.profile())) return MsrResult::Gp();
  if (!ctx.host_initiated()) {
    if (value & ~EferGuestValidBits(t.profile())) return MsrResult::Gp();
    if (ctx.regs().paging() && ((old ^ value) & kEferLme)) return MsrResult::Gp();
  }
  value = (value & ~kEferLma) | (old & kEferLma);
  ctx.set_efer(value);
  return MsrResult::Ok();
}

// VMX user-return MSR: bits 63:32 #GP while the guest is in long mode with EFER.SCE.
MsrResult WriteSfmask(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                      ExitContext& ctx) {
  const uint64_t efer = ctx.regs().efer;
  const bool loaded = t.profile().intel() && (efer & kEferLma) && (efer & kEferSce);
  if (loaded && (value & kHigh32)) return MsrResult::Gp();
  t.Slot(e, index, ctx) = value;
  return MsrResult::Ok();
}

// RDPID alone also enables TSC_AUX for the guest.
bool HasTscAux(const CpuProfile& p) { return p.Has(Feature::kRdtscp) || p.Has(Feature::kRdpid); }

MsrResult ReadTscAux(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  if (!ctx.host_initiated() && !HasTscAux(t.profile())) return MsrResult::Gp();
  return MsrResult::Ok(t.Slot(e, index, ctx));
}

// Intel: bits 63:32 #GP (host too); AMD: truncated to 32 bits.
MsrResult WriteTscAux(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                      ExitContext& ctx) {
  if (!ctx.host_initiated() && !HasTscAux(t.profile())) return MsrResult::Gp();
  if (t.profile().intel() && (value & kHigh32)) return MsrResult::Gp();
  t.Slot(e, index, ctx) = value & 0xffffffffull;
  return MsrResult::Ok();
}

const std::vector<MsrRow>& Rows() {
  static const auto* rows = new std::vector<MsrRow>{
      MsrRowBuilder(kMsrSysenterCs, "IA32_SYSENTER_CS", kFamily)
          .OnWrite(&WriteSysenterCs)
          .Note("Any value. VMX keeps it in the 32-bit VMCS field GUEST_SYSENTER_CS, so bits "
                "63:32 are dropped (no #GP); SVM keeps 64 bits in the VMCB. vmx.c; svm.c"),
      MsrRowBuilder(kMsrSysenterEsp, "IA32_SYSENTER_ESP", kFamily)
          .Checks(kCheckCanonicalize)
          .OnWrite(&WriteSysenterEspEip)
          .Note("Canonicalized (sign-extended from bit 47/56), never #GP. AMD guests keep only "
                "bits 31:0 (svm.c; selftest msrs_test). msrs.c __kvm_set_msr"),
      MsrRowBuilder(kMsrSysenterEip, "IA32_SYSENTER_EIP", kFamily)
          .Checks(kCheckCanonicalize)
          .OnWrite(&WriteSysenterEspEip)
          .Note("Canonicalized (sign-extended from bit 47/56), never #GP. AMD guests keep only "
                "bits 31:0 (svm.c; selftest msrs_test). msrs.c __kvm_set_msr"),
      MsrRowBuilder(kMsrEfer, "IA32_EFER", kFamily)
          .Reserved(~0xd01ull)
          .ReadOnly(1ull << 10)
          .Checks(kCheckResetVaries | kCheckReadOnlyKept | kCheckValueRules)
          .State(kNoState)
          .OnRead(&ReadEfer)
          .OnWrite(&WriteEfer)
          .Note("State is VcpuRegs::efer. Bits outside KVM's supported set #GP (host too); guest: "
                "each bit needs its CPUID feature (__kvm_valid_efer), changing LME while CR0.PG "
                "#GP. LMA is read-only: the written LMA is replaced by the current LMA (no #GP). "
                "reserved_mask is the guest's for the profile. msrs.c set_efer"),
      MsrRowBuilder(kMsrStar, "MSR_STAR", kFamily)
          .Note("Any value (user-return MSR on VMX). vmx.c"),
      MsrRowBuilder(kMsrLstar, "MSR_LSTAR", kFamily)
          .Checks(kCheckCanonical)
          .Note("Non-canonical -> #GP (host too). msrs.c __kvm_set_msr"),
      MsrRowBuilder(kMsrCstar, "MSR_CSTAR", kFamily)
          .Checks(kCheckCanonical)
          .Note("Non-canonical -> #GP (host too). msrs.c __kvm_set_msr"),
      MsrRowBuilder(kMsrSfmask, "MSR_SYSCALL_MASK", kFamily)
          .Reserved(kHigh32)
          .Checks(kCheckReservedConditional)
          .OnWrite(&WriteSfmask)
          .Note("No KVM check. On VMX it is a user-return MSR: while the guest is in long mode "
                "with EFER.SCE KVM writes it to hardware, where bits 63:32 are reserved, so they "
                "#GP then (decision from vmx_setup_uret_msrs + kvm_set_user_return_msr); "
                "otherwise, and on SVM (VMCB field), any value is stored"),
      MsrRowBuilder(kMsrFsBase, "MSR_FS_BASE", kFamily)
          .Checks(kCheckCanonical)
          .Note("Non-canonical -> #GP (host too). msrs.c __kvm_set_msr"),
      MsrRowBuilder(kMsrGsBase, "MSR_GS_BASE", kFamily)
          .Checks(kCheckCanonical)
          .Note("Non-canonical -> #GP (host too). msrs.c __kvm_set_msr"),
      MsrRowBuilder(kMsrKernelGsBase, "MSR_KERNEL_GS_BASE", kFamily)
          .Checks(kCheckCanonical)
          .Note("Non-canonical -> #GP (host too). msrs.c __kvm_set_msr"),
      MsrRowBuilder(kMsrTscAux, "MSR_TSC_AUX", kFamily)
          .Reserved(kHigh32)
          .Checks(kCheckReservedConditional)
          .Requires(Feature::kRdtscp)
          .OnRead(&ReadTscAux)
          .OnWrite(&WriteTscAux)
          .Note("Guest without RDTSCP and RDPID: read and write #GP (host allowed). Intel "
                "guest: bits 63:32 set -> #GP (host too); AMD guest: truncated to 32 bits. "
                "requires_feature names RDTSCP; RDPID alone also enables it. msrs.c "
                "__kvm_set_msr/__kvm_get_msr"),
  };
  return *rows;
}

absl::Span<const MsrRow> RowsSpan() { return absl::MakeConstSpan(Rows()); }

absl::Status Install(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(
      controller, std::make_unique<TableHandler>(controller.layout(), profile,
                                                 RowsToInstall(SyscallFamily(), profile)));
}

}  // namespace

uint64_t EferHostSupportedBits(const CpuProfile& profile) {
  uint64_t bits = kEferSce | kEferLme | kEferLma | kEferNxe;
  if (profile.amd()) {
    bits |= kEferSvme | kEferFfxsr;
    if (profile.Has(Feature::kAutoIbrs)) bits |= kEferAutoIbrs;
  }
  return bits;
}

uint64_t EferGuestValidBits(const CpuProfile& profile) {
  uint64_t bits = kEferSce;
  if (profile.Has(Feature::kLm)) bits |= kEferLme | kEferLma;
  if (profile.Has(Feature::kNx)) bits |= kEferNxe;
  if (profile.Has(Feature::kSvm)) bits |= kEferSvme;
  if (profile.Has(Feature::kFfxsr)) bits |= kEferFfxsr;
  if (profile.Has(Feature::kAutoIbrs)) bits |= kEferAutoIbrs;
  return bits & EferHostSupportedBits(profile);
}

absl::Span<const MsrRow> SyscallRows() { return RowsSpan(); }

MsrRow ResolveSyscallRow(const MsrRow& row, const CpuProfile& profile) {
  MsrRow r = row;
  switch (row.index) {
    case kMsrEfer:
      r.reserved_mask = ~EferGuestValidBits(profile);
      break;
    case kMsrSfmask:
    case kMsrTscAux:
      if (profile.amd()) r.reserved_mask = 0;
      break;
    default:
      break;
  }
  return r;
}

const MsrFamilyDef& SyscallFamily() {
  static constexpr MsrFamilyDef kDef = {kFamily, &RowsSpan, &ResolveSyscallRow, &Install};
  return kDef;
}

}  // namespace msrtrace
