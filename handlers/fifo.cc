#include "handlers/fifo.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_format.h"

namespace msrtrace {
namespace {

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLe(absl::string_view in, size_t offset, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<uint8_t>(in[offset + i])) << (8 * i);
  }
  return v;
}

}  // namespace

FifoMsr::FifoMsr() : ring_(kFifoMaxDepth, 0) {}

absl::StatusOr<MsrResult> FifoMsr::Read(uint32_t index, ExitContext& /*ctx*/) {
  if (size_ == 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("FIFO device at %#x is empty (read before any write)", index));
  }
  const uint64_t v = ring_[head_];
  head_ = (head_ + 1) % kFifoMaxDepth;
  --size_;
  return MsrResult::Ok(v);
}

absl::StatusOr<MsrResult> FifoMsr::Write(uint32_t /*index*/, uint64_t value, ExitContext& /*ctx*/) {
  if (size_ == kFifoMaxDepth) return MsrResult::Gp();
  ring_[(head_ + size_) % kFifoMaxDepth] = value;
  ++size_;
  return MsrResult::Ok();
}

absl::string_view FifoMsr::MsrName(uint32_t /*index*/) const { return "FIFO_DEVICE"; }

void FifoMsr::SaveState(std::string* out) const {
  out->clear();
  out->reserve(4 + 8 * size_);
  PutLe(out, size_, 4);
  for (size_t i = 0; i < size_; ++i) PutLe(out, ring_[(head_ + i) % kFifoMaxDepth], 8);
}

absl::Status FifoMsr::RestoreState(absl::string_view in) {
  if (in.empty()) {
    head_ = size_ = 0;
    return absl::OkStatus();
  }
  if (in.size() < 4) {
    return absl::InvalidArgumentError(
        absl::StrFormat("FIFO state: truncated count at byte offset 0 (%u of 4 bytes)", in.size()));
  }
  const uint64_t count = GetLe(in, 0, 4);
  if (count > kFifoMaxDepth) {
    return absl::InvalidArgumentError(
        absl::StrFormat("FIFO state: count %u at byte offset 0 exceeds the maximum depth %u", count,
                        kFifoMaxDepth));
  }
  if (in.size() != 4 + 8 * count) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "FIFO state: %u values need %u bytes, got %u (mismatch at byte offset %u)", count,
        4 + 8 * count, in.size(), std::min<size_t>(in.size(), 4 + 8 * count)));
  }
  for (size_t i = 0; i < count; ++i) ring_[i] = GetLe(in, 4 + 8 * i, 8);
  head_ = 0;
  size_ = count;
  return absl::OkStatus();
}

absl::Status InstallFifo(Controller& controller, uint32_t index) {
  if (!controller.Insert(index, std::make_unique<FifoMsr>())) {
    return absl::AlreadyExistsError(
        absl::StrFormat("cannot install the FIFO device at %#x: the index has a handler", index));
  }
  return absl::OkStatus();
}

}  // namespace msrtrace
