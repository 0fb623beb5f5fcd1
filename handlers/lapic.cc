#include "handlers/lapic.h"

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "handlers/families.h"
#include "handlers/table_handler.h"
#include "handlers/tsc.h"

namespace msrtrace {
namespace {

// APIC register offsets (x2APIC MSR = 0x800 + offset / 16; ref: asm/apicdef.h).
constexpr uint32_t kRegLvr = 0x30;
constexpr uint32_t kRegLvtCmci = 0x2f0;
constexpr uint32_t kRegLvtt = 0x320;

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
constexpr char kFamily[] = "lapic";
constexpr char kX2Family[] = "x2apic";

// Family state, in layout order. APIC_BASE and LVT LINT0 reset differently on the BSP
// (kvm_lapic_reset).
enum LapicState : size_t {
  kOffset = 0,  // The TSC offset (tsc.h), shared.
  kBase,
  kDeadline,
  kTpr,
  kSpiv,
  kIcr,
  kTmict,
  kTdcr,
  kTimerStart,
  kSelfIpi,
  kLvt0,  // kLvt0 + LvtIndex: the LVT entries.
};
constexpr TableStateDef kLapicState[] = {
    {kTscOffsetSlot, 0, MsrScope::kVcpu, /*shared=*/true},
    {kApicBaseSlot, kApicBaseResetAp, MsrScope::kVcpu, /*shared=*/false, /*borrowed=*/false,
     /*has_bsp_reset=*/true, kApicBaseResetBsp},
    {kTscDeadlineSlot, 0, MsrScope::kVcpu},
    {"APIC.TPR", 0, MsrScope::kVcpu},
    {"APIC.SPIV", 0xff, MsrScope::kVcpu},
    {"APIC.ICR", 0, MsrScope::kVcpu},
    {"APIC.TMICT", 0, MsrScope::kVcpu},
    {"APIC.TDCR", 0, MsrScope::kVcpu},
    {"APIC.timer_start_ns", 0, MsrScope::kVcpu},
    {"APIC.SELF_IPI.last", 0, MsrScope::kVcpu},
    {kLvtSlotNames[kLvtTimer], kLvtMasked, MsrScope::kVcpu},
    {kLvtSlotNames[kLvtThermal], kLvtMasked, MsrScope::kVcpu},
    {kLvtSlotNames[kLvtPerf], kLvtMasked, MsrScope::kVcpu},
    {kLvtSlotNames[kLvtLint0], kLvtMasked, MsrScope::kVcpu, /*shared=*/false, /*borrowed=*/false,
     /*has_bsp_reset=*/true, kApicModeExtInt},
    {kLvtSlotNames[kLvtLint1], kLvtMasked, MsrScope::kVcpu},
    {kLvtSlotNames[kLvtError], kLvtMasked, MsrScope::kVcpu},
    {kLvtSlotNames[kLvtCmci], kLvtMasked, MsrScope::kVcpu},
};

// --- Mode and timer helpers ------------------------------------------------------------------
int NrLvt(const CpuProfile& p) { return (p.mcg_cap_extra & kMcgCmciP) != 0 ? 7 : 6; }
uint32_t TimerModeMask(const CpuProfile& p) {
  return p.Has(Feature::kTscDeadline) ? (3u << 17) : (1u << 17);
}
bool HwEnabled(TableHandler& t, ExitContext& ctx) {
  return (t.State(kBase, ctx) & kApicBaseEnable) != 0;
}
bool X2ApicMode(TableHandler& t, ExitContext& ctx) {
  const uint64_t mode = kApicBaseEnable | kApicBaseExtd;
  return (t.State(kBase, ctx) & mode) == mode;
}
bool SwEnabled(TableHandler& t, ExitContext& ctx) {
  return (t.State(kSpiv, ctx) & kSpivApicEnabled) != 0;
}
uint32_t TimerMode(TableHandler& t, ExitContext& ctx) {
  return static_cast<uint32_t>(t.State(kLvt0 + kLvtTimer, ctx)) & TimerModeMask(t.profile());
}
bool TscDeadlineMode(TableHandler& t, ExitContext& ctx) {
  return TimerMode(t, ctx) == kTimerModeTscDeadline;
}

// Timer divider of TDCR (lapic.c update_divide_count).
uint64_t DivideCount(uint64_t tdcr) {
  const uint64_t v = tdcr & 0xf;
  const uint64_t shift = ((v & 0x3) | ((v & 0x8) >> 1)) + 1;
  return 1ull << (shift & 0x7);
}

uint64_t CurrentCount(TableHandler& t, ExitContext& ctx) {
  const uint32_t mode = TimerMode(t, ctx);
  if (mode == kTimerModeTscDeadline) return 0;
  const uint64_t tmict = t.State(kTmict, ctx);
  if (tmict == 0) return 0;
  const uint64_t divide = DivideCount(t.State(kTdcr, ctx));
  uint64_t period = tmict * divide;
  const bool periodic = mode == kTimerModePeriodic;
  if (periodic && period < kMinPeriodicNs) period = kMinPeriodicNs;
  const uint64_t now = KvmclockNs(ctx);
  const uint64_t start = t.State(kTimerStart, ctx);
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

// --- IA32_APIC_BASE and IA32_TSC_DEADLINE ------------------------------------------------------
// kvm_apic_set_base. The reserved bits (7:0, 9, >= MAXPHYADDR, EXTD without x2APIC) are the
// resolved row's.
MsrResult ApicBaseWrite(TableHandler& t, const TableEntry& e, uint32_t, uint64_t value,
                        ExitContext& ctx) {
  uint64_t& base = t.State(kBase, ctx);
  const uint64_t old = base;
  if (value == old) return MsrResult::Ok();
  const uint64_t mode_bits = kApicBaseEnable | kApicBaseExtd;
  const uint64_t old_mode = old & mode_bits;
  const uint64_t new_mode = value & mode_bits;
  if ((value & e.row.reserved_mask) != 0 || new_mode == kApicBaseExtd) return MsrResult::Gp();
  if (!ctx.host_initiated()) {
    if (old_mode == mode_bits && new_mode == kApicBaseEnable) return MsrResult::Gp();
    if (old_mode == 0 && new_mode == mode_bits) return MsrResult::Gp();
  }
  base = value;
  return MsrResult::Ok();
}

MsrResult TscDeadlineRead(TableHandler& t, const TableEntry&, uint32_t, ExitContext& ctx) {
  if (!HwEnabled(t, ctx) || !TscDeadlineMode(t, ctx)) return MsrResult::Ok(0);
  uint64_t& deadline = t.State(kDeadline, ctx);
  if (deadline != 0 && deadline <= ctx.exit().host_tsc + t.State(kOffset, ctx)) {
    deadline = 0;  // Fired: KVM zeroes tscdeadline when it injects the timer IRQ.
    return MsrResult::Ok(0);
  }
  return MsrResult::Ok(deadline);
}

// Never #GP; ignored unless the APIC is enabled and LVTT is in TSC-deadline mode.
MsrResult TscDeadlineWrite(TableHandler& t, const TableEntry&, uint32_t, uint64_t value,
                           ExitContext& ctx) {
  if (HwEnabled(t, ctx) && TscDeadlineMode(t, ctx)) t.State(kDeadline, ctx) = value;
  return MsrResult::Ok();
}

// --- x2APIC registers ------------------------------------------------------------------------
// Every x2APIC row goes through X2Read/X2Write: #GP unless the APIC is in x2APIC mode, for a
// read of a write-only row, a write to a read-only row (kvm_lapic_reg_read/write's invalid
// registers: the row's flags) and a write with a reserved bit (the row's reserved_mask: bits
// 63:32 except in ICR, the ICR's, ESR's and SELF_IPI's). Then the register's function, or the
// generic read (the row's state, or its reset value for a stateless row).
using X2ReadFn = uint64_t (*)(TableHandler& t, const TableEntry& e, ExitContext& ctx);
using X2WriteFn = void (*)(TableHandler& t, const TableEntry& e, uint64_t value, ExitContext& ctx);

template <X2ReadFn F = nullptr>
MsrResult X2Read(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  if (!X2ApicMode(t, ctx) || (e.row.checks & kCheckWriteOnly) != 0) return MsrResult::Gp();
  if constexpr (F != nullptr) {
    return MsrResult::Ok(F(t, e, ctx));
  } else {
    return t.GenericRead(e, index, ctx);
  }
}

template <X2WriteFn F = nullptr>
MsrResult X2Write(TableHandler& t, const TableEntry& e, uint32_t, uint64_t value,
                  ExitContext& ctx) {
  if (!X2ApicMode(t, ctx) || (e.row.checks & kCheckReadOnly) != 0 ||
      (value & e.row.reserved_mask) != 0) {
    return MsrResult::Gp();
  }
  if constexpr (F != nullptr) F(t, e, value, ctx);
  return MsrResult::Ok();
}

uint64_t ReadId(TableHandler&, const TableEntry&, ExitContext& ctx) { return ctx.vcpu_id(); }
uint64_t ReadLdr(TableHandler&, const TableEntry&, ExitContext& ctx) {
  return X2ApicLdr(ctx.vcpu_id());
}
// PPR = TPR when no vector is in service (apic_update_ppr).
uint64_t ReadPpr(TableHandler& t, const TableEntry&, ExitContext& ctx) {
  return t.State(kTpr, ctx);
}
uint64_t ReadTmcct(TableHandler& t, const TableEntry&, ExitContext& ctx) {
  return CurrentCount(t, ctx);
}

void WriteTpr(TableHandler& t, const TableEntry&, uint64_t value, ExitContext& ctx) {
  t.State(kTpr, ctx) = value & 0xff;
}
// No directed-EOI support in LVR; clearing the enable bit masks every LVT.
void WriteSpiv(TableHandler& t, const TableEntry&, uint64_t value, ExitContext& ctx) {
  t.State(kSpiv, ctx) = value & 0x3ff;
  if ((value & kSpivApicEnabled) == 0) {
    for (int i = 0; i < NrLvt(t.profile()); ++i) t.State(kLvt0 + i, ctx) |= kLvtMasked;
  }
}
// The IPI itself is not delivered (see lapic.h).
void WriteIcr(TableHandler& t, const TableEntry&, uint64_t value, ExitContext& ctx) {
  t.State(kIcr, ctx) = value & ~kApicIcrBusy;
}
// LVT_CMCI .. LVT_ERROR except the timer (apic_lvt_mask).
void WriteLvt(TableHandler& t, const TableEntry& e, uint64_t value, ExitContext& ctx) {
  const int lvt = e.row.index == kMsrX2ApicFirst + (kRegLvtCmci >> 4)
                      ? kLvtCmci
                      : static_cast<int>(e.row.index - (kMsrX2ApicFirst + (kRegLvtt >> 4)));
  auto val = static_cast<uint32_t>(value);
  if (!SwEnabled(t, ctx)) val |= kLvtMasked;
  t.State(kLvt0 + lvt, ctx) = val & kLvtWriteMask[lvt];
}
void WriteLvtt(TableHandler& t, const TableEntry&, uint64_t value, ExitContext& ctx) {
  const bool was_deadline = TscDeadlineMode(t, ctx);
  auto val = static_cast<uint32_t>(value);
  if (!SwEnabled(t, ctx)) val |= kLvtMasked;
  t.State(kLvt0 + kLvtTimer, ctx) = val & (kLvtWriteMask[kLvtTimer] | TimerModeMask(t.profile()));
  if (was_deadline != TscDeadlineMode(t, ctx)) {  // apic_update_lvtt.
    t.State(kTmict, ctx) = 0;
    t.State(kDeadline, ctx) = 0;
  }
}
void WriteTmict(TableHandler& t, const TableEntry&, uint64_t value, ExitContext& ctx) {
  if (TscDeadlineMode(t, ctx)) return;  // Ignored.
  t.State(kTmict, ctx) = value;
  t.State(kTimerStart, ctx) = KvmclockNs(ctx);
}
void WriteTdcr(TableHandler& t, const TableEntry&, uint64_t value, ExitContext& ctx) {
  t.State(kTdcr, ctx) = value & 0xb;
}
void WriteSelfIpi(TableHandler& t, const TableEntry&, uint64_t value, ExitContext& ctx) {
  t.State(kSelfIpi, ctx) = value | 0x100;  // Recorded, not delivered.
}

// An x2APIC row: `state` names its register's slot (nullptr = none), then the flags, masks and
// hooks.
MsrRowBuilder X2(uint32_t first, uint32_t last, const char* name, const char* state) {
  return MsrRowBuilder(first, name, kX2Family)
      .Last(last)
      .State(state != nullptr ? state : kNoState)
      .Reserved(kHigh32);
}

constexpr char kNoteReserved[] =
    "No x2APIC register: #GP on read and write (lapic.c kvm_lapic_reg_read/write default)";
constexpr char kNoteReadOnly[] =
    "Read-only: write #GP (kvm_lapic_reg_write default); upper 32 bits read 0";

// A row no x2APIC register backs: #GP on read and write.
MsrRowBuilder X2None(uint32_t first, uint32_t last, const char* name, const char* note) {
  return X2(first, last, name, nullptr)
      .Checks(kNoAccess)
      .OnRead(&X2Read<>)
      .OnWrite(&X2Write<>)
      .Note(note);
}
// A read-only register (`read` computes it; nullptr = its reset value).
template <X2ReadFn F = nullptr>
MsrRowBuilder X2Ro(uint32_t first, uint32_t last, const char* name, const char* note) {
  return X2(first, last, name, nullptr)
      .Checks(kX2 | kCheckReadOnly)
      .OnRead(&X2Read<F>)
      .OnWrite(&X2Write<>)
      .Note(note);
}
// A read-write register stored in `state`, written by `W`.
template <X2WriteFn W>
MsrRowBuilder X2Rw(uint32_t index, const char* name, const char* state, const char* note) {
  return X2(index, index, name, state)
      .Checks(kX2)
      .OnRead(&X2Read<>)
      .OnWrite(&X2Write<W>)
      .Note(note);
}
MsrRowBuilder Lvt(uint32_t index, const char* name, LvtIndex lvt, uint64_t reset,
                  const char* note) {
  return X2Rw<&WriteLvt>(index, name, kLvtSlotNames[lvt], note).Reset(reset);
}

const std::vector<MsrRow>& Rows() {
  static const auto* rows = new std::vector<MsrRow>{
      MsrRowBuilder(kMsrIa32ApicBase, "IA32_APIC_BASE", kFamily)
          .Reset(kApicBaseResetBsp)
          .Reserved(0x2ff)
          .Checks(kCheckMaxPhyAddr)
          .State(kApicBaseSlot)
          .OnWrite(&ApicBaseWrite)
          .Note("Reset 0xfee00900 on the BSP, 0xfee00800 on APs. Reserved: bits 7:0, 9, >= "
                "MAXPHYADDR, EXTD (bit 10) without CPUID x2APIC; EXTD=1,EN=0 invalid; guest "
                "x2APIC->xAPIC and disabled->x2APIC #GP, allowed for the host (lapic.c "
                "kvm_apic_set_base; KUT apic)"),
      MsrRowBuilder(kMsrIa32TscDeadline, "IA32_TSC_DEADLINE", kFamily)
          .Volatile()
          .State(kTscDeadlineSlot)
          .OnRead(&TscDeadlineRead)
          .OnWrite(&TscDeadlineWrite)
          .Note("Never #GP. Kept only in LVTT TSC-deadline mode with the APIC enabled, else reads "
                "0 and writes are ignored; reads 0 once the deadline <= guest TSC (fired) "
                "(lapic.c kvm_{get,set}_lapic_tscdeadline_msr; KUT apic tsc_deadline_timer)"),
      X2None(0x800, 0x801, "X2APIC_RESERVED_800", kNoteReserved),
      X2Ro<&ReadId>(kMsrX2ApicId, kMsrX2ApicId, "X2APIC_APICID",
                    "x2APIC ID = vCPU id; write #GP in x2APIC mode (kvm_lapic_reg_write APIC_ID)"),
      X2Ro<>(kMsrX2ApicLvr, kMsrX2ApicLvr, "X2APIC_VERSION",
             "0x14 | (nr_lvt - 1) << 16 (kvm_apic_set_version; 0x60014 with CMCI)")
          .Reset(0x50014),
      X2None(0x804, 0x807, "X2APIC_RESERVED_804", kNoteReserved),
      X2Rw<&WriteTpr>(kMsrX2ApicTpr, "X2APIC_TPR", "APIC.TPR",
                      "Stores bits 7:0 (apic_set_tpr(val & 0xff)); bits 63:32 #GP"),
      X2None(0x809, 0x809, "X2APIC_ARBPRI",
             "ARBPRI is not valid in x2APIC mode: #GP (kvm_lapic_readable_reg_mask)"),
      X2Ro<&ReadPpr>(0x80a, 0x80a, "X2APIC_PPR",
                     "PPR = TPR (no in-service vector in the model); write #GP"),
      X2(kMsrX2ApicEoi, kMsrX2ApicEoi, "X2APIC_EOI", nullptr)
          .Checks(kX2 | kCheckWriteOnly)
          .OnRead(&X2Read<>)
          .OnWrite(&X2Write<>)
          .Note("Write-only; any 32-bit value accepted (KVM does not check it); read #GP"),
      X2None(0x80c, 0x80c, "X2APIC_RESERVED_80C", kNoteReserved),
      X2Ro<&ReadLdr>(kMsrX2ApicLdr, kMsrX2ApicLdr, "X2APIC_LDR",
                     "LDR = ((id >> 4) << 16) | (1 << (id & 0xf)); write #GP in x2APIC mode"),
      X2None(0x80e, 0x80e, "X2APIC_DFR", "DFR is not valid in x2APIC mode: #GP on read and write"),
      X2Rw<&WriteSpiv>(kMsrX2ApicSpiv, "X2APIC_SIVR", "APIC.SPIV",
                       "Stores bits 9:0 (no directed EOI); clearing bit 8 masks every LVT "
                       "(kvm_lapic_reg_write APIC_SPIV)")
          .Reset(0xff),
      X2Ro<>(0x810, 0x817, "X2APIC_ISR", kNoteReadOnly),
      X2Ro<>(0x818, 0x81f, "X2APIC_TMR", kNoteReadOnly),
      X2Ro<>(0x820, 0x827, "X2APIC_IRR", kNoteReadOnly),
      X2Rw<nullptr>(kMsrX2ApicEsr, "X2APIC_ESR", nullptr,
                    "Reads 0; a non-zero write #GP in x2APIC mode (kvm_lapic_reg_write APIC_ESR)")
          .Reserved(kHigh32 | 0xffffffffull),
      X2None(0x829, 0x82e, "X2APIC_RESERVED_829", kNoteReserved),
      Lvt(0x82f, "X2APIC_LVT_CMCI", kLvtCmci, kLvtMasked,
          "Exists only with MCG_CAP.CMCI_P (nr_lvt = 7), else #GP; mask 0x117ff"),
      X2Rw<&WriteIcr>(kMsrX2ApicIcr, "X2APIC_ICR", "APIC.ICR",
                      "64-bit (destination in 63:32). Bits 13, 17:16, 31:20 #GP; BUSY (12) "
                      "cleared; the IPI is recorded, not delivered (lapic.c "
                      "__kvm_x2apic_icr_write)")
          .Reserved(kX2ApicIcrReserved),
      X2None(0x831, 0x831, "X2APIC_ICR2",
             "ICR2 is not valid in x2APIC mode: #GP on read and write"),
      X2Rw<&WriteLvtt>(kMsrX2ApicLvtt, "X2APIC_LVT_TIMER", kLvtSlotNames[kLvtTimer],
                       "Mask 0x110ff | timer mode (bits 18:17 with TSC-deadline, else 17); "
                       "masked while the APIC is software-disabled; a TSC-deadline mode change "
                       "clears TMICT and the deadline")
          .Reset(kLvtMasked),
      Lvt(0x833, "X2APIC_LVT_THERMAL", kLvtThermal, kLvtMasked, "Mask 0x117ff"),
      Lvt(0x834, "X2APIC_LVT_PMI", kLvtPerf, kLvtMasked, "Mask 0x117ff"),
      Lvt(kMsrX2ApicLvt0, "X2APIC_LVT_LINT0", kLvtLint0, kApicModeExtInt,
          "Mask 0x1f7ff; BSP reset ExtINT unmasked (KVM_X86_QUIRK_LINT0_REENABLED), APs masked"),
      Lvt(kMsrX2ApicLvt1, "X2APIC_LVT_LINT1", kLvtLint1, kLvtMasked, "Mask 0x1f7ff"),
      Lvt(kMsrX2ApicLvtErr, "X2APIC_LVT_ERROR", kLvtError, kLvtMasked, "Mask 0x110ff"),
      X2Rw<&WriteTmict>(0x838, "X2APIC_INIT_COUNT", "APIC.TMICT",
                        "Writes ignored in TSC-deadline mode; otherwise starts the APIC timer"),
      X2Ro<&ReadTmcct>(0x839, 0x839, "X2APIC_CUR_COUNT",
                       "Counts down from TMICT (bus cycle 1 ns x divider); 0 in TSC-deadline "
                       "mode; write #GP")
          .Volatile(),
      X2None(0x83a, 0x83d, "X2APIC_RESERVED_83A", kNoteReserved),
      X2Rw<&WriteTdcr>(0x83e, "X2APIC_DIV_CONF", "APIC.TDCR", "Stores bits 0, 1 and 3 (0xb)"),
      X2(kMsrX2ApicSelfIpi, kMsrX2ApicSelfIpi, "X2APIC_SELF_IPI", nullptr)
          .Reserved(~0xffull)
          .Checks(kX2 | kCheckWriteOnly)
          .OnRead(&X2Read<>)
          .OnWrite(&X2Write<&WriteSelfIpi>)
          .Note("Write-only; only bits 7:0 (vector), else #GP; recorded, not delivered; read "
                "#GP"),
      X2None(0x840, 0x8ff, "X2APIC_RESERVED_840", kNoteReserved),
  };
  return *rows;
}

// Every index of a row reports the row's name (X2APIC_ISR for 0x810-0x817).
std::string IndexName(const MsrRow& row, uint32_t) { return row.name; }

absl::Span<const MsrRow> LapicRows() { return absl::MakeConstSpan(Rows()); }

// The profile-dependent fields: APIC_BASE.EXTD without x2APIC (its MAXPHYADDR bits come from
// ResolveRow, kCheckMaxPhyAddr); the LVR reset and LVT_CMCI access follow MCG_CAP.CMCI_P.
MsrRow ResolveLapicRowData(const MsrRow& row, const CpuProfile& profile) {
  MsrRow out = row;
  const bool cmci = (profile.mcg_cap_extra & kMcgCmciP) != 0;
  if (row.index == kMsrIa32ApicBase) {
    if (!profile.Has(Feature::kX2Apic)) out.reserved_mask |= kApicBaseExtd;
  } else if (row.index == kMsrX2ApicFirst + (kRegLvr >> 4)) {
    out.reset = kApicVersion | (static_cast<uint64_t>(cmci ? 6 : 5) << 16);
  } else if (row.index == kMsrX2ApicFirst + (kRegLvtCmci >> 4) && !cmci) {
    out.checks |= kCheckReadOnly | kCheckWriteOnly;
  }
  return out;
}

absl::Status InstallLapic(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(
      controller, std::make_unique<TableHandler>(controller.layout(), profile,
                                                 RowsToInstall(LapicFamily(), profile), &IndexName,
                                                 kLapicState));
}

}  // namespace

MsrRow ResolveLapicRow(const MsrRow& row, const CpuProfile& profile) {
  return ResolveRow(LapicFamily(), row, profile);
}

const MsrFamilyDef& LapicFamily() {
  static constexpr MsrFamilyDef kDef = {kFamily, &LapicRows, &ResolveLapicRowData, &InstallLapic};
  return kDef;
}

}  // namespace msrtrace
