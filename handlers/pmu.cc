// The "pmu" family: KVM's virtual PMU per profile. Intel architectural perfmon (IA32_PMCx,
// PERFEVTSELx, full-width IA32_A_PMCx, FIXED_CTRx, FIXED_CTR_CTRL, PERF_GLOBAL_CTRL/STATUS/
// OVF_CTRL) sized by the profile's CPUID 0xA; AMD legacy K7 counters, PerfCtrExtCore (F15H
// interleaved CTL/CTR) and PerfMonV2 global MSRs; the legacy P6/K7 indices KVM answers with 0
// when they are not PMU MSRs of the guest. Counter numbers, widths and reserved masks come
// from ResolvePmuRow(); hooks implement counter width/sign extension, the A_PMC and K7 aliases
// and GLOBAL_OVF_CTRL/STATUS_CLR clearing GLOBAL_STATUS.
// Sources: pmu.c kvm_pmu_{get,set}_msr, kvm_pmu_is_valid_msr; vmx/pmu_intel.c
// intel_pmu_{get,set}_msr, intel_pmu_refresh; svm/pmu_amd.c amd_pmu_{get,set}_msr,
// amd_pmu_refresh, get_gp_pmc_amd; x86.c kvm_{get,set}_msr_common (P6/K7 fallbacks).
//
// Counters do not count in the model (no guest execution), so counter reads are marked volatile:
// on real KVM they move while an event is enabled.
#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_format.h"
#include "handlers/breadth.h"
#include "handlers/families.h"
#include "handlers/table_handler.h"

namespace msrtrace {
namespace {

constexpr char kFamily[] = "pmu";
constexpr uint32_t kIntelMaxGp = 8;     // KVM_INTEL_PMC_MAX_GENERIC.
constexpr uint32_t kIntelMaxFixed = 3;  // KVM_PMC_MAX_FIXED.
constexpr uint32_t kAmdMaxGp = 6;       // AMD64_NUM_COUNTERS_CORE.

uint64_t WidthMask(uint8_t bits) { return bits >= 64 ? ~0ull : (1ull << bits) - 1; }

// --- Hooks: counter widths, the A_PMC and K7 aliases, the P6/K7 fallbacks, OVF_CTRL ----------

// GP counters the guest has (CPUID 0xA EAX[15:8] / the AMD vPMU); 0 without a vPMU.
uint32_t GpCounters(const CpuProfile& p) { return p.pmu_version > 0 ? p.pmu_gp_counters : 0; }

// The F15H MSR a K7 event select / counter aliases with PerfCtrExtCore.
uint32_t F15hAlias(uint32_t row_index, uint32_t off) {
  return kMsrF15hPerfCtl0 + 2 * off + (row_index == kMsrK7PerfCtr0 ? 1 : 0);
}

// IA32_PMCx / PERFEVTSELx: Intel indices beyond N are the P6 fallback (read 0).
MsrResult ReadGpOrP6(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  if (t.profile().intel() && index - e.row.index >= GpCounters(t.profile())) {
    return MsrResult::Ok(0);
  }
  return t.GenericRead(e, index, ctx);
}

// Intel: guest writes sign-extended from bit 31, then truncated to the counter width; beyond N
// dropped (P6 fallback). AMD: the P6 fallback row.
MsrResult WritePmc(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                   ExitContext& ctx) {
  const CpuProfile& p = t.profile();
  if (p.amd()) return t.GenericWrite(e, index, value, ctx);
  if (index - e.row.index >= GpCounters(p)) return MsrResult::Ok();
  if (!ctx.host_initiated()) {
    value = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(value)));
  }
  t.Slot(e, index, ctx) = value & WidthMask(p.pmu_gp_width);
  return MsrResult::Ok();
}

// Intel event selects beyond N: dropped (P6 fallback).
MsrResult WritePerfEvtSel(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                          ExitContext& ctx) {
  if (t.profile().intel() && index - e.row.index >= GpCounters(t.profile())) {
    return MsrResult::Ok();
  }
  return t.GenericWrite(e, index, value, ctx);
}

// IA32_A_PMCx: the IA32_PMCx state, written without sign extension.
MsrResult ReadAPmc(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  const uint32_t pmc = kMsrPmc0 + (index - e.row.index);
  return MsrResult::Ok(t.Slot(*t.FindEntry(pmc), pmc, ctx));
}
MsrResult WriteAPmc(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                    ExitContext& ctx) {
  if (value & e.row.reserved_mask) return MsrResult::Gp();
  const uint32_t pmc = kMsrPmc0 + (index - e.row.index);
  t.Slot(*t.FindEntry(pmc), pmc, ctx) = value;
  return MsrResult::Ok();
}

