// Stub handlers for tests of the layers that must not depend on the reference handler set
// (controller routing, the KVM adapter, the importer). Header-only; tests only.
#ifndef MSRTRACE_HARNESS_CORE_TEST_HANDLERS_H_
#define MSRTRACE_HARNESS_CORE_TEST_HANDLERS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "harness/core/msr_handler.h"

namespace msrtrace {
namespace testing_util {

// A plain 64-bit register in a slot (per vCPU or VM-wide, as the slot was reserved) whose
// writes fault (#GP) when bit 63 is set: stands in for a real handler family.
class RegisterMsr : public MsrHandler {
 public:
  explicit RegisterMsr(SlotId slot) : slot_(slot) {}
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext& ctx) override {
    return MsrResult::Ok(ctx.slot(slot_));
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t value, ExitContext& ctx) override {
    if ((value >> 63) != 0) return MsrResult::Gp();
    ctx.slot(slot_) = value;
    return MsrResult::Ok();
  }

 private:
  SlotId slot_;
};

}  // namespace testing_util
}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_CORE_TEST_HANDLERS_H_
