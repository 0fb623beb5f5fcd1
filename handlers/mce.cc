#include "handlers/mce.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "handlers/families.h"
#include "handlers/misc.h"
#include "handlers/table_handler.h"

namespace msrtrace {
namespace {

constexpr char kFamily[] = "mce";

// Other families' state the hooks read: FEATURE_CONTROL (misc, VMX only) and HWCR (misc).
enum MceState : size_t { kFeatureControl = 0, kHwcr };
constexpr TableStateDef kMceState[] = {
    {"IA32_FEATURE_CONTROL", 0, MsrScope::kVcpu, /*shared=*/false, /*borrowed=*/true},
    {"MSR_K7_HWCR", 0, MsrScope::kVcpu, /*shared=*/false, /*borrowed=*/true},
};

// --- Hooks: msrs.c get_msr_mce / set_msr_mce -------------------------------------------------
uint64_t McgCapOf(const TableHandler& t) { return McgCap(t.profile()); }
uint32_t Banks(const TableHandler& t) { return static_cast<uint32_t>(McgCapOf(t) & 0xff); }

// VMX: guest accesses need FEATURE_CONTROL.LMCE_ENABLED.
bool LmceEnabled(TableHandler& t, ExitContext& ctx) {
  return t.HasState(kFeatureControl) && (t.State(kFeatureControl, ctx) & kFeatCtlLmce) != 0;
}
// ref: msrs.c can_set_mci_status(): AMD-compatible guest CPUID and HWCR[18].
bool CanSetMciStatus(TableHandler& t, ExitContext& ctx) {
  return t.profile().amd() && t.HasState(kHwcr) && (t.State(kHwcr, ctx) & kHwcrMcStatusWrEn) != 0;
}

// Without MCG_CAP.MCG_CTL_P: guest reads #GP (the host reads the slot).
MsrResult ReadMcgCtl(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  if (!(McgCapOf(t) & kMcgCtlP) && !ctx.host_initiated()) return MsrResult::Gp();
  return t.GenericRead(e, index, ctx);
}
// Only 0 or all-ones; without MCG_CTL_P only a host write of 0.
MsrResult WriteMcgCtl(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                      ExitContext& ctx) {
  if (!(McgCapOf(t) & kMcgCtlP) && (value != 0 || !ctx.host_initiated())) return MsrResult::Gp();
  if (value != 0 && value != ~0ull) return MsrResult::Gp();
  return t.GenericWrite(e, index, value, ctx);
}

// MCi_CTL2: banks >= MCG_CAP[7:0] #GP (host too); without CMCI_P guest reads #GP.
MsrResult ReadMciCtl2(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  if (index - kMsrMc0Ctl2 >= Banks(t)) return MsrResult::Gp();
  if (!(McgCapOf(t) & kMcgCmciP) && !ctx.host_initiated()) return MsrResult::Gp();
  return t.GenericRead(e, index, ctx);
}
// Without CMCI_P only a host write of 0.
MsrResult WriteMciCtl2(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                       ExitContext& ctx) {
  if (index - kMsrMc0Ctl2 >= Banks(t)) return MsrResult::Gp();
  if (!(McgCapOf(t) & kMcgCmciP) && (value != 0 || !ctx.host_initiated())) return MsrResult::Gp();
  return t.GenericWrite(e, index, value, ctx);
}

// MCi_CTL/STATUS/ADDR/MISC: banks >= MCG_CAP[7:0] #GP (host too).
MsrResult ReadMciBank(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  if (index - kMsrMc0Ctl >= 4 * Banks(t)) return MsrResult::Gp();
  return t.GenericRead(e, index, ctx);
}
// MCi_CTL: 0 or all-ones, bits 10 and 0 may be clear. MCi_STATUS: guest writes only 0 unless
// can_set_mci_status().
MsrResult WriteMciBank(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                       ExitContext& ctx) {
  const uint32_t off = index - kMsrMc0Ctl;
  if (off >= 4 * Banks(t)) return MsrResult::Gp();
  if (off % 4 == 0 && value != 0 && (value | (1ull << 10) | 1ull) != ~0ull) return MsrResult::Gp();
  if (off % 4 == 1 && !ctx.host_initiated() && value != 0 && !CanSetMciStatus(t, ctx)) {
    return MsrResult::Gp();
  }
  return t.GenericWrite(e, index, value, ctx);
}
// KVM_X86_SETUP_MCE: every present bank's MCi_CTL starts all-ones.
uint64_t ResetMciBank(const TableHandler& t, const TableEntry& e, uint32_t index, uint32_t) {
  const uint32_t off = index - kMsrMc0Ctl;
  return off % 4 == 0 && off / 4 < Banks(t) ? ~0ull : e.row.reset;
}

// VMX: guest accesses #GP unless FEATURE_CONTROL.LMCE_ENABLED.
MsrResult ReadMcgExtCtl(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  if (!ctx.host_initiated() && !LmceEnabled(t, ctx)) return MsrResult::Gp();
  return t.GenericRead(e, index, ctx);
}
MsrResult WriteMcgExtCtl(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                         ExitContext& ctx) {
  if (!ctx.host_initiated() && !LmceEnabled(t, ctx)) return MsrResult::Gp();
  return t.GenericWrite(e, index, value, ctx);
}

const std::vector<MsrRow>& Rows() {
  static const auto* rows = new std::vector<MsrRow>{
      MsrRowBuilder(0x0, "IA32_P5_MC_ADDR", kFamily)
          .Checks(kCheckReadOnly)
          .Scope(MsrScope::kNone)
          .Note("Reads 0 (get_msr_mce); no set case, writes unsupported (#GP). msrs.c"),
      MsrRowBuilder(0x1, "IA32_P5_MC_TYPE", kFamily)
          .Checks(kCheckReadOnly)
          .Scope(MsrScope::kNone)
          .Note("Reads 0 (get_msr_mce); no set case, writes unsupported (#GP). msrs.c"),
      MsrRowBuilder(kMsrMcgCap, "IA32_MCG_CAP", kFamily)
          .Checks(kCheckReadOnly)
          .Scope(MsrScope::kNone)
          .Note("Read-only: bank count (7:0) and MCG_CTL_P/SER_P/LMCE_P from the profile "
                "(KVM_X86_SETUP_MCE); writes unsupported (#GP). msrs.c get_msr_mce"),
      MsrRowBuilder(kMsrMcgStatus, "IA32_MCG_STATUS", kFamily)
          .Note("Any value, no checks. msrs.c set_msr_mce"),
      MsrRowBuilder(kMsrMcgCtl, "IA32_MCG_CTL", kFamily)
          .Checks(kCheckResetVaries | kCheckValueRules)
          .OnRead(&ReadMcgCtl)
          .OnWrite(&WriteMcgCtl)
          .Note("Guest #GP without MCG_CAP.MCG_CTL_P (host may read it and write 0). Only 0 or "
                "all-ones, else #GP. Reset all-ones with MCG_CTL_P (KVM_X86_SETUP_MCE). msrs.c "
                "set_msr_mce/get_msr_mce"),
      MsrRowBuilder(kMsrMc0Ctl2, "IA32_MCi_CTL2", kFamily)
          .Last(kMsrMc0Ctl2 + kKvmMaxMceBanks - 1)
          .Reserved(~kMciCtl2Valid)
          .Checks(kCheckValueRules)
          .OnRead(&ReadMciCtl2)
          .OnWrite(&WriteMciCtl2)
          .Note("Banks >= MCG_CAP[7:0] #GP (host too). Without MCG_CAP.CMCI_P: guest #GP, host "
                "may write 0. Only CMCI_EN (30) and threshold (14:0). msrs.c set_msr_mce"),
      MsrRowBuilder(kMsrMc0Ctl, "IA32_MCi_CTL/STATUS/ADDR/MISC", kFamily)
          .Last(kMsrMc0Ctl + 4 * kKvmMaxMceBanks - 1)
          .Checks(kCheckValueRules)
          .OnRead(&ReadMciBank)
          .OnWrite(&WriteMciBank)
          .OnReset(&ResetMciBank)
          .Note("Banks >= MCG_CAP[7:0] #GP (host too). MCi_CTL: 0 or all-ones, bits 10 and 0 "
                "may be clear (K8 GART / UnixWare workarounds), else #GP (host too); reset "
                "all-ones for present banks (KVM_X86_SETUP_MCE). MCi_STATUS: guest writes only 0 "
                "unless AMD guest with HWCR.McStatusWrEn (bit 18); host any. ADDR/MISC: any. "
                "msrs.c set_msr_mce"),
      MsrRowBuilder(kMsrMcgExtCtl, "IA32_MCG_EXT_CTL", kFamily)
          .Reserved(~kMcgExtCtlLmceEn)
          .Checks(kCheckValueRules)
          .Only(Vendor::kIntelVmx)
          .OnRead(&ReadMcgExtCtl)
          .OnWrite(&WriteMcgExtCtl)
          .Note("VMX only. Guest #GP unless FEATURE_CONTROL.LMCE_ENABLED (bit 20) is set; only "
                "LMCE_EN (bit 0), else #GP (host too). vmx.c"),
  };
  return *rows;
}

std::string IndexName(const MsrRow& row, uint32_t index) {
  if (row.index == kMsrMc0Ctl) {
    static const char* const kRegs[4] = {"CTL", "STATUS", "ADDR", "MISC"};
    const uint32_t off = index - kMsrMc0Ctl;
    return absl::StrFormat("IA32_MC%u_%s", off / 4, kRegs[off % 4]);
  }
  if (row.index == kMsrMc0Ctl2) return absl::StrFormat("IA32_MC%u_CTL2", index - kMsrMc0Ctl2);
  return row.name;
}

absl::Span<const MsrRow> RowsSpan() { return absl::MakeConstSpan(Rows()); }

absl::Status Install(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(
      controller,
      std::make_unique<TableHandler>(controller.layout(), profile,
                                     RowsToInstall(MceFamily(), profile), &IndexName, kMceState));
}

}  // namespace

uint64_t McgCap(const CpuProfile& profile) {
  const uint64_t banks = profile.mce_banks > kKvmMaxMceBanks ? kKvmMaxMceBanks : profile.mce_banks;
  return banks | (profile.mcg_cap_extra & ~0xffull);
}

absl::Span<const MsrRow> MceRows() { return RowsSpan(); }

MsrRow ResolveMceRow(const MsrRow& row, const CpuProfile& profile) {
  MsrRow r = row;
  if (row.index == kMsrMcgCap) r.reset = McgCap(profile);
  if (row.index == kMsrMcgCtl && (profile.mcg_cap_extra & kMcgCtlP)) r.reset = ~0ull;
  return r;
}

const MsrFamilyDef& MceFamily() {
  static constexpr MsrFamilyDef kDef = {kFamily, &RowsSpan, &ResolveMceRow, &Install};
  return kDef;
}

}  // namespace msrtrace