// Fixed counters: truncated to EDX[12:5] bits, no #GP.
MsrResult WriteFixedCtr(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                        ExitContext& ctx) {
  t.Slot(e, index, ctx) = value & WidthMask(t.profile().pmu_fixed_width);
  return MsrResult::Ok();
}

// GLOBAL_OVF_CTRL / GLOBAL_STATUS_CLR: guest writes clear GLOBAL_STATUS bits.
MsrResult WriteStatusClear(TableHandler& t, const TableEntry& e, uint32_t, uint64_t value,
                           ExitContext& ctx) {
  if (value & e.row.reserved_mask) return MsrResult::Gp();
  if (ctx.host_initiated()) return MsrResult::Ok();
  const uint32_t status_index = t.profile().intel() ? kMsrPerfGlobalStatus : kMsrAmdGlobalStatus;
  const TableEntry* status = t.FindEntry(status_index);
  if (status != nullptr) t.Slot(*status, status_index, ctx) &= ~value;
  return MsrResult::Ok();
}

// K7 event selects / counters: aliases of F15H_PERF_CTL/CTR with PerfCtrExtCore; AMD without a
// vPMU reads 0 and drops writes (x86.c).
MsrResult ReadK7(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  const CpuProfile& p = t.profile();
  if (p.amd()) {
    const TableEntry* f15h = t.FindEntry(kMsrF15hPerfCtl0);
    if (f15h != nullptr) {
      return MsrResult::Ok(t.Slot(*f15h, F15hAlias(e.row.index, index - e.row.index), ctx));
    }
    if (GpCounters(p) == 0) return MsrResult::Ok(0);
  }
  return t.GenericRead(e, index, ctx);
}
MsrResult WriteK7(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                  ExitContext& ctx) {
  const CpuProfile& p = t.profile();
  if (p.intel()) return t.GenericWrite(e, index, value, ctx);
  if (GpCounters(p) == 0) return MsrResult::Ok();  // No vPMU: x86.c drops the write.
  const TableEntry* f15h = t.FindEntry(kMsrF15hPerfCtl0);
  if (f15h == nullptr) return t.GenericWrite(e, index, value, ctx);
  value &= ~e.row.reserved_mask;  // Same masks as the F15H MSR it aliases.
  t.Slot(*f15h, F15hAlias(e.row.index, index - e.row.index), ctx) = value;
  return MsrResult::Ok();
}

// F15H CTLn (even): reserved bits dropped as K7; CTRn (odd): truncated to the counter width.
MsrResult WriteF15h(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                    ExitContext& ctx) {
  value &=
      (index - e.row.index) % 2 == 0 ? ~kAmdEventSelReserved : WidthMask(t.profile().pmu_gp_width);
  t.Slot(e, index, ctx) = value;
  return MsrResult::Ok();
}

