#include "handlers/kvm_pv.h"

#include <array>
#include <memory>

#include "absl/strings/str_format.h"
#include "handlers/tsc.h"

namespace msrtrace {
namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000ull;
constexpr uint64_t kMsrEnabled = 1;          // KVM_MSR_ENABLED: bit 0 of the GPA MSRs.
constexpr uint64_t kAsyncPfReserved = 0x30;  // Bits 5:4.
constexpr uint64_t kAsyncPfDeliveryAsPfVmexit = 1ull << 2;
constexpr uint64_t kAsyncPfDeliveryAsInt = 1ull << 3;
constexpr uint64_t kStealReserved = 0x3e;  // KVM_STEAL_RESERVED_MASK: bits 5:1.
constexpr uint64_t kMigrationReady = 1;    // KVM_MIGRATION_READY.

constexpr uint32_t kMem = kCheckGuestMemory;

constexpr MsrRow Pv(uint32_t index, const char* name, uint64_t reset, uint64_t reserved,
                    uint32_t checks, MsrScope scope, const char* note) {
  MsrRow row;
  row.index = index;
  row.last = index;
  row.name = name;
  row.family = "kvm-pv";
  row.reset = reset;
  row.reserved_mask = reserved;
  row.checks = checks;
  row.scope = scope;
  row.note = note;
  return row;
}

constexpr MsrRow kKvmPvRows[] = {
    Pv(kMsrKvmWallClock, "MSR_KVM_WALL_CLOCK", 0, 0, kMem, MsrScope::kVm,
       "KVM_FEATURE_CLOCKSOURCE. Stores the GPA (VM-wide) and writes pvclock_wall_clock there "
       "(version odd, {version, sec, nsec} of guest boot, version even); reads the GPA. The "
       "memory written depends on time (x86.c kvm_write_wall_clock)"),
    Pv(kMsrKvmSystemTime, "MSR_KVM_SYSTEM_TIME", 0, 0, kMem, MsrScope::kVcpu,
       "KVM_FEATURE_CLOCKSOURCE. Stores the value; bit 0 enables pvclock_vcpu_time_info at "
       "value & ~1 (written with the version protocol); on vCPU 0 it disables the master clock "
       "(no TSC_STABLE flag). Reads return the value; the memory written depends on time "
       "(x86.c kvm_write_system_time, kvm_setup_guest_pvclock)"),
    Pv(kMsrKvmWallClockNew, "MSR_KVM_WALL_CLOCK_NEW", 0, 0, kMem, MsrScope::kVm,
       "KVM_FEATURE_CLOCKSOURCE2. Same as MSR_KVM_WALL_CLOCK (msr.rst)"),
    Pv(kMsrKvmSystemTimeNew, "MSR_KVM_SYSTEM_TIME_NEW", 0, 0, kMem, MsrScope::kVcpu,
       "KVM_FEATURE_CLOCKSOURCE2. Same as MSR_KVM_SYSTEM_TIME; flags carry "
       "PVCLOCK_TSC_STABLE_BIT with the stable-clocksource feature (msr.rst)"),
    Pv(kMsrKvmAsyncPfEn, "MSR_KVM_ASYNC_PF_EN", 0, kAsyncPfReserved, kCheckValueRules,
       MsrScope::kVcpu,
       "KVM_FEATURE_ASYNC_PF. Bits 5:4 #GP; bit 2 needs ASYNC_PF_VMEXIT, bit 3 ASYNC_PF_INT; "
       "enabled with bits 0|3 needs a backed u64 at value & ~0x3f (x86.c kvm_pv_enable_async_pf)"),
    Pv(kMsrKvmStealTime, "MSR_KVM_STEAL_TIME", 0, kStealReserved, kCheckValueRules, MsrScope::kVcpu,
       "KVM_FEATURE_STEAL_TIME. Bits 5:1 #GP (KVM_STEAL_RESERVED_MASK); stored (msrs.c)"),
    Pv(kMsrKvmPvEoiEn, "MSR_KVM_PV_EOI_EN", 0, 0x2, kCheckValueRules, MsrScope::kVcpu,
       "KVM_FEATURE_PV_EOI. Address must be 4-byte aligned; enabled needs a backed byte "
       "(lapic.c kvm_lapic_set_pv_eoi)"),
    Pv(kMsrKvmPollControl, "MSR_KVM_POLL_CONTROL", 1, ~1ull, kCheckValueRules, MsrScope::kVcpu,
       "KVM_FEATURE_POLL_CONTROL. Only bit 0; reset 1 (msrs.c; x86.c kvm_arch_vcpu_postcreate)"),
    Pv(kMsrKvmAsyncPfInt, "MSR_KVM_ASYNC_PF_INT", 0, ~0xffull, kCheckValueRules, MsrScope::kVcpu,
       "KVM_FEATURE_ASYNC_PF_INT. Bits 63:8 #GP; bits 7:0 the vector "
       "(x86.c kvm_pv_enable_async_pf_int)"),
    Pv(kMsrKvmAsyncPfAck, "MSR_KVM_ASYNC_PF_ACK", 0, 0, kCheckValueRules, MsrScope::kNone,
       "KVM_FEATURE_ASYNC_PF_INT. Any value accepted (bit 0 acks page-ready); reads 0 (msrs.c)"),
    Pv(kMsrKvmMigrationControl, "MSR_KVM_MIGRATION_CONTROL", 0, ~kMigrationReady, kCheckValueRules,
       MsrScope::kVm,
       "KVM_FEATURE_MIGRATION_CONTROL. Forwarded by KVM to the VMM; modelled as bit 0 "
       "(KVM_MIGRATION_READY) only, VM-wide (kvm_para.h)"),
};

void PutLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetLe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

class KvmPvHandler : public MsrHandler {
 public:
  KvmPvHandler(StateLayout& layout, const CpuProfile& profile)
      : tsc_offset_(EnsureTscOffsetSlot(layout)),
        wall_clock_(layout.AddVmSlot(kKvmWallClockSlot, 0)),
        boot_old_kvmclock_(layout.AddVmSlot("KVM_CLOCK.boot_vcpu_runs_old_kvmclock", 0)),
        migration_(layout.AddVmSlot("MSR_KVM_MIGRATION_CONTROL", 0)),
        system_time_(layout.AddVcpuSlot(kKvmSystemTimeSlot, 0)),
        async_pf_en_(layout.AddVcpuSlot("MSR_KVM_ASYNC_PF_EN", 0)),
        steal_time_(layout.AddVcpuSlot("MSR_KVM_STEAL_TIME", 0)),
        pv_eoi_(layout.AddVcpuSlot("MSR_KVM_PV_EOI_EN", 0)),
        poll_control_(layout.AddVcpuSlot("MSR_KVM_POLL_CONTROL", 1)),
        async_pf_int_(layout.AddVcpuSlot("MSR_KVM_ASYNC_PF_INT", 0)),
        clocksource_(profile.HasPv(Feature::kPvClocksource)),
        clocksource2_(profile.HasPv(Feature::kPvClocksource2)),
        async_pf_(profile.HasPv(Feature::kPvAsyncPf)),
        async_pf_vmexit_(profile.HasPv(Feature::kPvAsyncPfVmexit)),
        async_pf_int_feature_(profile.HasPv(Feature::kPvAsyncPfInt)),
        steal_(profile.HasPv(Feature::kPvSteal)),
        eoi_(profile.HasPv(Feature::kPvEoi)),
        poll_(profile.HasPv(Feature::kPvPollControl)),
        migration_feature_(profile.HasPv(Feature::kPvMigrationControl)),
        stable_(profile.Has(Feature::kPvClocksourceStable)) {}

