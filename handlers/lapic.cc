#include "handlers/lapic.h"

#include <array>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "handlers/table_handler.h"
#include "handlers/tsc.h"

namespace msrtrace {
namespace {

// APIC register offsets (x2APIC MSR = 0x800 + offset / 16; ref: asm/apicdef.h).
constexpr uint32_t kRegId = 0x20;
constexpr uint32_t kRegLvr = 0x30;
constexpr uint32_t kRegTpr = 0x80;
constexpr uint32_t kRegPpr = 0xa0;
constexpr uint32_t kRegEoi = 0xb0;
constexpr uint32_t kRegLdr = 0xd0;
constexpr uint32_t kRegDfr = 0xe0;
constexpr uint32_t kRegSpiv = 0xf0;
constexpr uint32_t kRegIsr = 0x100;
constexpr uint32_t kRegEsr = 0x280;
constexpr uint32_t kRegLvtCmci = 0x2f0;
constexpr uint32_t kRegIcr = 0x300;
constexpr uint32_t kRegIcr2 = 0x310;
constexpr uint32_t kRegLvtt = 0x320;
constexpr uint32_t kRegLvtThmr = 0x330;
constexpr uint32_t kRegLvtPc = 0x340;
constexpr uint32_t kRegLvt0 = 0x350;
constexpr uint32_t kRegLvt1 = 0x360;
constexpr uint32_t kRegLvtErr = 0x370;
constexpr uint32_t kRegTmict = 0x380;
constexpr uint32_t kRegTmcct = 0x390;
constexpr uint32_t kRegTdcr = 0x3e0;
constexpr uint32_t kRegSelfIpi = 0x3f0;

constexpr uint32_t kApicVersion = 0x14;  // lapic.c APIC_VERSION.
constexpr uint32_t kSpivApicEnabled = 1u << 8;
constexpr uint32_t kLvtMasked = 1u << 16;
constexpr uint32_t kApicModeExtInt = 0x700;
// lapic.c LVT_MASK and LINT_MASK; APIC_MODE_MASK = 0x700.
constexpr uint32_t kLvtMask = kLvtMasked | (1u << 12) | 0xff;
constexpr uint32_t kLintMask = kLvtMask | 0x700 | (1u << 13) | (1u << 14) | (1u << 15);
constexpr uint32_t kTimerModeOneshot = 0;
constexpr uint32_t kTimerModePeriodic = 1u << 17;
constexpr uint32_t kTimerModeTscDeadline = 2u << 17;

// LVT entries in KVM's order (LVT_TIMER .. LVT_CMCI) and their write masks (apic_lvt_mask; the
// timer entry gets the timer-mode mask added at run time).
enum LvtIndex { kLvtTimer = 0, kLvtThermal, kLvtPerf, kLvtLint0, kLvtLint1, kLvtError, kLvtCmci };
constexpr int kMaxLvt = 7;
constexpr std::array<uint32_t, kMaxLvt> kLvtWriteMask = {
    kLvtMask, kLvtMask | 0x700, kLvtMask | 0x700, kLintMask, kLintMask, kLvtMask, kLvtMask | 0x700};
constexpr std::array<const char*, kMaxLvt> kLvtSlotNames = {
    "APIC.LVTT", "APIC.LVTTHMR", "APIC.LVTPC",  "APIC.LVT0",
    "APIC.LVT1", "APIC.LVTERR",  "APIC.LVTCMCI"};

constexpr uint64_t kMcgCmciP = 1ull << 10;
constexpr uint64_t kMinPeriodicNs = 200'000;  // min_timer_period_us = 200.
constexpr uint64_t kHigh32 = 0xffffffff00000000ull;

constexpr uint32_t kX2 = kCheckX2ApicMode;
constexpr uint32_t kNoAccess = kCheckX2ApicMode | kCheckReadOnly | kCheckWriteOnly;

constexpr MsrRow X2(uint32_t first, uint32_t last, const char* name, uint64_t reset,
                    uint64_t reserved, uint32_t checks, bool volatile_value, const char* note) {
  MsrRow row;
  row.index = first;
  row.last = last;
  row.name = name;
  row.family = "x2apic";
  row.reset = reset;
  row.reserved_mask = reserved;
  row.checks = checks;
  row.volatile_value = volatile_value;
  row.note = note;
  return row;
}

constexpr char kNoteReserved[] =
    "No x2APIC register: #GP on read and write (lapic.c kvm_lapic_reg_read/write default)";
constexpr char kNoteReadOnly[] =
    "Read-only: write #GP (kvm_lapic_reg_write default); upper 32 bits read 0";

constexpr MsrRow kLapicRows[] = {
    {kMsrIa32ApicBase, kMsrIa32ApicBase, "IA32_APIC_BASE", "lapic", kApicBaseResetBsp, 0x2ff, 0,
     kCheckMaxPhyAddr, MsrScope::kVcpu, Feature::kCount, Vendor::kUnspecified, false,
     "Reset 0xfee00900 on the BSP, 0xfee00800 on APs. Reserved: bits 7:0, 9, >= MAXPHYADDR, "
     "EXTD (bit 10) without CPUID x2APIC; EXTD=1,EN=0 invalid; guest x2APIC->xAPIC and "
     "disabled->x2APIC #GP, allowed for the host (lapic.c kvm_apic_set_base; KUT apic)"},
    {kMsrIa32TscDeadline, kMsrIa32TscDeadline, "IA32_TSC_DEADLINE", "lapic", 0, 0, 0, kCheckNone,
     MsrScope::kVcpu, Feature::kCount, Vendor::kUnspecified, true,
     "Never #GP. Kept only in LVTT TSC-deadline mode with the APIC enabled, else reads 0 and "
     "writes are ignored; reads 0 once the deadline <= guest TSC (fired) "
     "(lapic.c kvm_{get,set}_lapic_tscdeadline_msr; KUT apic tsc_deadline_timer)"},
    X2(0x800, 0x801, "X2APIC_RESERVED_800", 0, kHigh32, kNoAccess, false, kNoteReserved),
    X2(0x802, 0x802, "X2APIC_APICID", 0, kHigh32, kX2 | kCheckReadOnly, false,
       "x2APIC ID = vCPU id; write #GP in x2APIC mode (kvm_lapic_reg_write APIC_ID)"),
    X2(0x803, 0x803, "X2APIC_VERSION", 0x50014, kHigh32, kX2 | kCheckReadOnly, false,
       "0x14 | (nr_lvt - 1) << 16 (kvm_apic_set_version; 0x60014 with CMCI)"),
    X2(0x804, 0x807, "X2APIC_RESERVED_804", 0, kHigh32, kNoAccess, false, kNoteReserved),
    X2(0x808, 0x808, "X2APIC_TPR", 0, kHigh32, kX2, false,
       "Stores bits 7:0 (apic_set_tpr(val & 0xff)); bits 63:32 #GP"),
    X2(0x809, 0x809, "X2APIC_ARBPRI", 0, kHigh32, kNoAccess, false,
       "ARBPRI is not valid in x2APIC mode: #GP (kvm_lapic_readable_reg_mask)"),
    X2(0x80a, 0x80a, "X2APIC_PPR", 0, kHigh32, kX2 | kCheckReadOnly, false,
       "PPR = TPR (no in-service vector in the model); write #GP"),
    X2(0x80b, 0x80b, "X2APIC_EOI", 0, kHigh32, kX2 | kCheckWriteOnly, false,
       "Write-only; any 32-bit value accepted (KVM does not check it); read #GP"),
    X2(0x80c, 0x80c, "X2APIC_RESERVED_80C", 0, kHigh32, kNoAccess, false, kNoteReserved),
    X2(0x80d, 0x80d, "X2APIC_LDR", 0, kHigh32, kX2 | kCheckReadOnly, false,
       "LDR = ((id >> 4) << 16) | (1 << (id & 0xf)); write #GP in x2APIC mode"),
    X2(0x80e, 0x80e, "X2APIC_DFR", 0, kHigh32, kNoAccess, false,
       "DFR is not valid in x2APIC mode: #GP on read and write"),
    X2(0x80f, 0x80f, "X2APIC_SIVR", 0xff, kHigh32, kX2, false,
       "Stores bits 9:0 (no directed EOI); clearing bit 8 masks every LVT (kvm_lapic_reg_write "
       "APIC_SPIV)"),
    X2(0x810, 0x817, "X2APIC_ISR", 0, kHigh32, kX2 | kCheckReadOnly, false, kNoteReadOnly),
    X2(0x818, 0x81f, "X2APIC_TMR", 0, kHigh32, kX2 | kCheckReadOnly, false, kNoteReadOnly),
    X2(0x820, 0x827, "X2APIC_IRR", 0, kHigh32, kX2 | kCheckReadOnly, false, kNoteReadOnly),
    X2(0x828, 0x828, "X2APIC_ESR", 0, kHigh32 | 0xffffffffull, kX2, false,
       "Reads 0; a non-zero write #GP in x2APIC mode (kvm_lapic_reg_write APIC_ESR)"),
    X2(0x829, 0x82e, "X2APIC_RESERVED_829", 0, kHigh32, kNoAccess, false, kNoteReserved),
    X2(0x82f, 0x82f, "X2APIC_LVT_CMCI", kLvtMasked, kHigh32, kX2, false,
       "Exists only with MCG_CAP.CMCI_P (nr_lvt = 7), else #GP; mask 0x117ff"),
    X2(0x830, 0x830, "X2APIC_ICR", 0, kX2ApicIcrReserved, kX2, false,
       "64-bit (destination in 63:32). Bits 13, 17:16, 31:20 #GP; BUSY (12) cleared; the IPI is "
       "recorded, not delivered (lapic.c __kvm_x2apic_icr_write)"),
    X2(0x831, 0x831, "X2APIC_ICR2", 0, kHigh32, kNoAccess, false,
       "ICR2 is not valid in x2APIC mode: #GP on read and write"),
    X2(0x832, 0x832, "X2APIC_LVT_TIMER", kLvtMasked, kHigh32, kX2, false,
       "Mask 0x110ff | timer mode (bits 18:17 with TSC-deadline, else 17); masked while the "
       "APIC is software-disabled; a TSC-deadline mode change clears TMICT and the deadline"),
    X2(0x833, 0x833, "X2APIC_LVT_THERMAL", kLvtMasked, kHigh32, kX2, false, "Mask 0x117ff"),
    X2(0x834, 0x834, "X2APIC_LVT_PMI", kLvtMasked, kHigh32, kX2, false, "Mask 0x117ff"),
    X2(0x835, 0x835, "X2APIC_LVT_LINT0", kApicModeExtInt, kHigh32, kX2, false,
       "Mask 0x1f7ff; BSP reset ExtINT unmasked (KVM_X86_QUIRK_LINT0_REENABLED), APs masked"),
    X2(0x836, 0x836, "X2APIC_LVT_LINT1", kLvtMasked, kHigh32, kX2, false, "Mask 0x1f7ff"),
    X2(0x837, 0x837, "X2APIC_LVT_ERROR", kLvtMasked, kHigh32, kX2, false, "Mask 0x110ff"),
    X2(0x838, 0x838, "X2APIC_INIT_COUNT", 0, kHigh32, kX2, false,
       "Writes ignored in TSC-deadline mode; otherwise starts the APIC timer"),
    X2(0x839, 0x839, "X2APIC_CUR_COUNT", 0, kHigh32, kX2 | kCheckReadOnly, true,
       "Counts down from TMICT (bus cycle 1 ns x divider); 0 in TSC-deadline mode; write #GP"),
    X2(0x83a, 0x83d, "X2APIC_RESERVED_83A", 0, kHigh32, kNoAccess, false, kNoteReserved),
    X2(0x83e, 0x83e, "X2APIC_DIV_CONF", 0, kHigh32, kX2, false, "Stores bits 0, 1 and 3 (0xb)"),
    X2(0x83f, 0x83f, "X2APIC_SELF_IPI", 0, ~0xffull, kX2 | kCheckWriteOnly, false,
       "Write-only; only bits 7:0 (vector), else #GP; recorded, not delivered; read #GP"),
    X2(0x840, 0x8ff, "X2APIC_RESERVED_840", 0, kHigh32, kNoAccess, false, kNoteReserved),
};

class LapicHandler : public MsrHandler {
 public:
  LapicHandler(StateLayout& layout, const CpuProfile& profile)
      : tsc_offset_(EnsureTscOffsetSlot(layout)),
        base_(layout.AddVcpuSlot(kApicBaseSlot, kApicBaseResetAp)),
        deadline_(layout.AddVcpuSlot(kTscDeadlineSlot, 0)),
        tpr_(layout.AddVcpuSlot("APIC.TPR", 0)),
        spiv_(layout.AddVcpuSlot("APIC.SPIV", 0xff)),
        icr_(layout.AddVcpuSlot("APIC.ICR", 0)),
        tmict_(layout.AddVcpuSlot("APIC.TMICT", 0)),
        tdcr_(layout.AddVcpuSlot("APIC.TDCR", 0)),
        timer_start_(layout.AddVcpuSlot("APIC.timer_start_ns", 0)),
        self_ipi_(layout.AddVcpuSlot("APIC.SELF_IPI.last", 0)),
        nr_lvt_(((profile.mcg_cap_extra & kMcgCmciP) != 0) ? 7 : 6),
        timer_mode_mask_(profile.Has(Feature::kTscDeadline) ? (3u << 17) : (1u << 17)),
        reserved_gpa_(MaxPhyAddrReservedBits(profile)),
        has_x2apic_(profile.Has(Feature::kX2Apic)) {
    for (int i = 0; i < kMaxLvt; ++i) lvt_[i] = layout.AddVcpuSlot(kLvtSlotNames[i], kLvtMasked);
  }

