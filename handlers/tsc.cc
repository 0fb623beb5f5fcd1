#include "handlers/tsc.h"

#include <memory>

#include "absl/strings/str_format.h"
#include "handlers/families.h"

namespace msrtrace {
namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000ull;

constexpr MsrRow kTscRows[] = {
    {kMsrIa32Tsc, kMsrIa32Tsc, "IA32_TIME_STAMP_COUNTER", "tsc", 0, 0, 0, kCheckNone,
     MsrScope::kVcpu, Feature::kCount, Vendor::kUnspecified, /*volatile_value=*/true,
     "Reads host TSC + offset (ratio 1). Guest write sets the offset so the guest TSC equals the "
     "value and adds the same delta to IA32_TSC_ADJUST; host write sets the offset only "
     "(msrs.c kvm_set_msr_common MSR_IA32_TSC; selftest tsc_msrs_test)"},
    {kMsrIa32TscAdjust, kMsrIa32TscAdjust, "IA32_TSC_ADJUST", "tsc", 0, 0, 0, kCheckNone,
     MsrScope::kVcpu, Feature::kCount, Vendor::kUnspecified, false,
     "Reads the stored value. With CPUID TSC_ADJUST a guest write moves the TSC offset by "
     "(new - old) and stores; a host write stores only. Without the feature writes are silently "
     "ignored (msrs.c MSR_IA32_TSC_ADJUST; KUT tsc_adjust)"},
};

class TscHandler : public MsrHandler {
 public:
  TscHandler(StateLayout& layout, const CpuProfile& profile)
      : offset_(EnsureTscOffsetSlot(layout)),
        adjust_(layout.AddVcpuSlot(kTscAdjustSlot, 0)),
        has_tsc_adjust_(profile.Has(Feature::kTscAdjust)) {}

  absl::StatusOr<MsrResult> Read(uint32_t index, ExitContext& ctx) override {
    if (index == kMsrIa32Tsc) return MsrResult::Ok(GuestTsc(ctx, offset_));
    return MsrResult::Ok(ctx.slot(adjust_));
  }

  absl::StatusOr<MsrResult> Write(uint32_t index, uint64_t value, ExitContext& ctx) override {
    if (index == kMsrIa32Tsc) {
      // Offset such that host_tsc + offset == value (mod 2^64).
      const uint64_t new_offset = value - ctx.exit().host_tsc;
      if (!ctx.host_initiated()) ctx.slot(adjust_) += new_offset - ctx.slot(offset_);
      ctx.slot(offset_) = new_offset;
      return MsrResult::Ok();
    }
    if (!has_tsc_adjust_) return MsrResult::Ok();  // Silently ignored, no #GP.
    if (!ctx.host_initiated()) ctx.slot(offset_) += value - ctx.slot(adjust_);
    ctx.slot(adjust_) = value;
    return MsrResult::Ok();
  }

  absl::string_view MsrName(uint32_t index) const override {
    return index == kMsrIa32Tsc ? "IA32_TIME_STAMP_COUNTER" : "IA32_TSC_ADJUST";
  }

 private:
  SlotId offset_;
  SlotId adjust_;
  bool has_tsc_adjust_;
};

absl::Span<const MsrRow> TscRows() { return kTscRows; }

absl::Status InstallTsc(Controller& controller, const CpuProfile& profile) {
  MsrHandler* handler =
      controller.Adopt(std::make_unique<TscHandler>(controller.layout(), profile));
  for (const MsrRow& row : kTscRows) {
    if (!FamilyRowExists(row, profile)) continue;
    if (!controller.InsertRange(row.index, row.last, handler)) {
      return absl::AlreadyExistsError(
          absl::StrFormat("tsc family: MSR %#x (%s) already has a handler", row.index, row.name));
    }
  }
  return absl::OkStatus();
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
  if (row.requires_feature != Feature::kCount && !profile.Has(row.requires_feature)) return false;
  if (row.vendor_only != Vendor::kUnspecified && row.vendor_only != profile.vendor) return false;
  return true;
}

const MsrFamilyDef& TscFamily() {
  static const MsrFamilyDef kDef = {"tsc", &TscRows, &InstallTsc};
  return kDef;
}

}  // namespace msrtrace
