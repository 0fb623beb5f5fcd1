// A team's own handler library, as msrtrace_add_fuzzer expects it: it registers a named handler
// set (the reference set plus ACME's counter MSR) from a static initializer. Traces recorded with
// the set name it, and the fuzzer and CLI built by msrtrace_add_fuzzer look it up by name.
// docs/teams.md walks through this file, its CMake lines and the commands that use it.
//
// One intended deviation from KVM, declared in acme.allowlist for the differential fuzzer:
// guest writes to IA32_BIOS_SIGN_ID #GP (ACME has no microcode-update path) where KVM drops them.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "handlers/cpu_profile.h"
#include "handlers/handler_set.h"
#include "handlers/msr_table.h"
#include "harness/core/controller.h"
#include "harness/core/msr_handler.h"
#include "harness/core/status_macros.h"

namespace acme {
namespace {

constexpr uint32_t kAcmeCounter = 0x4f000000;

// Counts "increment" commands (WRMSR of 1); reads return the count. Other values #GP, and
// nothing changes before the check (fault atomicity).
class WriteCounterMsr : public msrtrace::MsrHandler {
 public:
  explicit WriteCounterMsr(msrtrace::StateLayout& layout)
      : slot_(layout.AddVcpuSlot("ACME_WRITE_COUNTER")) {}
  absl::StatusOr<msrtrace::MsrResult> Read(uint32_t, msrtrace::ExitContext& ctx) override {
    return msrtrace::MsrResult::Ok(ctx.slot(slot_));
  }
  absl::StatusOr<msrtrace::MsrResult> Write(uint32_t, uint64_t value,
                                            msrtrace::ExitContext& ctx) override {
#ifdef ACME_PLANTED_BUG
    // Deliberately wrong (examples/team_fuzzer's planted-bug ctest only): rejects 0 and 64-bit
    // values up front, counts, and only then rejects the other 32-bit values, so WRMSR of e.g.
    // 0x800 #GPs after the count moved (a fault-atomicity bug). The default seeds never write
    // such a value here; the fuzzer gets there by aiming other writes at this index.
    if (value == 0 || (value >> 32) != 0) return msrtrace::MsrResult::Gp();
    ++ctx.slot(slot_);
    if (value != 1) return msrtrace::MsrResult::Gp();
    return msrtrace::MsrResult::Ok();
#else
    if (value != 1) return msrtrace::MsrResult::Gp();
    ++ctx.slot(slot_);
    return msrtrace::MsrResult::Ok();
#endif
  }
  absl::string_view MsrName(uint32_t) const override { return "ACME_WRITE_COUNTER"; }

 private:
  msrtrace::SlotId slot_;
};

constexpr uint32_t kBiosSignId = 0x8b;

// A reference handler with ACME's own behaviour on top: the base of the intended deviation and
// of the planted ones below. `inner` is the reference handler it replaced (the controller owns
// both).
class OverrideMsr : public msrtrace::MsrHandler {
 public:
  explicit OverrideMsr(msrtrace::MsrHandler* inner) : inner_(inner) {}
  absl::StatusOr<msrtrace::MsrResult> Read(uint32_t index, msrtrace::ExitContext& ctx) override {
    return inner_->Read(index, ctx);
  }
  absl::StatusOr<msrtrace::MsrResult> Write(uint32_t index, uint64_t value,
                                            msrtrace::ExitContext& ctx) override {
    return inner_->Write(index, value, ctx);
  }
  absl::string_view MsrName(uint32_t index) const override { return inner_->MsrName(index); }