const std::vector<MsrRow>& Rows() {
  static const auto* rows = new std::vector<MsrRow>{
      // --- Intel ---
      MsrRowBuilder(kMsrPmc0, "IA32_PMC", kFamily)
          .Last(kMsrPmc0 + kIntelMaxGp - 1)
          .Volatile()
          .OnRead(&ReadGpOrP6)
          .OnWrite(&WritePmc)
          .Note("Intel: GP counters 0..N-1 (N = CPUID 0xA EAX[15:8]). Guest writes are "
                "sign-extended from bit 31, then truncated to the counter width (EAX[23:16]); "
                "host writes only truncated. Indices 0xc1/0xc2 beyond N read 0 and drop writes "
                "(P6 fallback). AMD: only 0xc1/0xc2 (P6 PERFCTR0/1), read 0, writes dropped. "
                "pmu_intel.c intel_pmu_set_msr; x86.c kvm_{get,set}_msr_common"),
      MsrRowBuilder(kMsrPerfEvtSel0, "IA32_PERFEVTSEL", kFamily)
          .Last(kMsrPerfEvtSel0 + kIntelMaxGp - 1)
          // pmu->reserved_bits (intel_pmu_refresh). KVM frees bits 32/33 (IN_TX, IN_TXCP) for
          // guests with HLE or RTM; no profile models those, so they stay reserved. Resolved per
          // profile (ResolvePmuRow): without a vPMU every index drops writes.
          .Reserved(kIntelEventSelReserved)
          .OnRead(&ReadGpOrP6)
          .OnWrite(&WritePerfEvtSel)
          .Note("Intel: event selects 0..N-1; bits 63:32 and 21 (AnyThread) reserved -> #GP "
                "(pmu->reserved_bits). 0x186/0x187 beyond N read 0 and drop writes. AMD: only "
                "0x186/0x187 (P6 EVNTSEL0/1), read 0, writes dropped. pmu_intel.c "
                "intel_pmu_set_msr; x86.c kvm_{get,set}_msr_common"),
      MsrRowBuilder(kMsrFixedCtr0, "IA32_FIXED_CTR", kFamily)
          .Last(kMsrFixedCtr0 + kIntelMaxFixed - 1)
          .Only(Vendor::kIntelVmx)
          .Volatile()
          .OnWrite(&WriteFixedCtr)
          .Note("Fixed counters 0..F-1 (F = CPUID 0xA EDX[4:0], none with PMU v1); writes "
                "truncated to EDX[12:5] bits, no #GP. pmu_intel.c intel_pmu_set_msr"),
      MsrRowBuilder(kMsrFixedCtrCtrl, "IA32_FIXED_CTR_CTRL", kFamily)
          .Only(Vendor::kIntelVmx)
          .Note("PMU v2+. Per fixed counter 4 bits, of which OS/USR/PMI (0xb) may be set; "
                "AnyThread and unused counters' bits #GP (fixed_ctr_ctrl_mask). pmu_intel.c"),
      MsrRowBuilder(kMsrPerfGlobalStatus, "IA32_PERF_GLOBAL_STATUS", kFamily)
          .Checks(kCheckHostOnlyWrite)
          .Only(Vendor::kIntelVmx)
          .Note("PMU v2+. Read-only for the guest (#GP); host writes outside "
                "global_status_mask's complement #GP. pmu.c kvm_pmu_set_msr"),
      MsrRowBuilder(kMsrPerfGlobalCtrl, "IA32_PERF_GLOBAL_CTRL", kFamily)
          .Only(Vendor::kIntelVmx)
          .Note("PMU v2+. Enable bits of the GP (N-1:0) and fixed (32+F-1:32) counters; others "
                "#GP (kvm_valid_perf_global_ctrl). Reset 0. pmu.c kvm_pmu_set_msr"),
      MsrRowBuilder(kMsrPerfGlobalOvfCtrl, "IA32_PERF_GLOBAL_OVF_CTRL", kFamily)
          .Scope(MsrScope::kNone)
          .Only(Vendor::kIntelVmx)
          .OnWrite(&WriteStatusClear)
          .Note("PMU v2+. Reads 0. Guest writes clear those GLOBAL_STATUS bits; host writes are "
                "checked only. Reserved as GLOBAL_STATUS (counter bits, OVF_BUF 62, "
                "COND_CHGD 63 allowed). pmu.c kvm_pmu_set_msr"),
      MsrRowBuilder(kMsrAPmc0, "IA32_A_PMC", kFamily)
          .Last(kMsrAPmc0 + kIntelMaxGp - 1)
          .Scope(MsrScope::kNone)
          .Only(Vendor::kIntelVmx)
          .Volatile()
          .OnRead(&ReadAPmc)
          .OnWrite(&WriteAPmc)
          .Note("Full-width aliases of IA32_PMC0..N-1, only with PERF_CAPABILITIES.FW_WRITE "
                "(bit 13): no sign extension; bits above the counter width #GP. pmu_intel.c "
                "intel_pmu_set_msr (MSR_PMC_FULL_WIDTH_BIT)"),
      // --- AMD ---
      MsrRowBuilder(kMsrK7EvntSel0, "MSR_K7_EVNTSEL", kFamily)
          .Last(kMsrK7EvntSel0 + 3)
          .Reserved(kAmdEventSelReserved)
          .Checks(kCheckReservedIgnored)
          .OnRead(&ReadK7)
          .OnWrite(&WriteK7)
          .Note("AMD: legacy event selects 0-3 (aliases of F15H_PERF_CTL0-3 with "
                "PerfCtrExtCore). Reserved bits (0xfffffff000280000) are dropped, never #GP. "
                "Intel, or AMD without a vPMU: read 0, writes dropped. pmu_amd.c "
                "amd_pmu_set_msr; x86.c kvm_{get,set}_msr_common"),
      MsrRowBuilder(kMsrK7PerfCtr0, "MSR_K7_PERFCTR", kFamily)
          .Last(kMsrK7PerfCtr0 + 3)
          .Reserved(~WidthMask(48))
          .Checks(kCheckReservedIgnored)
          .Volatile()
          .OnRead(&ReadK7)
          .OnWrite(&WriteK7)
          .Note("AMD: legacy counters 0-3 (aliases of F15H_PERF_CTR0-3 with PerfCtrExtCore), "
                "48 bits: higher bits dropped. Intel, or AMD without a vPMU: read 0, writes "
                "dropped. pmu_amd.c amd_pmu_set_msr; x86.c kvm_{get,set}_msr_common"),
      MsrRowBuilder(kMsrF15hPerfCtl0, "MSR_F15H_PERF", kFamily)
          .Last(kMsrF15hPerfCtl0 + 2 * kAmdMaxGp - 1)
          .Checks(kCheckAbsentWithoutFeature)
          .Requires(Feature::kPerfCtrCore)
          .Only(Vendor::kAmdSvm)
          .Volatile()
          .OnWrite(&WriteF15h)
          .Note("PerfCtrExtCore: interleaved CTLn (even) / CTRn (odd) for N counters; CTL "
                "reserved bits dropped as K7, CTR truncated to 48 bits. Without the feature "
                "KVM_MSR_RET_UNSUPPORTED. pmu_amd.c get_gp_pmc_amd"),
      MsrRowBuilder(kMsrAmdGlobalStatus, "MSR_AMD64_PERF_CNTR_GLOBAL_STATUS", kFamily)
          .Checks(kCheckWritesIgnored | kCheckHostOnlyWrite | kCheckAbsentWithoutFeature)
          .Requires(Feature::kPerfMonV2)
          .Only(Vendor::kAmdSvm)
          .Note("PerfMonV2. Guest writes ignored (read-only per PPR); host writes outside the "
                "counter bits #GP. pmu.c kvm_pmu_set_msr"),
      MsrRowBuilder(kMsrAmdGlobalCtl, "MSR_AMD64_PERF_CNTR_GLOBAL_CTL", kFamily)
          .Checks(kCheckReservedIgnored | kCheckAbsentWithoutFeature)
          .Requires(Feature::kPerfMonV2)
          .Only(Vendor::kAmdSvm)
          .Note("PerfMonV2. Counter enable bits N-1:0; others dropped (data &= "
                "~global_ctrl_mask), never #GP. pmu.c kvm_pmu_set_msr"),
      MsrRowBuilder(kMsrAmdGlobalStatusClr, "MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR", kFamily)
          .Scope(MsrScope::kNone)
          .Checks(kCheckAbsentWithoutFeature)
          .Requires(Feature::kPerfMonV2)
          .Only(Vendor::kAmdSvm)
          .OnWrite(&WriteStatusClear)
          .Note("PerfMonV2. Reads 0; guest writes clear GLOBAL_STATUS bits, host writes do "
                "nothing; no reserved-bit check. pmu.c kvm_pmu_set_msr"),
  };
  return *rows;
}