  void OnVcpuReset(Vcpu& vcpu) override {
    // kvm_lapic_reset: BSP flag on the reset BSP (vCPU 0); LINT0 in ExtINT mode on the BSP.
    if (vcpu.id == 0) {
      vcpu.slots[base_] = kApicBaseResetBsp;
      vcpu.slots[lvt_[kLvtLint0]] = kApicModeExtInt;
    }
  }

  absl::StatusOr<MsrResult> Read(uint32_t index, ExitContext& ctx) override {
    if (index == kMsrIa32ApicBase) return MsrResult::Ok(ctx.slot(base_));
    if (index == kMsrIa32TscDeadline) return MsrResult::Ok(ReadTscDeadline(ctx));
    if (!X2ApicMode(ctx)) return MsrResult::Gp();
    return X2ApicRead((index - kMsrX2ApicFirst) << 4, ctx);
  }

  absl::StatusOr<MsrResult> Write(uint32_t index, uint64_t value, ExitContext& ctx) override {
    if (index == kMsrIa32ApicBase) return WriteApicBase(value, ctx);
    if (index == kMsrIa32TscDeadline) {
      // Never #GP; ignored unless the APIC is enabled and LVTT is in TSC-deadline mode.
      if (HwEnabled(ctx) && TscDeadlineMode(ctx)) ctx.slot(deadline_) = value;
      return MsrResult::Ok();
    }
    if (!X2ApicMode(ctx)) return MsrResult::Gp();
    return X2ApicWrite((index - kMsrX2ApicFirst) << 4, value, ctx);
  }