 protected:
  msrtrace::MsrHandler* inner_;
};

// IA32_BIOS_SIGN_ID: guest writes #GP (KVM drops them); host writes and reads as the reference.
class NoMicrocodeUpdateMsr : public OverrideMsr {
 public:
  using OverrideMsr::OverrideMsr;
  absl::StatusOr<msrtrace::MsrResult> Write(uint32_t index, uint64_t value,
                                            msrtrace::ExitContext& ctx) override {
    if (!ctx.host_initiated()) return msrtrace::MsrResult::Gp();
    return inner_->Write(index, value, ctx);
  }
};

// Puts `handler` (adopted) in place of the reference handler at `index`; `make` builds it around
// the replaced one.
template <typename Make>
absl::Status Override(msrtrace::Controller& controller, uint32_t index, Make make) {
  msrtrace::MsrHandler* inner = controller.Find(index);
  if (inner == nullptr) return absl::NotFoundError("no reference handler to override");
  msrtrace::MsrHandler* h = controller.Adopt(make(inner));
  controller.Replace(index, h);
  return absl::OkStatus();
}

#ifdef ACME_PLANTED_DEVIATIONS
// Deliberate semantic deviations from KVM, for the differential self-test only
// (examples/team_fuzzer/diff_test.sh); the ACME_DEVIATION environment variable picks one:
//   write-accepted          IA32_MTRR_DEF_TYPE: writes KVM rejects retire (and are dropped).
//   reserved-unchecked      MSR_TSC_AUX: reserved bits 63:32 not checked; the low half is stored.
//   wrong-reset-value       IA32_PAT: reads return 0x0007010600070106 while at the reset value.
//   stale-read              MSR_KERNEL_GS_BASE: reads return the value before the last write.
//   vcpu-leak               MSR_STAR: one value for the VM; a write on one vCPU shows on all.
//   related-update-missing  IA32_TIME_STAMP_COUNTER: a guest write leaves IA32_TSC_ADJUST as it
//                           was (KVM adds the same delta to it).
// Each keeps fault atomicity and the architectural rules, so only a comparison with the
// reference sees it.
constexpr uint32_t kMtrrDefType = 0x2ff;
constexpr uint32_t kTscAux = 0xc0000103;
constexpr uint32_t kPat = 0x277;
constexpr uint64_t kPatReset = 0x0007040600070406ull;
constexpr uint32_t kKernelGsBase = 0xc0000102;
constexpr uint32_t kStar = 0xc0000081;
constexpr uint32_t kTsc = 0x10;

class WriteAcceptedMsr : public OverrideMsr {
 public:
  using OverrideMsr::OverrideMsr;
  absl::StatusOr<msrtrace::MsrResult> Write(uint32_t index, uint64_t value,
                                            msrtrace::ExitContext& ctx) override {
    absl::StatusOr<msrtrace::MsrResult> r = inner_->Write(index, value, ctx);
    if (r.ok() && r->kind == msrtrace::MsrResult::Kind::kGp) return msrtrace::MsrResult::Ok();
    return r;
  }
};

class ReservedUncheckedMsr : public OverrideMsr {
 public:
  using OverrideMsr::OverrideMsr;
  absl::StatusOr<msrtrace::MsrResult> Write(uint32_t index, uint64_t value,
                                            msrtrace::ExitContext& ctx) override {
    return inner_->Write(index, value & 0xffffffffull, ctx);
  }
};

class WrongResetMsr : public OverrideMsr {
 public:
  using OverrideMsr::OverrideMsr;
  absl::StatusOr<msrtrace::MsrResult> Read(uint32_t index, msrtrace::ExitContext& ctx) override {
    absl::StatusOr<msrtrace::MsrResult> r = inner_->Read(index, ctx);
    if (r.ok() && r->ok() && r->value == kPatReset) {
      return msrtrace::MsrResult::Ok(0x0007010600070106ull);
    }
    return r;
  }
};

class StaleReadMsr : public OverrideMsr {
 public:
  StaleReadMsr(msrtrace::MsrHandler* inner, msrtrace::SlotId stale)
      : OverrideMsr(inner), stale_(stale) {}
  absl::StatusOr<msrtrace::MsrResult> Read(uint32_t, msrtrace::ExitContext& ctx) override {
    return msrtrace::MsrResult::Ok(ctx.slot(stale_));
  }
  absl::StatusOr<msrtrace::MsrResult> Write(uint32_t index, uint64_t value,
                                            msrtrace::ExitContext& ctx) override {
    absl::StatusOr<msrtrace::MsrResult> old = inner_->Read(index, ctx);
    absl::StatusOr<msrtrace::MsrResult> r = inner_->Write(index, value, ctx);
    if (r.ok() && r->ok() && old.ok()) ctx.slot(stale_) = old->value;
    return r;
  }

 private:
  msrtrace::SlotId stale_;
};

class VcpuLeakMsr : public OverrideMsr {
 public:
  VcpuLeakMsr(msrtrace::MsrHandler* inner, msrtrace::SlotId shared)
      : OverrideMsr(inner), shared_(shared) {}
  absl::StatusOr<msrtrace::MsrResult> Read(uint32_t, msrtrace::ExitContext& ctx) override {
    return msrtrace::MsrResult::Ok(ctx.vm_slot(shared_));
  }
  absl::StatusOr<msrtrace::MsrResult> Write(uint32_t index, uint64_t value,
                                            msrtrace::ExitContext& ctx) override {
    absl::StatusOr<msrtrace::MsrResult> r = inner_->Write(index, value, ctx);
    if (r.ok() && r->ok()) ctx.vm_slot(shared_) = value;
    return r;
  }

