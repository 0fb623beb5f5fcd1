// The one pseudo-random generator of msrtrace: SplitMix64 (Steele, Lea, Flood, "Fast splittable
// pseudorandom number generators", OOPSLA 2014). Tiny, fast and fully specified, so a seed gives
// the same numbers under every compiler and standard library (<random>'s distributions are
// implementation-defined). Used by the fuzz mutator, the fuzz seeds and the guest workloads;
// golden traces depend on its exact output. Header-only and dependency-free.
#ifndef MSRTRACE_HARNESS_CORE_RNG_H_
#define MSRTRACE_HARNESS_CORE_RNG_H_

#include <cstdint>

namespace msrtrace {

// SplitMix64's output for state `x`: the state advanced by the golden gamma, then mixed. Also a
// good 64-bit hash of `x`.
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The SplitMix64 sequence from `seed`.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    const uint64_t s = state_;
    state_ += 0x9e3779b97f4a7c15ull;
    return SplitMix64(s);
  }
  // Uniform in [0, n) up to modulo bias. REQUIRES: n > 0.
  uint64_t Below(uint64_t n) { return Next() % n; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }

 private:
  uint64_t state_;
};

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_CORE_RNG_H_
