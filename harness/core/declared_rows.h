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
//   read_only_mask    a guest WRMSR that changes any of these bits (against what the vCPU read
//                     just before) does not retire (#GP), and a retired one leaves them as they
//                     were;
//   ignored_mask      a retired guest WRMSR leaves these bits as they were, whatever was written
//                     (the write is not refused for them: EFER.LMA, MISC_ENABLE.EMON);
//   kRowWritesIgnored also: a retired guest WRMSR leaves every bit as it was (not volatile rows);
//   kRowPerVcpu       the state is per vCPU: a write on one vCPU does not change what another
//                     reads at the row's indices or at its `related` ones (the vCPU-isolation
//                     rule);
//   related           MSRs a write to this row may change on the writing vCPU (TSC ->
//                     TSC_ADJUST, APIC_BASE -> the x2APIC registers, MTRR_DEF_TYPE -> the
//                     MTRRs it enables): vCPU isolation also reads them on the other vCPUs.
// The read-back rules (read_only_mask, ignored_mask, kRowWritesIgnored) read the index on the
// writing vCPU through the engine just before and just after the write; rows whose reads #GP
// (write-only) or depend on time (kRowVolatile) are not read back.
#ifndef MSRTRACE_HARNESS_DECLARED_ROWS_H_
#define MSRTRACE_HARNESS_DECLARED_ROWS_H_

#include <array>
#include <cstdint>

namespace msrtrace {

// An inclusive range of MSR indices.
struct IndexRange {
  uint32_t first = 0;
  uint32_t last = 0;
};

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
  // Writes obey rules beyond the masks (memory types, CPU mode, other MSRs' state): a value
  // clear of reserved and read-only bits may still #GP. Without it, such a value from a valid
  // one retires (the acceptance property of fuzz/row_property_test.cc).
  kRowValueRules = 1u << 9,
};

struct DeclaredRow {
  uint32_t first = 0;
  uint32_t last = 0;  // Inclusive; == first for a single MSR.
  uint64_t reset = 0;
  uint64_t reserved_mask = 0;
  uint64_t read_only_mask = 0;
  uint64_t ignored_mask = 0;
  uint32_t flags = 0;  // DeclaredRowFlag bits.
  uint8_t canonical_bits = 48;
  // Related MSRs (vCPU isolation reads them too); the first num_related entries are used.
  static constexpr int kMaxRelated = 8;
  uint8_t num_related = 0;
  std::array<IndexRange, kMaxRelated> related{};

  // Appends [first, last] to `related`; false (and nothing added) when full or first > last.
  bool AddRelated(uint32_t first, uint32_t last) {
    if (num_related >= kMaxRelated || first > last) return false;
    related[num_related++] = IndexRange{first, last};
    return true;
  }
};

// True when `value` is canonical for an address width of `bits` (48 or 57).
inline bool IsCanonicalAt(uint64_t value, int bits) {
  const int shift = 64 - bits;
  return static_cast<uint64_t>(static_cast<int64_t>(value << shift) >> shift) == value;
}

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_DECLARED_ROWS_H_