std::string IndexName(const MsrRow& row, uint32_t index) {
  const uint32_t off = index - row.index;
  switch (row.index) {
    case kMsrPmc0:
    case kMsrPerfEvtSel0:
    case kMsrFixedCtr0:
    case kMsrAPmc0:
    case kMsrK7EvntSel0:
    case kMsrK7PerfCtr0:
      return absl::StrFormat("%s%u", row.name, off);
    case kMsrF15hPerfCtl0:
      return absl::StrFormat("%s%u", off % 2 == 0 ? "MSR_F15H_PERF_CTL" : "MSR_F15H_PERF_CTR",
                             off / 2);
    default:
      return row.name;
  }
}

// Empties a resolved range (the profile has none of its indices).
void MakeEmpty(MsrRow& r) { r.last = r.index - 1; }

absl::Span<const MsrRow> RowsSpan() { return absl::MakeConstSpan(Rows()); }

absl::Status Install(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(
      controller, std::make_unique<TableHandler>(controller.layout(), profile,
                                                 RowsToInstall(PmuFamily(), profile), &IndexName));
}

}  // namespace

uint64_t PmuGlobalCtrlReserved(const CpuProfile& p) {
  const uint64_t gp = (1ull << p.pmu_gp_counters) - 1;
  if (p.amd()) return ~gp;
  return ~(gp | (((1ull << p.pmu_fixed_counters) - 1) << 32));
}

