// The seed's example device (KeOS kev-project1 `StackMsr`, registered at 0xabc): WRMSR pushes
// the value, RDMSR pops the oldest one (a FIFO, despite the seed's name).
//
// Differences from the seed, all deliberate:
//   * Reading an empty FIFO is a VMM error, as in the seed (absl::FailedPreconditionError, the
//     seed's ControllerError("Empty stack")), not a guest #GP.
//   * The FIFO holds at most kFifoMaxDepth values. A write to a full FIFO injects #GP and
//     leaves the FIFO unchanged (the seed grows without bound; a bounded device keeps memory
//     bounded under fuzzing).
//   * The queue is VM-wide internal state (one FIFO per handler, as the seed has one object),
//     saved and restored through SaveState/RestoreState.
//
// State encoding (SaveState): u32 little-endian count, then `count` u64 little-endian values,
// oldest first. RestoreState accepts exactly that (or an empty string = empty FIFO) and rejects
// anything else with kInvalidArgument naming the byte offset.
//
// Thread-safety: none (the controller serializes exits).
#ifndef MSRTRACE_HANDLERS_FIFO_H_
#define MSRTRACE_HANDLERS_FIFO_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "harness/core/controller.h"
#include "harness/core/msr_handler.h"

namespace msrtrace {

inline constexpr uint32_t kFifoMsrIndex = 0xabc;
inline constexpr size_t kFifoMaxDepth = 4096;

class FifoMsr : public MsrHandler {
 public:
  FifoMsr();

  absl::StatusOr<MsrResult> Read(uint32_t index, ExitContext& ctx) override;
  absl::StatusOr<MsrResult> Write(uint32_t index, uint64_t value, ExitContext& ctx) override;
  absl::string_view MsrName(uint32_t index) const override;
  void SaveState(std::string* out) const override;
  absl::Status RestoreState(absl::string_view in) override;

  size_t size() const { return size_; }

 private:
  std::vector<uint64_t> ring_;  // Capacity kFifoMaxDepth, allocated once.
  size_t head_ = 0;             // Oldest value.
  size_t size_ = 0;
};

// Adopts a FifoMsr into `controller` and registers it at `index`. Errors: kAlreadyExists.
absl::Status InstallFifo(Controller& controller, uint32_t index = kFifoMsrIndex);

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_FIFO_H_