 private:
  msrtrace::SlotId shared_;
};

class TscAdjustNotUpdatedMsr : public OverrideMsr {
 public:
  TscAdjustNotUpdatedMsr(msrtrace::MsrHandler* inner, msrtrace::SlotId adjust)
      : OverrideMsr(inner), adjust_(adjust) {}
  absl::StatusOr<msrtrace::MsrResult> Write(uint32_t index, uint64_t value,
                                            msrtrace::ExitContext& ctx) override {
    const uint64_t before = ctx.slot(adjust_);
    absl::StatusOr<msrtrace::MsrResult> r = inner_->Write(index, value, ctx);
    if (index == kTsc && r.ok() && r->ok()) ctx.slot(adjust_) = before;
    return r;
  }

 private:
  msrtrace::SlotId adjust_;
};

absl::Status InstallDeviation(msrtrace::Controller& controller) {
  const char* env = std::getenv("ACME_DEVIATION");
  const absl::string_view name = env != nullptr ? env : "";
  using msrtrace::MsrHandler;
  msrtrace::StateLayout& layout = controller.layout();
  if (name.empty()) return absl::OkStatus();
  if (name == "write-accepted") {
    return Override(controller, kMtrrDefType,
                    [](MsrHandler* in) { return std::make_unique<WriteAcceptedMsr>(in); });
  }
  if (name == "reserved-unchecked") {
    return Override(controller, kTscAux,
                    [](MsrHandler* in) { return std::make_unique<ReservedUncheckedMsr>(in); });
  }
  if (name == "wrong-reset-value") {
    return Override(controller, kPat,
                    [](MsrHandler* in) { return std::make_unique<WrongResetMsr>(in); });
  }
  if (name == "stale-read") {
    const msrtrace::SlotId slot = layout.AddVcpuSlot("ACME_STALE_KERNEL_GS_BASE");
    return Override(controller, kKernelGsBase,
                    [slot](MsrHandler* in) { return std::make_unique<StaleReadMsr>(in, slot); });
  }
  if (name == "vcpu-leak") {
    const msrtrace::SlotId slot = layout.AddVmSlot("ACME_SHARED_STAR");
    return Override(controller, kStar,
                    [slot](MsrHandler* in) { return std::make_unique<VcpuLeakMsr>(in, slot); });
  }
  if (name == "related-update-missing") {
    const int adjust = layout.FindVcpuSlot("IA32_TSC_ADJUST");
    if (adjust < 0) return absl::NotFoundError("no IA32_TSC_ADJUST slot");
    const auto slot = static_cast<msrtrace::SlotId>(adjust);
    return Override(controller, kTsc, [slot](MsrHandler* in) {
      return std::make_unique<TscAdjustNotUpdatedMsr>(in, slot);
    });
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "ACME_DEVIATION='", name,
      "': one of write-accepted, reserved-unchecked, wrong-reset-value, stale-read, vcpu-leak, "
      "related-update-missing"));
}
#endif  // ACME_PLANTED_DEVIATIONS

absl::Status InstallAcme(msrtrace::Controller& controller, const msrtrace::CpuProfile& profile) {
  RETURN_IF_ERROR(msrtrace::InstallReferenceHandlers(controller, profile));
  if (!controller.Insert(kAcmeCounter, std::make_unique<WriteCounterMsr>(controller.layout()))) {
    return absl::AlreadyExistsError("ACME counter index is taken");
  }
  RETURN_IF_ERROR(Override(controller, kBiosSignId, [](msrtrace::MsrHandler* in) {
    return std::make_unique<NoMicrocodeUpdateMsr>(in);
  }));
#ifdef ACME_PLANTED_DEVIATIONS
  RETURN_IF_ERROR(InstallDeviation(controller));
#endif
  return absl::OkStatus();
}

const bool kRegistered = msrtrace::RegisterHandlerSet(
    {"acme-vmm", "Example: the reference set plus ACME's counter MSR", &InstallAcme});

}  // namespace
}  // namespace acme
