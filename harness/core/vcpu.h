// The vCPU model: the architectural state an MSR exit reads and changes, plus the per-vCPU MSR
// state the handlers keep. Plain data; no protobuf.
#ifndef MSRTRACE_HARNESS_VCPU_H_
#define MSRTRACE_HARNESS_VCPU_H_

#include <array>
#include <cstdint>
#include <vector>

namespace msrtrace {

// General-purpose registers in the order of the x86 ModRM register encoding.
enum class Gpr : uint8_t {
  kRax = 0,
  kRcx,
  kRdx,
  kRbx,
  kRsp,
  kRbp,
  kRsi,
  kRdi,
  kR8,
  kR9,
  kR10,
  kR11,
  kR12,
  kR13,
  kR14,
  kR15,
};
inline constexpr int kNumGprs = 16;
const char* GprName(Gpr gpr);

// Architectural bits the controller and the handlers look at (ref: SDM Vol3 §2.5, Vol4 §2.1).
inline constexpr uint64_t kRflagsFixed1 = 1ull << 1;  // RFLAGS bit 1 always reads 1.
inline constexpr uint64_t kRflagsTf = 1ull << 8;      // Trap flag: single-step #DB.
inline constexpr uint64_t kRflagsIf = 1ull << 9;
inline constexpr uint64_t kCr0Pe = 1ull << 0;
inline constexpr uint64_t kCr0Pg = 1ull << 31;
inline constexpr uint64_t kCr4Pae = 1ull << 5;
inline constexpr uint64_t kCr4La57 = 1ull << 12;
inline constexpr uint64_t kEferSce = 1ull << 0;
inline constexpr uint64_t kEferLme = 1ull << 8;
inline constexpr uint64_t kEferLma = 1ull << 10;
inline constexpr uint64_t kEferNxe = 1ull << 11;
inline constexpr uint64_t kEferSvme = 1ull << 12;
inline constexpr uint64_t kEferLmsle = 1ull << 13;
inline constexpr uint64_t kEferFfxsr = 1ull << 14;
inline constexpr uint64_t kEferAutoIbrs = 1ull << 21;

// Guest interruptibility state (VMCS encoding, ref: SDM Vol3 §25.4.2).
inline constexpr uint32_t kBlockingBySti = 1u << 0;
inline constexpr uint32_t kBlockingByMovSs = 1u << 1;

// Exception vectors and the DR6 bit a single-step trap sets.
inline constexpr uint8_t kVectorDb = 1;
inline constexpr uint8_t kVectorGp = 13;
inline constexpr uint64_t kDr6Bs = 1ull << 14;

// An exception queued for injection at the next VM entry.
struct PendingException {
  bool valid = false;
  uint8_t vector = 0;
  bool has_error_code = false;
  uint32_t error_code = 0;
  // Exception payload as KVM keeps it: the DR6 bits for #DB, CR2 for #PF, else 0.
  uint64_t payload = 0;

  static PendingException Gp0() { return {true, kVectorGp, true, 0, 0}; }
  static PendingException SingleStep() { return {true, kVectorDb, false, 0, kDr6Bs}; }
  friend bool operator==(const PendingException& a, const PendingException& b) {
    return a.valid == b.valid && a.vector == b.vector && a.has_error_code == b.has_error_code &&
           a.error_code == b.error_code && a.payload == b.payload;
  }
  friend bool operator!=(const PendingException& a, const PendingException& b) { return !(a == b); }
};

// Register state of one vCPU at a VM exit. RSP/RIP/RFLAGS live in the VMCS on real hardware;
// here they are plain fields.
struct VcpuRegs {
  std::array<uint64_t, kNumGprs> gpr{};
  uint64_t rip = 0xfff0;
  uint64_t rflags = kRflagsFixed1;
  uint64_t cr0 = 0x60000010;  // Architectural reset value (CD|NW|ET).
  uint64_t cr4 = 0;
  // EFER is both a control register and an MSR. The EFER handler reads and writes this field,
  // so the mode bits the controller uses are always the MSR's value.
  uint64_t efer = 0;
  bool cs_l = false;  // CS.L: together with EFER.LMA selects 64-bit mode.
  uint32_t interruptibility = 0;
  PendingException pending;

  uint64_t& reg(Gpr r) { return gpr[static_cast<int>(r)]; }
  uint64_t reg(Gpr r) const { return gpr[static_cast<int>(r)]; }
  bool long_mode_active() const { return (efer & kEferLma) != 0; }
  // 64-bit mode: IA-32e mode active and CS.L set (ref: SDM Vol3 §2.2). Compatibility mode and
  // legacy modes wrap RIP at 32 bits.
  bool in_64bit_mode() const { return long_mode_active() && cs_l; }
  bool paging() const { return (cr0 & kCr0Pg) != 0; }

  friend bool operator==(const VcpuRegs& a, const VcpuRegs& b) {
    return a.gpr == b.gpr && a.rip == b.rip && a.rflags == b.rflags && a.cr0 == b.cr0 &&
           a.cr4 == b.cr4 && a.efer == b.efer && a.cs_l == b.cs_l &&
           a.interruptibility == b.interruptibility && a.pending == b.pending;
  }
  friend bool operator!=(const VcpuRegs& a, const VcpuRegs& b) { return !(a == b); }
};

// One vCPU: its registers and its per-vCPU MSR state. The MSR state is a flat array of 64-bit
// slots whose meaning the handlers define through StateLayout (msr_handler.h); the controller
// sizes it in Controller::CreateVcpu.
struct Vcpu {
  uint32_t id = 0;
  VcpuRegs regs;
  std::vector<uint64_t> slots;
};

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_VCPU_H_
