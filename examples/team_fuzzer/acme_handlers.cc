// A team's own handler library, as msrtrace_add_fuzzer expects it: it registers a named handler
// set (the reference set plus ACME's counter MSR) from a static initializer. Traces recorded with
// the set name it, and the fuzzer and CLI built by msrtrace_add_fuzzer look it up by name.
// docs/teams.md walks through this file, its CMake lines and the commands that use it.
#include <cstdint>
#include <memory>

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

absl::Status InstallAcme(msrtrace::Controller& controller, const msrtrace::CpuProfile& profile) {
  RETURN_IF_ERROR(msrtrace::InstallReferenceHandlers(controller, profile));
  if (!controller.Insert(kAcmeCounter, std::make_unique<WriteCounterMsr>(controller.layout()))) {
    return absl::AlreadyExistsError("ACME counter index is taken");
  }
  return absl::OkStatus();
}

const bool kRegistered = msrtrace::RegisterHandlerSet(
    {"acme-vmm", "Example: the reference set plus ACME's counter MSR", &InstallAcme});

}  // namespace
}  // namespace acme