  absl::StatusOr<MsrResult> Read(uint32_t index, ExitContext& ctx) override {
    if (!Enabled(index)) return AbsentRead(index, ctx);
    switch (index) {
      case kMsrKvmWallClock:
      case kMsrKvmWallClockNew:
        return MsrResult::Ok(ctx.vm_slot(wall_clock_));
      case kMsrKvmSystemTime:
      case kMsrKvmSystemTimeNew:
        return MsrResult::Ok(ctx.slot(system_time_));
      case kMsrKvmAsyncPfEn:
        return MsrResult::Ok(ctx.slot(async_pf_en_));
      case kMsrKvmStealTime:
        return MsrResult::Ok(ctx.slot(steal_time_));
      case kMsrKvmPvEoiEn:
        return MsrResult::Ok(ctx.slot(pv_eoi_));
      case kMsrKvmPollControl:
        return MsrResult::Ok(ctx.slot(poll_control_));
      case kMsrKvmAsyncPfInt:
        return MsrResult::Ok(ctx.slot(async_pf_int_));
      case kMsrKvmAsyncPfAck:
        return MsrResult::Ok(0);
      case kMsrKvmMigrationControl:
        return MsrResult::Ok(ctx.vm_slot(migration_));
      default:
        return MsrResult::Unsupported();
    }
  }