  absl::string_view MsrName(uint32_t index) const override {
    for (const MsrRow& row : kLapicRows) {
      if (index >= row.index && index <= row.last) return row.name;
    }
    return {};
  }

 private:
  bool HwEnabled(ExitContext& ctx) const { return (ctx.slot(base_) & kApicBaseEnable) != 0; }
  bool X2ApicMode(ExitContext& ctx) const {
    const uint64_t mode = kApicBaseEnable | kApicBaseExtd;
    return (ctx.slot(base_) & mode) == mode;
  }
  bool SwEnabled(ExitContext& ctx) const { return (ctx.slot(spiv_) & kSpivApicEnabled) != 0; }
  uint32_t TimerMode(ExitContext& ctx) const {
    return static_cast<uint32_t>(ctx.slot(lvt_[kLvtTimer])) & timer_mode_mask_;
  }
  bool TscDeadlineMode(ExitContext& ctx) const { return TimerMode(ctx) == kTimerModeTscDeadline; }

  uint64_t ReadTscDeadline(ExitContext& ctx) {
    if (!HwEnabled(ctx) || !TscDeadlineMode(ctx)) return 0;
    const uint64_t deadline = ctx.slot(deadline_);
    if (deadline != 0 && deadline <= GuestTsc(ctx, tsc_offset_)) {
      ctx.slot(deadline_) = 0;  // Fired: KVM zeroes tscdeadline when it injects the timer IRQ.
      return 0;
    }
    return deadline;
  }

