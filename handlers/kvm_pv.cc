#include "handlers/kvm_pv.h"

#include <array>
#include <memory>
#include <vector>

#include "handlers/families.h"
#include "handlers/table_handler.h"
#include "handlers/tsc.h"
#include "harness/core/le_bytes.h"

namespace msrtrace {
namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000ull;
constexpr uint64_t kMsrEnabled = 1;          // KVM_MSR_ENABLED: bit 0 of the GPA MSRs.
constexpr uint64_t kAsyncPfReserved = 0x30;  // Bits 5:4.
constexpr uint64_t kAsyncPfDeliveryAsPfVmexit = 1ull << 2;
constexpr uint64_t kAsyncPfDeliveryAsInt = 1ull << 3;
constexpr uint64_t kStealReserved = 0x3e;  // KVM_STEAL_RESERVED_MASK: bits 5:1.
constexpr uint64_t kMigrationReady = 1;    // KVM_MIGRATION_READY.

constexpr char kFamily[] = "kvm-pv";
constexpr uint32_t kMem = kCheckGuestMemory;

// Family state, in layout order (VM-wide and per-vCPU slots are two lists).
enum PvState : size_t {
  kOffset = 0,  // The TSC offset (tsc.h), shared.
  kWallClock,
  kBootOldKvmclock,  // boot_vcpu_runs_old_kvmclock.
  kMigration,
  kSystemTime,
  kAsyncPfEn,
  kStealTime,
  kPvEoi,
  kPollControl,
  kAsyncPfInt,
};
constexpr TableStateDef kPvState[] = {
    {kTscOffsetSlot, 0, MsrScope::kVcpu, /*shared=*/true},
    {kKvmWallClockSlot, 0, MsrScope::kVm},
    {"KVM_CLOCK.boot_vcpu_runs_old_kvmclock", 0, MsrScope::kVm},
    {"MSR_KVM_MIGRATION_CONTROL", 0, MsrScope::kVm},
    {kKvmSystemTimeSlot, 0, MsrScope::kVcpu},
    {"MSR_KVM_ASYNC_PF_EN", 0, MsrScope::kVcpu},
    {"MSR_KVM_STEAL_TIME", 0, MsrScope::kVcpu},
    {"MSR_KVM_PV_EOI_EN", 0, MsrScope::kVcpu},
    {"MSR_KVM_POLL_CONTROL", 1, MsrScope::kVcpu},
    {"MSR_KVM_ASYNC_PF_INT", 0, MsrScope::kVcpu},
};

// In KVM's emulated_msrs list (so KVM_GET/SET_MSRS may read, or write 0, without support).
bool Advertised(uint32_t index) { return index != kMsrKvmMigrationControl; }

// The KVM_FEATURE_* each MSR needs (guest_pv_has: every one unless the profile enforces PV
// CPUID). On a profile without it, resolution gives the row kCheckReadOnly | kCheckWriteOnly:
// guest accesses are KVM_MSR_RET_UNSUPPORTED (the row stays in the table: KVM handles the index
// on every CPU model, and the host may still access it, see PvRead/PvWrite).
struct PvGate {
  uint32_t index;
  Feature feature;
};
constexpr PvGate kPvGates[] = {
    {kMsrKvmWallClock, Feature::kPvClocksource},
    {kMsrKvmSystemTime, Feature::kPvClocksource},
    {kMsrKvmWallClockNew, Feature::kPvClocksource2},
    {kMsrKvmSystemTimeNew, Feature::kPvClocksource2},
    {kMsrKvmAsyncPfEn, Feature::kPvAsyncPf},
    {kMsrKvmStealTime, Feature::kPvSteal},
    {kMsrKvmPvEoiEn, Feature::kPvEoi},
    {kMsrKvmPollControl, Feature::kPvPollControl},
    {kMsrKvmAsyncPfInt, Feature::kPvAsyncPfInt},
    {kMsrKvmAsyncPfAck, Feature::kPvAsyncPfInt},
    {kMsrKvmMigrationControl, Feature::kPvMigrationControl},
};
constexpr uint32_t kAbsent = kCheckReadOnly | kCheckWriteOnly;

MsrRow ResolveKvmPvRow(const MsrRow& row, const CpuProfile& profile) {
  MsrRow r = row;
  for (const PvGate& g : kPvGates) {
    if (g.index == row.index && !profile.HasPv(g.feature)) r.checks |= kAbsent;
  }
  return r;
}

bool Absent(const TableEntry& e) { return (e.row.checks & kAbsent) == kAbsent; }

// Every PV row's read: an absent MSR is KVM_MSR_RET_UNSUPPORTED, except that the host may read
// an advertised one (0); otherwise the generic read (the row's state).
MsrResult PvRead(TableHandler& t, const TableEntry& e, uint32_t index, ExitContext& ctx) {
  if (Absent(e)) {
    if (ctx.host_initiated() && Advertised(index)) return MsrResult::Ok(0);
    return MsrResult::Unsupported();
  }
  return t.GenericRead(e, index, ctx);
}

// Every PV row's write: the same gate (the host may write 0 to an advertised MSR,
// kvm_do_msr_access), then the row's rule `W`, or the generic write (reserved_mask, store).
template <MsrWriteHook W = nullptr>
MsrResult PvWrite(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                  ExitContext& ctx) {
  if (Absent(e)) {
    if (ctx.host_initiated() && value == 0 && Advertised(index)) return MsrResult::Ok();
    return MsrResult::Unsupported();
  }
  if constexpr (W != nullptr) {
    return W(t, e, index, value, ctx);
  } else {
    return t.GenericWrite(e, index, value, ctx);
  }
}

// kvm_write_wall_clock: version protocol around {version, sec, nsec} of guest boot.
void WriteWallClock(uint64_t gpa, ExitContext& ctx) {
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
void WriteTimeInfo(TableHandler& t, uint64_t gpa, ExitContext& ctx) {
  if ((gpa & (kPageSize - 1)) + kPvclockTimeInfoSize > kPageSize) return;
  std::array<uint8_t, kPvclockTimeInfoSize> info{};
  if (!ctx.ReadGuest(gpa, info.data(), info.size())) return;
  const uint32_t version = (GetLe32(&info[0]) + 1) | 1;
  const uint8_t guest_flags = info[29];
  uint8_t flags = guest_flags & kPvclockGuestStopped;
  if (t.profile().Has(Feature::kPvClocksourceStable) && t.State(kBootOldKvmclock, ctx) == 0) {
    flags |= kPvclockTscStableBit;
  }
  const PvclockScale scale = ModelPvclockScale();

  uint8_t raw[4];
  PutLe32(raw, version);
  if (!ctx.WriteGuest(gpa, raw, sizeof(raw))) return;
  info.fill(0);
  PutLe32(&info[0], version);
  PutLe64(&info[8], ctx.exit().host_tsc + t.State(kOffset, ctx));
  PutLe64(&info[16], KvmclockNs(ctx));
  PutLe32(&info[24], scale.mul);
  info[28] = static_cast<uint8_t>(scale.shift);
  info[29] = flags;
  if (!ctx.WriteGuest(gpa, info.data(), info.size())) return;
  PutLe32(raw, version + 1);
  ctx.WriteGuest(gpa, raw, sizeof(raw));
}

MsrResult WallClockWrite(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                         ExitContext& ctx) {
  const MsrResult r = t.GenericWrite(e, index, value, ctx);  // Stores the GPA (VM-wide).
  WriteWallClock(value, ctx);
  return r;
}

MsrResult SystemTimeWrite(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                          ExitContext& ctx) {
  if (ctx.vcpu_id() == 0 && !ctx.host_initiated()) {
    t.State(kBootOldKvmclock, ctx) = index == kMsrKvmSystemTime ? 1 : 0;
  }
  const MsrResult r = t.GenericWrite(e, index, value, ctx);
  if ((value & kMsrEnabled) != 0) WriteTimeInfo(t, value & ~kMsrEnabled, ctx);
  return r;
}

// kvm_pv_enable_async_pf: reserved bits, the delivery bits' features, a backed u64 when enabled
// with interrupt delivery (kvm_gfn_to_hva_cache_init).
MsrResult AsyncPfEnWrite(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                         ExitContext& ctx) {
  if ((value & e.row.reserved_mask) != 0) return MsrResult::Gp();
  if ((value & kAsyncPfDeliveryAsPfVmexit) != 0 && !t.profile().HasPv(Feature::kPvAsyncPfVmexit)) {
    return MsrResult::Gp();
  }
  if ((value & kAsyncPfDeliveryAsInt) != 0 && !t.profile().HasPv(Feature::kPvAsyncPfInt)) {
    return MsrResult::Gp();
  }
  const uint64_t enabled = kMsrEnabled | kAsyncPfDeliveryAsInt;
  uint64_t probe;
  if ((value & enabled) == enabled && !ctx.ReadGuest(value & ~0x3full, &probe, sizeof(probe))) {
    return MsrResult::Gp();
  }
  return t.GenericWrite(e, index, value, ctx);
}

// kvm_lapic_set_pv_eoi: a 4-byte aligned address (reserved_mask bit 1), a backed byte when
// enabled.
MsrResult PvEoiWrite(TableHandler& t, const TableEntry& e, uint32_t index, uint64_t value,
                     ExitContext& ctx) {
  if ((value & e.row.reserved_mask) != 0) return MsrResult::Gp();
  uint8_t probe;
  if ((value & kMsrEnabled) != 0 && !ctx.ReadGuest(value & ~kMsrEnabled, &probe, sizeof(probe))) {
    return MsrResult::Gp();
  }
  return t.GenericWrite(e, index, value, ctx);
}

MsrRowBuilder Pv(uint32_t index, const char* name, const char* state) {
  return MsrRowBuilder(index, name, kFamily).State(state);
}

const std::vector<MsrRow>& Rows() {
  static const auto* rows = new std::vector<MsrRow>{
      Pv(kMsrKvmWallClock, "MSR_KVM_WALL_CLOCK", kKvmWallClockSlot)
          .Checks(kMem)
          .Scope(MsrScope::kVm)
          .OnRead(&PvRead)
          .OnWrite(&PvWrite<&WallClockWrite>)
          .Note("KVM_FEATURE_CLOCKSOURCE. Stores the GPA (VM-wide) and writes pvclock_wall_clock "
                "there (version odd, {version, sec, nsec} of guest boot, version even); reads the "
                "GPA. The memory written depends on time (x86.c kvm_write_wall_clock)"),
      Pv(kMsrKvmSystemTime, "MSR_KVM_SYSTEM_TIME", kKvmSystemTimeSlot)
          .Checks(kMem)
          .OnRead(&PvRead)
          .OnWrite(&PvWrite<&SystemTimeWrite>)
          .Note("KVM_FEATURE_CLOCKSOURCE. Stores the value; bit 0 enables pvclock_vcpu_time_info "
                "at value & ~1 (written with the version protocol); on vCPU 0 it disables the "
                "master clock (no TSC_STABLE flag). Reads return the value; the memory written "
                "depends on time (x86.c kvm_write_system_time, kvm_setup_guest_pvclock)"),
      Pv(kMsrKvmWallClockNew, "MSR_KVM_WALL_CLOCK_NEW", kKvmWallClockSlot)
          .Checks(kMem)
          .Scope(MsrScope::kVm)
          .OnRead(&PvRead)
          .OnWrite(&PvWrite<&WallClockWrite>)
          .Note("KVM_FEATURE_CLOCKSOURCE2. Same as MSR_KVM_WALL_CLOCK (msr.rst)"),
      Pv(kMsrKvmSystemTimeNew, "MSR_KVM_SYSTEM_TIME_NEW", kKvmSystemTimeSlot)
          .Checks(kMem)
          .OnRead(&PvRead)
          .OnWrite(&PvWrite<&SystemTimeWrite>)
          .Note("KVM_FEATURE_CLOCKSOURCE2. Same as MSR_KVM_SYSTEM_TIME; flags carry "
                "PVCLOCK_TSC_STABLE_BIT with the stable-clocksource feature (msr.rst)"),
      Pv(kMsrKvmAsyncPfEn, "MSR_KVM_ASYNC_PF_EN", "MSR_KVM_ASYNC_PF_EN")
          .Checks(kCheckValueRules)
          .Reserved(kAsyncPfReserved)
          .OnRead(&PvRead)
          .OnWrite(&PvWrite<&AsyncPfEnWrite>)
          .Note("KVM_FEATURE_ASYNC_PF. Bits 5:4 #GP; bit 2 needs ASYNC_PF_VMEXIT, bit 3 "
                "ASYNC_PF_INT; enabled with bits 0|3 needs a backed u64 at value & ~0x3f (x86.c "
                "kvm_pv_enable_async_pf)"),
      Pv(kMsrKvmStealTime, "MSR_KVM_STEAL_TIME", "MSR_KVM_STEAL_TIME")
          .Checks(kCheckValueRules)
          .Reserved(kStealReserved)
          .OnRead(&PvRead)
          .OnWrite(&PvWrite<>)
          .Note("KVM_FEATURE_STEAL_TIME. Bits 5:1 #GP (KVM_STEAL_RESERVED_MASK); stored (msrs.c)"),
      Pv(kMsrKvmPvEoiEn, "MSR_KVM_PV_EOI_EN", "MSR_KVM_PV_EOI_EN")
          .Checks(kCheckValueRules)
          .Reserved(0x2)
          .OnRead(&PvRead)
          .OnWrite(&PvWrite<&PvEoiWrite>)
          .Note("KVM_FEATURE_PV_EOI. Address must be 4-byte aligned; enabled needs a backed byte "
                "(lapic.c kvm_lapic_set_pv_eoi)"),
      Pv(kMsrKvmPollControl, "MSR_KVM_POLL_CONTROL", "MSR_KVM_POLL_CONTROL")
          .Checks(kCheckValueRules)
          .Reset(1)
          .Reserved(~1ull)
          .OnRead(&PvRead)
          .OnWrite(&PvWrite<>)
          .Note("KVM_FEATURE_POLL_CONTROL. Only bit 0; reset 1 (msrs.c; x86.c "
                "kvm_arch_vcpu_postcreate)"),
      Pv(kMsrKvmAsyncPfInt, "MSR_KVM_ASYNC_PF_INT", "MSR_KVM_ASYNC_PF_INT")
          .Checks(kCheckValueRules)
          .Reserved(~0xffull)
          .OnRead(&PvRead)
          .OnWrite(&PvWrite<>)
          .Note("KVM_FEATURE_ASYNC_PF_INT. Bits 63:8 #GP; bits 7:0 the vector "
                "(x86.c kvm_pv_enable_async_pf_int)"),
      Pv(kMsrKvmAsyncPfAck, "MSR_KVM_ASYNC_PF_ACK", nullptr)
          .Checks(kCheckValueRules)
          .Scope(MsrScope::kNone)
          .OnRead(&PvRead)
          .OnWrite(&PvWrite<>)
          .Note("KVM_FEATURE_ASYNC_PF_INT. Any value accepted (bit 0 acks page-ready); reads 0 "
                "(msrs.c)"),
      Pv(kMsrKvmMigrationControl, "MSR_KVM_MIGRATION_CONTROL", "MSR_KVM_MIGRATION_CONTROL")
          .Checks(kCheckValueRules)
          .Reserved(~kMigrationReady)
          .Scope(MsrScope::kVm)
          .OnRead(&PvRead)
          .OnWrite(&PvWrite<>)
          .Note("KVM_FEATURE_MIGRATION_CONTROL. Forwarded by KVM to the VMM; modelled as bit 0 "
                "(KVM_MIGRATION_READY) only, VM-wide (kvm_para.h)"),
  };
  return *rows;
}

absl::Span<const MsrRow> KvmPvRows() { return absl::MakeConstSpan(Rows()); }

absl::Status InstallKvmPv(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(
      controller,
      std::make_unique<TableHandler>(controller.layout(), profile,
                                     RowsToInstall(KvmPvFamily(), profile), nullptr, kPvState));
}

}  // namespace

const MsrFamilyDef& KvmPvFamily() {
  static constexpr MsrFamilyDef kDef = {kFamily, &KvmPvRows, &ResolveKvmPvRow, &InstallKvmPv};
  return kDef;
}

}  // namespace msrtrace
