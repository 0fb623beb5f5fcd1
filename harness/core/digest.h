// A stable 64-bit digest (FNV-1a over little-endian encodings) for determinism checks. Stable
// across runs, processes and machines, unlike absl::Hash which is seeded per process.
#ifndef MSRTRACE_HARNESS_DIGEST_H_
#define MSRTRACE_HARNESS_DIGEST_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace msrtrace {

class Digest {
 public:
  Digest& Bytes(const void* data, size_t len) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < len; ++i) {
      h_ ^= p[i];
      h_ *= kPrime;
    }
    return *this;
  }
  Digest& U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h_ ^= static_cast<uint8_t>(v >> (8 * i));
      h_ *= kPrime;
    }
    return *this;
  }
  Digest& Str(absl::string_view s) {
    U64(s.size());
    return Bytes(s.data(), s.size());
  }
  uint64_t value() const { return h_; }

 private:
  static constexpr uint64_t kOffset = 0xcbf29ce484222325ull;
  static constexpr uint64_t kPrime = 0x100000001b3ull;
  uint64_t h_ = kOffset;
};

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_DIGEST_H_