uint64_t PmuGlobalStatusReserved(const CpuProfile& p) {
  if (p.amd()) return PmuGlobalCtrlReserved(p);
  return PmuGlobalCtrlReserved(p) & ~(kGlobalOvfBuf | kGlobalCondChgd);
}

uint64_t PmuFixedCtrCtrlReserved(const CpuProfile& p) {
  uint64_t mask = ~0ull;
  for (uint32_t i = 0; i < p.pmu_fixed_counters; ++i) mask &= ~(0xbull << (4 * i));
  return mask;
}

MsrRow ResolvePmuRow(const MsrRow& row, const CpuProfile& p) {
  MsrRow r = row;
  const uint32_t gp = p.pmu_version > 0 ? p.pmu_gp_counters : 0;
  const uint32_t fixed = p.pmu_version > 1 ? p.pmu_fixed_counters : 0;
  const bool global = p.intel() ? p.pmu_version > 1 : p.Has(Feature::kPerfMonV2);
  if (row.vendor_only != Vendor::kUnspecified && row.vendor_only != p.vendor) return r;
  // The other vendor's legacy counters (and AMD's without a vPMU): read 0, writes dropped.
  auto fallback = [&r]() {
    r.scope = MsrScope::kNone;
    r.checks = kCheckWritesIgnored;
    r.reserved_mask = 0;
    r.volatile_value = false;
  };
  switch (row.index) {
    case kMsrPmc0:
    case kMsrPerfEvtSel0:
      if (p.intel()) {
        r.last = row.index + std::max<uint32_t>(gp, 2) - 1;
        // Indices at and beyond N are the P6 fallback: reads 0, writes dropped. With no counter
        // that is the whole range; with one, the range mixes both (no profile has N = 1).
        if (gp == 0) r.checks |= kCheckWritesIgnored;
        if (gp == 1 && row.reserved_mask != 0) r.checks |= kCheckReservedConditional;
      } else {
        r.last = row.index + 1;
        fallback();
      }
      break;
    case kMsrAPmc0:
      if (gp == 0 || !(p.perf_capabilities & kPerfCapFwWrites)) {
        MakeEmpty(r);
      } else {
        r.last = row.index + gp - 1;
        r.reserved_mask = ~WidthMask(p.pmu_gp_width);
      }
      break;
    case kMsrFixedCtr0:
      if (fixed == 0) {
        MakeEmpty(r);
      } else {
        r.last = row.index + fixed - 1;
      }
      break;
    case kMsrFixedCtrCtrl:
      if (!global) MakeEmpty(r);
      r.reserved_mask = PmuFixedCtrCtrlReserved(p);
      break;
    case kMsrPerfGlobalStatus:
    case kMsrPerfGlobalOvfCtrl:
    case kMsrAmdGlobalStatus:
    case kMsrAmdGlobalStatusClr:
      if (!global) MakeEmpty(r);
      r.reserved_mask = row.index == kMsrAmdGlobalStatusClr ? 0 : PmuGlobalStatusReserved(p);
      break;
    case kMsrPerfGlobalCtrl:
    case kMsrAmdGlobalCtl:
      if (!global) MakeEmpty(r);
      r.reserved_mask = PmuGlobalCtrlReserved(p);
      break;
    case kMsrK7EvntSel0:
    case kMsrK7PerfCtr0:
      if (p.intel() || gp == 0) {
        fallback();
      } else if (p.Has(Feature::kPerfCtrCore)) {
        r.scope = MsrScope::kNone;  // Aliases: the state lives in the F15H MSRs.
      }
      break;
    case kMsrF15hPerfCtl0:
      if (gp == 0) {
        MakeEmpty(r);
      } else {
        r.last = row.index + 2 * std::min<uint32_t>(gp, kAmdMaxGp) - 1;
      }
      break;
    default:
      break;
  }
  return r;
}

const MsrFamilyDef& PmuFamily() {
  static constexpr MsrFamilyDef kDef = {kFamily, &RowsSpan, &ResolvePmuRow, &Install};
  return kDef;
}

}  // namespace msrtrace
