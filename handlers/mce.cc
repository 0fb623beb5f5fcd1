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
          .Note("Guest #GP without MCG_CAP.MCG_CTL_P (host may read it and write 0). Only 0 or "
                "all-ones, else #GP. Reset all-ones with MCG_CTL_P (KVM_X86_SETUP_MCE). msrs.c "
                "set_msr_mce/get_msr_mce"),
      MsrRowBuilder(kMsrMc0Ctl2, "IA32_MCi_CTL2", kFamily)
          .Last(kMsrMc0Ctl2 + kKvmMaxMceBanks - 1)
          .Reserved(~kMciCtl2Valid)
          .Checks(kCheckValueRules)
          .Note("Banks >= MCG_CAP[7:0] #GP (host too). Without MCG_CAP.CMCI_P: guest #GP, host "
                "may write 0. Only CMCI_EN (30) and threshold (14:0). msrs.c set_msr_mce"),
      MsrRowBuilder(kMsrMc0Ctl, "IA32_MCi_CTL/STATUS/ADDR/MISC", kFamily)
          .Last(kMsrMc0Ctl + 4 * kKvmMaxMceBanks - 1)
          .Checks(kCheckValueRules)
          .Note("Banks >= MCG_CAP[7:0] #GP (host too). MCi_CTL: 0 or all-ones, bits 10 and 0 "
                "may be clear (K8 GART / UnixWare workarounds), else #GP (host too); reset "
                "all-ones for present banks (KVM_X86_SETUP_MCE). MCi_STATUS: guest writes only 0 "
                "unless AMD guest with HWCR.McStatusWrEn (bit 18); host any. ADDR/MISC: any. "
                "msrs.c set_msr_mce"),
      MsrRowBuilder(kMsrMcgExtCtl, "IA32_MCG_EXT_CTL", kFamily)
          .Reserved(~kMcgExtCtlLmceEn)
          .Checks(kCheckValueRules)
          .Only(Vendor::kIntelVmx)
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

class MceHandler : public TableHandler {
 public:
  MceHandler(StateLayout& layout, const CpuProfile& profile, std::vector<MsrRow> rows)
      : TableHandler(layout, profile, std::move(rows), &IndexName),
        mcg_cap_(McgCap(profile)),
        banks_(static_cast<uint32_t>(McgCap(profile) & 0xff)),
        feature_control_slot_(layout.FindVcpuSlot("IA32_FEATURE_CONTROL")),
        hwcr_slot_(layout.FindVcpuSlot("MSR_K7_HWCR")) {}

  void OnVcpuReset(Vcpu& vcpu) override {
    // KVM_X86_SETUP_MCE: MCG_CTL and every present bank's MCi_CTL start all-ones.
    for (const Entry& e : entries()) {
      if (e.row.index == kMsrMcgCtl && (mcg_cap_ & kMcgCtlP)) vcpu.slots[e.first_slot] = ~0ull;
      if (e.row.index == kMsrMc0Ctl) {
        for (uint32_t b = 0; b < banks_ && b < kKvmMaxMceBanks; ++b) {
          vcpu.slots[e.first_slot + 4 * b] = ~0ull;
        }
      }
    }
  }

  absl::StatusOr<MsrResult> ReadMsr(const Entry& e, uint32_t index, ExitContext& ctx) override {
    const bool host = ctx.host_initiated();
    switch (e.row.index) {
      case kMsrMcgCap:
        return MsrResult::Ok(mcg_cap_);
      case kMsrMcgCtl:
        if (!(mcg_cap_ & kMcgCtlP) && !host) return MsrResult::Gp();
        break;
      case kMsrMc0Ctl2:
        if (index - kMsrMc0Ctl2 >= banks_) return MsrResult::Gp();
        if (!(mcg_cap_ & kMcgCmciP) && !host) return MsrResult::Gp();
        break;
      case kMsrMc0Ctl:
        if (index - kMsrMc0Ctl >= 4 * banks_) return MsrResult::Gp();
        break;
      case kMsrMcgExtCtl:
        if (!host && !LmceEnabled(ctx)) return MsrResult::Gp();
        break;
      default:
        break;
    }
    return GenericRead(e, index, ctx);
  }

  absl::StatusOr<MsrResult> WriteMsr(const Entry& e, uint32_t index, uint64_t value,
                                     ExitContext& ctx) override {
    const bool host = ctx.host_initiated();
    switch (e.row.index) {
      case kMsrMcgCtl:
        if (!(mcg_cap_ & kMcgCtlP) && (value != 0 || !host)) return MsrResult::Gp();
        if (value != 0 && value != ~0ull) return MsrResult::Gp();
        break;
      case kMsrMc0Ctl2:
        if (index - kMsrMc0Ctl2 >= banks_) return MsrResult::Gp();
        if (!(mcg_cap_ & kMcgCmciP) && (value != 0 || !host)) return MsrResult::Gp();
        break;
      case kMsrMc0Ctl: {
        const uint32_t off = index - kMsrMc0Ctl;
        if (off >= 4 * banks_) return MsrResult::Gp();
        if (off % 4 == 0 && value != 0 && (value | (1ull << 10) | 1ull) != ~0ull) {
          return MsrResult::Gp();
        }
        if (off % 4 == 1 && !host && value != 0 && !CanSetMciStatus(ctx)) {
          return MsrResult::Gp();
        }
        break;
      }
      case kMsrMcgExtCtl:
        if (!host && !LmceEnabled(ctx)) return MsrResult::Gp();
        break;
      default:
        break;
    }
    return GenericWrite(e, index, value, ctx);
  }

 private:
  bool LmceEnabled(ExitContext& ctx) const {
    return feature_control_slot_ >= 0 &&
           (ctx.slot(static_cast<SlotId>(feature_control_slot_)) & kFeatCtlLmce) != 0;
  }
  // ref: msrs.c can_set_mci_status(): AMD-compatible guest CPUID and HWCR[18].
  bool CanSetMciStatus(ExitContext& ctx) const {
    return profile().amd() && hwcr_slot_ >= 0 &&
           (ctx.slot(static_cast<SlotId>(hwcr_slot_)) & kHwcrMcStatusWrEn) != 0;
  }

  uint64_t mcg_cap_;
  uint32_t banks_;
  int feature_control_slot_;
  int hwcr_slot_;
};

absl::Span<const MsrRow> RowsSpan() { return absl::MakeConstSpan(Rows()); }

absl::Status Install(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(controller,
                             std::make_unique<MceHandler>(controller.layout(), profile,
                                                          RowsToInstall(MceFamily(), profile)));
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
