// A VM exit as the controller sees it: the exit reason, the instruction length the CPU
// reported, and the environment inputs a handler may depend on. With these recorded, every
// handler is a deterministic function of (state, exit).
#ifndef MSRTRACE_HARNESS_EXIT_H_
#define MSRTRACE_HARNESS_EXIT_H_

#include <cstdint>

#include "absl/types/optional.h"

namespace msrtrace {

enum class Vendor : uint8_t {
  kUnspecified = 0,
  kIntelVmx = 1,
  kAmdSvm = 2,
};
const char* VendorName(Vendor v);

// Basic exit reasons (ref: SDM Vol3 Appendix C; AMD APM Vol2 Appendix C).
inline constexpr uint32_t kVmxExitRdmsr = 31;
inline constexpr uint32_t kVmxExitWrmsr = 32;
inline constexpr uint32_t kSvmExitMsr = 0x7c;  // EXITINFO1: 0 = RDMSR, 1 = WRMSR.

enum class Access : uint8_t { kRead = 0, kWrite = 1 };
inline const char* AccessName(Access a) { return a == Access::kRead ? "rdmsr" : "wrmsr"; }

struct Exit {
  Vendor vendor = Vendor::kIntelVmx;
  // VMX: the basic exit reason (bits 15:0 of the exit-reason field). SVM: the exit code.
  uint32_t reason = kVmxExitRdmsr;
  // SVM EXITINFO1 (0 = read, 1 = write). VMX: the exit qualification (0 for RDMSR/WRMSR).
  uint64_t info1 = 0;
  // VM-exit instruction length as the CPU reported it. Never assumed: 2 for the legacy
  // encodings, longer with prefixes or the immediate forms.
  uint8_t instruction_length = 2;
  // Environment inputs: host TSC at the exit and host wall-clock time (ns since the epoch).
  uint64_t host_tsc = 0;
  uint64_t host_wall_ns = 0;

  static Exit Rdmsr(uint8_t len = 2) { return Exit{Vendor::kIntelVmx, kVmxExitRdmsr, 0, len}; }
  static Exit Wrmsr(uint8_t len = 2) { return Exit{Vendor::kIntelVmx, kVmxExitWrmsr, 0, len}; }
  static Exit SvmMsr(Access a, uint8_t len = 2) {
    return Exit{Vendor::kAmdSvm, kSvmExitMsr, a == Access::kWrite ? 1u : 0u, len};
  }
};

// The MSR access an exit stands for, or nullopt when the exit is not an MSR exit (so a chain
// of controllers can try the next one). Inline: every exit asks.
inline absl::optional<Access> MsrAccessOf(const Exit& exit) {
  switch (exit.vendor) {
    case Vendor::kIntelVmx:
      if (exit.reason == kVmxExitRdmsr) return Access::kRead;
      if (exit.reason == kVmxExitWrmsr) return Access::kWrite;
      return absl::nullopt;
    case Vendor::kAmdSvm:
      if (exit.reason != kSvmExitMsr) return absl::nullopt;
      if (exit.info1 == 0) return Access::kRead;
      if (exit.info1 == 1) return Access::kWrite;
      return absl::nullopt;
    case Vendor::kUnspecified:
      break;
  }
  return absl::nullopt;
}

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_EXIT_H_