  MsrResult WriteApicBase(uint64_t value, ExitContext& ctx) {
    const uint64_t old = ctx.slot(base_);
    if (value == old) return MsrResult::Ok();
    uint64_t reserved = reserved_gpa_ | 0x2ff;
    if (!has_x2apic_) reserved |= kApicBaseExtd;
    const uint64_t mode_bits = kApicBaseEnable | kApicBaseExtd;
    const uint64_t old_mode = old & mode_bits;
    const uint64_t new_mode = value & mode_bits;
    if ((value & reserved) != 0 || new_mode == kApicBaseExtd) return MsrResult::Gp();
    if (!ctx.host_initiated()) {
      if (old_mode == mode_bits && new_mode == kApicBaseEnable) return MsrResult::Gp();
      if (old_mode == 0 && new_mode == mode_bits) return MsrResult::Gp();
    }
    ctx.slot(base_) = value;
    return MsrResult::Ok();
  }

  // Timer divider of TDCR (lapic.c update_divide_count).
  static uint64_t DivideCount(uint64_t tdcr) {
    const uint64_t v = tdcr & 0xf;
    const uint64_t shift = ((v & 0x3) | ((v & 0x8) >> 1)) + 1;
    return 1ull << (shift & 0x7);
  }

  uint64_t CurrentCount(ExitContext& ctx) {
    const uint32_t mode = TimerMode(ctx);
    if (mode == kTimerModeTscDeadline) return 0;
    const uint64_t tmict = ctx.slot(tmict_);
    if (tmict == 0) return 0;
    const uint64_t divide = DivideCount(ctx.slot(tdcr_));
    uint64_t period = tmict * divide;
    const bool periodic = mode == kTimerModePeriodic;
    if (periodic && period < kMinPeriodicNs) period = kMinPeriodicNs;
    const uint64_t now = KvmclockNs(ctx);
    const uint64_t start = ctx.slot(timer_start_);
    const uint64_t elapsed = now > start ? now - start : 0;
    uint64_t remaining;
    if (periodic) {
      remaining = period - elapsed % period;
    } else if (mode == kTimerModeOneshot) {
      remaining = elapsed >= period ? 0 : period - elapsed;
    } else {
      return 0;  // Reserved timer mode 3: no timer runs.
    }
    return (remaining % period) / divide;
  }