  absl::StatusOr<MsrResult> Write(uint32_t index, uint64_t value, ExitContext& ctx) override {
    if (!Enabled(index)) {
      // kvm_do_msr_access: the host may write 0 to an advertised MSR KVM does not support.
      if (ctx.host_initiated() && value == 0 && Advertised(index)) return MsrResult::Ok();
      return MsrResult::Unsupported();
    }
    switch (index) {
      case kMsrKvmWallClock:
      case kMsrKvmWallClockNew:
        ctx.vm_slot(wall_clock_) = value;
        WriteWallClock(value, ctx);
        return MsrResult::Ok();
      case kMsrKvmSystemTime:
      case kMsrKvmSystemTimeNew: {
        if (ctx.vcpu_id() == 0 && !ctx.host_initiated()) {
          ctx.vm_slot(boot_old_kvmclock_) = index == kMsrKvmSystemTime ? 1 : 0;
        }
        ctx.slot(system_time_) = value;
        if ((value & kMsrEnabled) != 0) WriteTimeInfo(value & ~kMsrEnabled, ctx);
        return MsrResult::Ok();
      }
      case kMsrKvmAsyncPfEn: {
        if ((value & kAsyncPfReserved) != 0) return MsrResult::Gp();
        if ((value & kAsyncPfDeliveryAsPfVmexit) != 0 && !async_pf_vmexit_) {
          return MsrResult::Gp();
        }
        if ((value & kAsyncPfDeliveryAsInt) != 0 && !async_pf_int_feature_) {
          return MsrResult::Gp();
        }
        const uint64_t enabled = kMsrEnabled | kAsyncPfDeliveryAsInt;
        uint64_t probe;
        if ((value & enabled) == enabled &&
            !ctx.ReadGuest(value & ~0x3full, &probe, sizeof(probe))) {
          return MsrResult::Gp();  // kvm_gfn_to_hva_cache_init failed.
        }
        ctx.slot(async_pf_en_) = value;
        return MsrResult::Ok();
      }
      case kMsrKvmStealTime:
        if ((value & kStealReserved) != 0) return MsrResult::Gp();
        ctx.slot(steal_time_) = value;
        return MsrResult::Ok();
      case kMsrKvmPvEoiEn: {
        const uint64_t addr = value & ~kMsrEnabled;
        if ((addr & 3) != 0) return MsrResult::Gp();
        uint8_t probe;
        if ((value & kMsrEnabled) != 0 && !ctx.ReadGuest(addr, &probe, sizeof(probe))) {
          return MsrResult::Gp();
        }
        ctx.slot(pv_eoi_) = value;
        return MsrResult::Ok();
      }
      case kMsrKvmPollControl:
        if ((value & ~1ull) != 0) return MsrResult::Gp();
        ctx.slot(poll_control_) = value;
        return MsrResult::Ok();
      case kMsrKvmAsyncPfInt:
        if ((value >> 8) != 0) return MsrResult::Gp();
        ctx.slot(async_pf_int_) = value;
        return MsrResult::Ok();
      case kMsrKvmAsyncPfAck:
        return MsrResult::Ok();
      case kMsrKvmMigrationControl:
        if ((value & ~kMigrationReady) != 0) return MsrResult::Gp();
        ctx.vm_slot(migration_) = value;
        return MsrResult::Ok();
      default:
        return MsrResult::Unsupported();
    }
  }

  absl::string_view MsrName(uint32_t index) const override {
    for (const MsrRow& row : kKvmPvRows) {
      if (row.index == index) return row.name;
    }
    return {};
  }

 private:
  // guest_pv_has() for the feature that gates `index`.
  bool Enabled(uint32_t index) const {
    switch (index) {
      case kMsrKvmWallClock:
      case kMsrKvmSystemTime:
        return clocksource_;
      case kMsrKvmWallClockNew:
      case kMsrKvmSystemTimeNew:
        return clocksource2_;
      case kMsrKvmAsyncPfEn:
        return async_pf_;
      case kMsrKvmStealTime:
        return steal_;
      case kMsrKvmPvEoiEn:
        return eoi_;
      case kMsrKvmPollControl:
        return poll_;
      case kMsrKvmAsyncPfInt:
      case kMsrKvmAsyncPfAck:
        return async_pf_int_feature_;
      case kMsrKvmMigrationControl:
        return migration_feature_;
      default:
        return false;
    }
  }

