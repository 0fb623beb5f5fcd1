// Plugging a team's own MSR handler into the controller beside the reference set.
//
//   $ ./custom_handlers
//
// Installs the KVM reference handlers for the default CPU profile, adds a counter MSR of our own
// at 0x4f000000, and runs a few guest RDMSR/WRMSR exits through Controller::Handle.
#include <cstdint>
#include <cstdio>
#include <memory>

#include "absl/strings/str_format.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"
#include "harness/core/controller.h"

namespace {

// Our device: counts writes; reads return the count. State lives in a per-vCPU slot, so
// snapshots, digests and replay cover it with no extra code.
class WriteCounterMsr : public msrtrace::MsrHandler {
 public:
  explicit WriteCounterMsr(msrtrace::StateLayout& layout)
      : slot_(layout.AddVcpuSlot("ACME_WRITE_COUNTER")) {}
  absl::StatusOr<msrtrace::MsrResult> Read(uint32_t, msrtrace::ExitContext& ctx) override {
    return msrtrace::MsrResult::Ok(ctx.slot(slot_));
  }
  absl::StatusOr<msrtrace::MsrResult> Write(uint32_t, uint64_t value,
                                            msrtrace::ExitContext& ctx) override {
    if (value != 1) return msrtrace::MsrResult::Gp();  // Only "increment" is a valid command.
    ++ctx.slot(slot_);
    return msrtrace::MsrResult::Ok();
  }
  absl::string_view MsrName(uint32_t) const override { return "ACME_WRITE_COUNTER"; }

 private:
  msrtrace::SlotId slot_;
};

constexpr uint32_t kAcmeCounter = 0x4f000000;

}  // namespace

int main() {
  using namespace msrtrace;  // NOLINT: example brevity.
  Controller ctl;
  // 1. The reference set, then 2. our handler (Insert refuses an index that is taken).
  if (absl::Status s = InstallReferenceHandlers(ctl, DefaultProfile()); !s.ok()) {
    std::fprintf(stderr, "install: %s\n", static_cast<std::string>(s.message()).c_str());
    return 1;
  }
  if (!ctl.Insert(kAcmeCounter, std::make_unique<WriteCounterMsr>(ctl.layout()))) {
    std::fprintf(stderr, "index %#x is taken\n", kAcmeCounter);
    return 1;
  }
  // 3. A vCPU (after every handler is installed) and guest memory.
  Vcpu vcpu = ctl.CreateVcpu(0);
  SparseMemory memory;

  struct Step {
    Access access;
    uint32_t index;
    uint64_t value;
  };
  const Step steps[] = {
      {Access::kWrite, kAcmeCounter, 1}, {Access::kWrite, kAcmeCounter, 1},
      {Access::kRead, kAcmeCounter, 0},  {Access::kWrite, kAcmeCounter, 7},
      {Access::kRead, 0x277, 0},         {Access::kWrite, 0x277, 0x0202020202020202},
  };
  for (const Step& s : steps) {
    vcpu.regs.reg(Gpr::kRcx) = s.index;
    vcpu.regs.reg(Gpr::kRax) = s.value & 0xffffffff;
    vcpu.regs.reg(Gpr::kRdx) = s.value >> 32;
    vcpu.regs.pending = PendingException();
    const Exit exit = s.access == Access::kRead ? Exit::Rdmsr() : Exit::Wrmsr();
    absl::StatusOr<Outcome> out = ctl.Handle(exit, vcpu, memory);
    if (!out.ok()) {
      std::fprintf(stderr, "exit failed: %s\n",
                   static_cast<std::string>(out.status().message()).c_str());
      return 1;
    }
    std::printf("%s\n", absl::StrFormat("%-5s %-18s value %#018x -> %-7s rip %#x",
                                        AccessName(s.access), ctl.MsrName(s.index), out->value,
                                        OutcomeKindName(out->kind), vcpu.regs.rip)
                            .c_str());
  }
  return 0;
}