  MsrResult X2ApicRead(uint32_t reg, ExitContext& ctx) {
    if (reg == kRegIcr) return MsrResult::Ok(ctx.slot(icr_));      // Full 64 bits.
    if (reg >= kRegIsr && reg < kRegEsr) return MsrResult::Ok(0);  // ISR, TMR, IRR: empty.
    switch (reg) {
      case kRegId:
        return MsrResult::Ok(ctx.vcpu_id());
      case kRegLvr:
        return MsrResult::Ok(kApicVersion | (static_cast<uint32_t>(nr_lvt_ - 1) << 16));
      case kRegTpr:
      case kRegPpr:  // PPR = TPR when no vector is in service (apic_update_ppr).
        return MsrResult::Ok(ctx.slot(tpr_));
      case kRegLdr:
        return MsrResult::Ok(X2ApicLdr(ctx.vcpu_id()));
      case kRegSpiv:
        return MsrResult::Ok(ctx.slot(spiv_));
      case kRegEsr:
        return MsrResult::Ok(0);
      case kRegLvtCmci:
        if (nr_lvt_ <= kLvtCmci) return MsrResult::Gp();
        return MsrResult::Ok(ctx.slot(lvt_[kLvtCmci]));
      case kRegLvtt:
      case kRegLvtThmr:
      case kRegLvtPc:
      case kRegLvt0:
      case kRegLvt1:
      case kRegLvtErr:
        return MsrResult::Ok(ctx.slot(lvt_[(reg - kRegLvtt) >> 4]));
      case kRegTmict:
        return MsrResult::Ok(ctx.slot(tmict_));
      case kRegTmcct:
        return MsrResult::Ok(CurrentCount(ctx));
      case kRegTdcr:
        return MsrResult::Ok(ctx.slot(tdcr_));
      default:
        // ARBPRI, EOI, DFR, ICR2, SELF_IPI, reserved offsets and everything >= 0x400.
        return MsrResult::Gp();
    }
  }

  void WriteLvt(int index, uint32_t val, ExitContext& ctx) {
    if (!SwEnabled(ctx)) val |= kLvtMasked;
    val &= kLvtWriteMask[index];
    ctx.slot(lvt_[index]) = val;
  }

