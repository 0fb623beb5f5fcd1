#include "handlers/tsc.h"

#include <memory>
#include <vector>

#include "handlers/families.h"
#include "handlers/table_handler.h"

namespace msrtrace {
namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000ull;

constexpr char kFamily[] = "tsc";

// Family state, in layout order: the TSC offset (shared with lapic and kvm-pv), TSC_ADJUST.
enum TscState : size_t { kOffset = 0, kAdjust };
constexpr TableStateDef kTscState[] = {
    {kTscOffsetSlot, 0, MsrScope::kVcpu, /*shared=*/true},
    {kTscAdjustSlot, 0, MsrScope::kVcpu},
};

MsrResult ReadTsc(TableHandler& t, const TableEntry&, uint32_t, ExitContext& ctx) {
  return MsrResult::Ok(ctx.exit().host_tsc + t.State(kOffset, ctx));
}

// Offset such that host_tsc + offset == value (mod 2^64); a guest write moves TSC_ADJUST too.
MsrResult WriteTsc(TableHandler& t, const TableEntry&, uint32_t, uint64_t value, ExitContext& ctx) {
  uint64_t& offset = t.State(kOffset, ctx);
  const uint64_t new_offset = value - ctx.exit().host_tsc;
  if (!ctx.host_initiated()) t.State(kAdjust, ctx) += new_offset - offset;
  offset = new_offset;
  return MsrResult::Ok();
}

MsrResult WriteTscAdjust(TableHandler& t, const TableEntry&, uint32_t, uint64_t value,
                         ExitContext& ctx) {
  if (!t.profile().Has(Feature::kTscAdjust)) return MsrResult::Ok();  // Ignored, no #GP.
  uint64_t& adjust = t.State(kAdjust, ctx);
  if (!ctx.host_initiated()) t.State(kOffset, ctx) += value - adjust;
  adjust = value;
  return MsrResult::Ok();
}

const std::vector<MsrRow>& Rows() {
  static const auto* rows = new std::vector<MsrRow>{
      MsrRowBuilder(kMsrIa32Tsc, "IA32_TIME_STAMP_COUNTER", kFamily)
          .Volatile()
          .State(kNoState)
          .OnRead(&ReadTsc)
          .OnWrite(&WriteTsc)
          .Note("Reads host TSC + offset (ratio 1). Guest write sets the offset so the guest TSC "
                "equals the value and adds the same delta to IA32_TSC_ADJUST; host write sets "
                "the offset only (msrs.c kvm_set_msr_common MSR_IA32_TSC; selftest "
                "tsc_msrs_test)"),
      MsrRowBuilder(kMsrIa32TscAdjust, "IA32_TSC_ADJUST", kFamily)
          .State(kTscAdjustSlot)
          .OnWrite(&WriteTscAdjust)
          .Note("Reads the stored value. With CPUID TSC_ADJUST a guest write moves the TSC offset "
                "by (new - old) and stores; a host write stores only. Without the feature writes "
                "are silently ignored (msrs.c MSR_IA32_TSC_ADJUST; KUT tsc_adjust)"),
  };
  return *rows;
}

absl::Span<const MsrRow> TscRows() { return absl::MakeConstSpan(Rows()); }

absl::Status InstallTsc(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(
      controller,
      std::make_unique<TableHandler>(controller.layout(), profile,
                                     RowsToInstall(TscFamily(), profile), nullptr, kTscState));
}

}  // namespace

PvclockScale ComputePvclockScale(uint64_t tsc_hz) {
  int shift = 0;
  uint64_t rate = tsc_hz;
  uint64_t scaled = kNsPerSec;
  // Bring the rate into 32 bits and at most twice the target rate.
  while (rate > scaled * 2 || (rate >> 32) != 0) {
    rate >>= 1;
    --shift;
  }
  uint32_t rate32 = static_cast<uint32_t>(rate);
  // Then make it strictly greater than the target (so mul < 2^32), keeping both in 32 bits.
  while (rate32 <= scaled || (scaled >> 32) != 0) {
    if ((scaled >> 32) != 0 || (rate32 & 0x80000000u) != 0) {
      scaled >>= 1;
    } else {
      rate32 <<= 1;
    }
    ++shift;
  }
  PvclockScale s;
  s.shift = static_cast<int8_t>(shift);
  s.mul = static_cast<uint32_t>((scaled << 32) / rate32);
  return s;
}

uint64_t PvclockScaleDelta(uint64_t delta, PvclockScale scale) {
  if (scale.shift < 0) {
    delta >>= -scale.shift;
  } else {
    delta <<= scale.shift;
  }
  return static_cast<uint64_t>((static_cast<unsigned __int128>(delta) * scale.mul) >> 32);
}

PvclockScale ModelPvclockScale() {
  static const PvclockScale kScale = ComputePvclockScale(kModelTscKhz * 1000);
  return kScale;
}

uint64_t KvmclockNs(const ExitContext& ctx) {
  return PvclockScaleDelta(ctx.exit().host_tsc, ModelPvclockScale());
}

uint64_t GuestTsc(ExitContext& ctx, SlotId offset_slot) {
  return ctx.exit().host_tsc + ctx.slot(offset_slot);
}

SlotId EnsureTscOffsetSlot(StateLayout& layout) {
  const int found = layout.FindVcpuSlot(kTscOffsetSlot);
  if (found >= 0) return static_cast<SlotId>(found);
  return layout.AddVcpuSlot(kTscOffsetSlot, 0);
}

bool FamilyRowExists(const MsrRow& row, const CpuProfile& profile) {
  return RowExists(row, profile);
}

const MsrFamilyDef& TscFamily() {
  static constexpr MsrFamilyDef kDef = {kFamily, &TscRows, nullptr, &InstallTsc};
  return kDef;
}

}  // namespace msrtrace