  // In KVM's emulated_msrs list (so KVM_GET/SET_MSRS may read, or write 0, without support).
  static bool Advertised(uint32_t index) { return index != kMsrKvmMigrationControl; }

  static MsrResult AbsentRead(uint32_t index, ExitContext& ctx) {
    if (ctx.host_initiated() && Advertised(index)) return MsrResult::Ok(0);
    return MsrResult::Unsupported();
  }

  // kvm_write_wall_clock: version protocol around {version, sec, nsec} of guest boot.
  static void WriteWallClock(uint64_t gpa, ExitContext& ctx) {
    if (gpa == 0) return;
    uint8_t raw[4];
    if (!ctx.ReadGuest(gpa, raw, sizeof(raw))) return;
    uint32_t version = GetLe32(raw);
    if ((version & 1) != 0) ++version;  // First write: random junk.
    ++version;
    PutLe32(raw, version);
    if (!ctx.WriteGuest(gpa, raw, sizeof(raw))) return;
    const uint64_t boot_ns = ctx.exit().host_wall_ns - KvmclockNs(ctx);
    std::array<uint8_t, kPvclockWallClockSize> wc{};
    PutLe32(&wc[0], version);
    PutLe32(&wc[4], static_cast<uint32_t>(boot_ns / kNsPerSec));  // Overflows in 2106.
    PutLe32(&wc[8], static_cast<uint32_t>(boot_ns % kNsPerSec));
    if (!ctx.WriteGuest(gpa, wc.data(), wc.size())) return;
    PutLe32(raw, version + 1);
    ctx.WriteGuest(gpa, raw, sizeof(raw));
  }

  // kvm_setup_guest_pvclock with the model's time (see kvm_pv.h).
  void WriteTimeInfo(uint64_t gpa, ExitContext& ctx) {
    if ((gpa & (kPageSize - 1)) + kPvclockTimeInfoSize > kPageSize) return;
    std::array<uint8_t, kPvclockTimeInfoSize> info{};
    if (!ctx.ReadGuest(gpa, info.data(), info.size())) return;
    const uint32_t version = (GetLe32(&info[0]) + 1) | 1;
    const uint8_t guest_flags = info[29];
    uint8_t flags = guest_flags & kPvclockGuestStopped;
    if (stable_ && ctx.vm_slot(boot_old_kvmclock_) == 0) flags |= kPvclockTscStableBit;
    const PvclockScale scale = ModelPvclockScale();

    uint8_t raw[4];
    PutLe32(raw, version);
    if (!ctx.WriteGuest(gpa, raw, sizeof(raw))) return;
    info.fill(0);
    PutLe32(&info[0], version);
    PutLe64(&info[8], GuestTsc(ctx, tsc_offset_));
    PutLe64(&info[16], KvmclockNs(ctx));
    PutLe32(&info[24], scale.mul);
    info[28] = static_cast<uint8_t>(scale.shift);
    info[29] = flags;
    if (!ctx.WriteGuest(gpa, info.data(), info.size())) return;
    PutLe32(raw, version + 1);
    ctx.WriteGuest(gpa, raw, sizeof(raw));
  }

  SlotId tsc_offset_;
  SlotId wall_clock_;
  SlotId boot_old_kvmclock_;
  SlotId migration_;
  SlotId system_time_;
  SlotId async_pf_en_;
  SlotId steal_time_;
  SlotId pv_eoi_;
  SlotId poll_control_;
  SlotId async_pf_int_;
  bool clocksource_;
  bool clocksource2_;
  bool async_pf_;
  bool async_pf_vmexit_;
  bool async_pf_int_feature_;
  bool steal_;
  bool eoi_;
  bool poll_;
  bool migration_feature_;
  bool stable_;
};

absl::Span<const MsrRow> KvmPvRows() { return kKvmPvRows; }

absl::Status InstallKvmPv(Controller& controller, const CpuProfile& profile) {
  MsrHandler* handler =
      controller.Adopt(std::make_unique<KvmPvHandler>(controller.layout(), profile));
  for (const MsrRow& row : kKvmPvRows) {
    if (!FamilyRowExists(row, profile)) continue;
    if (!controller.InsertRange(row.index, row.last, handler)) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "kvm-pv family: MSR %#x (%s) already has a handler", row.index, row.name));
    }
  }
  return absl::OkStatus();
}

}  // namespace

const MsrFamilyDef& KvmPvFamily() {
  static const MsrFamilyDef kDef = {"kvm-pv", &KvmPvRows, &InstallKvmPv};
  return kDef;
}

}  // namespace msrtrace
