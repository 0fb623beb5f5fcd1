// What a handler set declares about its MSRs in a form the harness can check without knowing
// the handlers: one DeclaredRow per MSR (or range), filled in while the set is installed
// (Controller::DeclareRow). The fuzzer's table-conformance oracle (fuzz/oracles.h) and the
// generated property tests check every exit against the row of its index, so a handler set that
// declares rows gets those checks for free. The reference set declares one row per MSR table row
// (handlers/msr_table.h) for the machine's CPU profile; a team's set declares its own.
//
// Each flag is a rule the oracle verifies on guest RDMSR/WRMSR exits (docs/fuzzing.md):
//   reserved_mask     a guest WRMSR with any of these bits set does not retire (#GP);
//   kRowCanonical     a guest WRMSR of a value not canonical at `canonical_bits` does not retire;
//   kRowLockBit0      once a guest WRMSR with bit 0 set retired, later guest WRMSRs of that
//                     vCPU do not retire (until reset);
//   kRowReadOnly      a guest WRMSR never retires;
//   kRowWriteOnly     a guest RDMSR never retires;
//   kRowHostOnlyWrite a guest WRMSR never retires unless kRowWritesIgnored (dropped, retired);
//   kRowWritesIgnored a retired guest WRMSR changes nothing (reserved bits are not checked);
//   kRowResetValue    the first guest RDMSR of the BSP after reset, before any write retired
//                     anywhere in the VM, returns `reset`;
//   read_only_mask    a retired guest WRMSR leaves these bits as they were (#GP or ignored);
//   kRowPerVcpu       the state is per vCPU: a write on one vCPU does not change what another
//                     reads (the vCPU-isolation rule).
#ifndef MSRTRACE_HARNESS_DECLARED_ROWS_H_
#define MSRTRACE_HARNESS_DECLARED_ROWS_H_

#include <cstdint>

namespace msrtrace {

enum DeclaredRowFlag : uint32_t {
  kRowCanonical = 1u << 0,
  kRowLockBit0 = 1u << 1,
  kRowReadOnly = 1u << 2,
  kRowWriteOnly = 1u << 3,
  kRowHostOnlyWrite = 1u << 4,
  kRowWritesIgnored = 1u << 5,
  kRowResetValue = 1u << 6,
  kRowPerVcpu = 1u << 7,
  kRowVolatile = 1u << 8,  // Reads depend on time: no value rules apply to reads.
};

struct DeclaredRow {
  uint32_t first = 0;
  uint32_t last = 0;  // Inclusive; == first for a single MSR.
  uint64_t reset = 0;
  uint64_t reserved_mask = 0;
  uint64_t read_only_mask = 0;
  uint32_t flags = 0;  // DeclaredRowFlag bits.
  uint8_t canonical_bits = 48;
};

// True when `value` is canonical for an address width of `bits` (48 or 57).
inline bool IsCanonicalAt(uint64_t value, int bits) {
  const int shift = 64 - bits;
  return static_cast<uint64_t>(static_cast<int64_t>(value << shift) >> shift) == value;
}

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_DECLARED_ROWS_H_