  MsrResult X2ApicWrite(uint32_t reg, uint64_t value, ExitContext& ctx) {
    if (reg == kRegIcr) {
      if ((value & kX2ApicIcrReserved) != 0) return MsrResult::Gp();
      ctx.slot(icr_) = value & ~kApicIcrBusy;  // The IPI itself is not delivered (see lapic.h).
      return MsrResult::Ok();
    }
    if ((value >> 32) != 0) return MsrResult::Gp();  // Bits 63:32 reserved except in ICR.
    auto val = static_cast<uint32_t>(value);
    switch (reg) {
      case kRegTpr:
        ctx.slot(tpr_) = val & 0xff;
        return MsrResult::Ok();
      case kRegEoi:
        return MsrResult::Ok();  // No in-service vector to retire.
      case kRegSpiv:
        ctx.slot(spiv_) = val & 0x3ff;  // No directed-EOI support in LVR.
        if ((val & kSpivApicEnabled) == 0) {
          for (int i = 0; i < nr_lvt_; ++i) ctx.slot(lvt_[i]) |= kLvtMasked;
        }
        return MsrResult::Ok();
      case kRegLvtCmci:
        if (nr_lvt_ <= kLvtCmci) return MsrResult::Gp();
        WriteLvt(kLvtCmci, val, ctx);
        return MsrResult::Ok();
      case kRegLvtThmr:
      case kRegLvtPc:
      case kRegLvt0:
      case kRegLvt1:
      case kRegLvtErr:
        WriteLvt(static_cast<int>((reg - kRegLvtt) >> 4), val, ctx);
        return MsrResult::Ok();
      case kRegLvtt: {
        const bool was_deadline = TscDeadlineMode(ctx);
        if (!SwEnabled(ctx)) val |= kLvtMasked;
        ctx.slot(lvt_[kLvtTimer]) = val & (kLvtWriteMask[kLvtTimer] | timer_mode_mask_);
        if (was_deadline != TscDeadlineMode(ctx)) {  // apic_update_lvtt.
          ctx.slot(tmict_) = 0;
          ctx.slot(deadline_) = 0;
        }
        return MsrResult::Ok();
      }
      case kRegTmict:
        if (TscDeadlineMode(ctx)) return MsrResult::Ok();  // Ignored.
        ctx.slot(tmict_) = val;
        ctx.slot(timer_start_) = KvmclockNs(ctx);
        return MsrResult::Ok();
      case kRegTdcr:
        ctx.slot(tdcr_) = val & 0xb;
        return MsrResult::Ok();
      case kRegEsr:
        return val != 0 ? MsrResult::Gp() : MsrResult::Ok();
      case kRegSelfIpi:
        if ((val & ~0xffu) != 0) return MsrResult::Gp();
        ctx.slot(self_ipi_) = val | 0x100;  // Recorded, not delivered.
        return MsrResult::Ok();
      case kRegId:    // Read-only in x2APIC mode.
      case kRegLdr:   // Read-only in x2APIC mode.
      case kRegDfr:   // Invalid in x2APIC mode.
      case kRegIcr2:  // Invalid in x2APIC mode.
      default:
        return MsrResult::Gp();  // Read-only and reserved registers (kvm_lapic_reg_write).
    }
  }

  SlotId tsc_offset_;
  SlotId base_;
  SlotId deadline_;
  SlotId tpr_;
  SlotId spiv_;
  SlotId icr_;
  SlotId tmict_;
  SlotId tdcr_;
  SlotId timer_start_;
  SlotId self_ipi_;
  std::array<SlotId, kMaxLvt> lvt_{};
  int nr_lvt_;
  uint32_t timer_mode_mask_;
  uint64_t reserved_gpa_;
  bool has_x2apic_;
};

absl::Span<const MsrRow> LapicRows() { return kLapicRows; }

absl::Status InstallLapic(Controller& controller, const CpuProfile& profile) {
  MsrHandler* handler =
      controller.Adopt(std::make_unique<LapicHandler>(controller.layout(), profile));
  for (const MsrRow& row : kLapicRows) {
    if (!FamilyRowExists(row, profile)) continue;
    if (!controller.InsertRange(row.index, row.last, handler)) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "lapic family: MSR %#x-%#x (%s) already has a handler", row.index, row.last, row.name));
    }
  }
  return absl::OkStatus();
}

}  // namespace

MsrRow ResolveLapicRow(const MsrRow& row, const CpuProfile& profile) {
  MsrRow out = row;
  const bool cmci = (profile.mcg_cap_extra & kMcgCmciP) != 0;
  if (row.index == kMsrIa32ApicBase) {
    out.reserved_mask |= MaxPhyAddrReservedBits(profile);  // The handler uses the same.
    if (!profile.Has(Feature::kX2Apic)) out.reserved_mask |= kApicBaseExtd;
  } else if (row.index == kMsrX2ApicFirst + (kRegLvr >> 4)) {
    out.reset = kApicVersion | (static_cast<uint64_t>(cmci ? 6 : 5) << 16);
  } else if (row.index == kMsrX2ApicFirst + (kRegLvtCmci >> 4) && !cmci) {
    out.checks |= kCheckReadOnly | kCheckWriteOnly;
  }
  return out;
}

const MsrFamilyDef& LapicFamily() {
  static const MsrFamilyDef kDef = {"lapic", &LapicRows, &InstallLapic};
  return kDef;
}

}  // namespace msrtrace
