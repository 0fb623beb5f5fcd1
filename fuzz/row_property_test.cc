// Property tests over the whole declared table, the controller-level acceptance half of the row
// x profile sweep (handlers/row_sweep.h): for every CPU profile and every row the reference set
// declares (DeclaredRowOf; the sweep first checks that these are Controller::declared_rows(),
// harness/core/declared_rows.h), generated guest exits check that what a row allows retires:
//   - from the reset value, a WRMSR flipping any one bit that is neither reserved nor read-only
//     retires (for a canonical row: when the result is canonical), unless the row declares value
//     rules beyond its masks (kRowValueRules: memory types, CPU mode, other MSRs' state);
//   - a WRMSR that changes an ignored_mask bit retires and the bit reads back unchanged;
//   - on a writes-ignored row every WRMSR retires and the value reads back unchanged;
//   - a canonical row accepts canonical values at the top of both halves;
//   - the handler and the row agree on MAXPHYADDR.
// What a row refuses (reserved, read-only, non-canonical bits, access kinds, lock bit: #GP with
// the state unchanged) is checked once, by handlers/row_conformance_test.cc. The rows' own masks
// drive the tests, so a family added to the table is covered without a test of its own.
// Everything goes through the controller (guest exits and host reads), never through a
// handler's internals, so the tests hold however a family computes its masks.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "fuzz/fuzz_setup.h"
#include "gtest/gtest.h"
#include "handlers/cpu_profile.h"
#include "handlers/row_sweep.h"
#include "harness/core/declared_rows.h"
#include "harness/replay/exit_check.h"
#include "harness/replay/machine.h"

namespace msrtrace {
namespace fuzz {
namespace {

using row_sweep::SweptRow;

class RowPropertyTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<TraceModel> t = ResetTrace("reference");
    ASSERT_TRUE(t.ok()) << t.status();
    trace_ = *t;
    trace_.header.cpu_profile = GetParam();
    absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(trace_.header);
    ASSERT_TRUE(m.ok()) << m.status();
    machine_ = *std::move(m);
  }

  // Runs one guest exit on a fresh copy of the reset BSP (64-bit mode); returns its outcome kind.
  Outcome::Kind Guest(Access access, uint32_t index, uint64_t value) {
    EXPECT_TRUE(machine_->Reset().ok());
    return GuestNoReset(access, index, value).kind;
  }
  // The same on the BSP as it is (after earlier exits of the same test); the whole outcome.
  Outcome GuestNoReset(Access access, uint32_t index, uint64_t value) {
    ExitEvent e = MakeEvent(trace_, access, index, value);
    Vcpu& v = machine_->vcpus.front();
    ApplyEventInputs(e, &v.regs);
    absl::StatusOr<Outcome> o = machine_->controller->Handle(e.exit, v, machine_->memory);
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? *o : Outcome{};
  }
  // What a guest RDMSR returns on the reset BSP in the exit's mode (EFER reads as the exits of
  // these tests set it); the host's read when the guest's #GPs.
  uint64_t GuestBase(uint32_t index) {
    EXPECT_TRUE(machine_->Reset().ok());
    const Outcome o = GuestNoReset(Access::kRead, index, 0);
    return o.kind == Outcome::Kind::kRetired ? o.value : ResetValue(index);
  }
  // Runs one guest WRMSR on a fresh reset BSP, then a guest RDMSR of the index (a host read when
  // that #GPs): the value it reads back (nullopt when the write did not retire).
  absl::optional<uint64_t> WriteThenRead(uint32_t index, uint64_t value) {
    if (Guest(Access::kWrite, index, value) != Outcome::Kind::kRetired) return absl::nullopt;
    const Outcome o = GuestNoReset(Access::kRead, index, 0);
    if (o.kind == Outcome::Kind::kRetired) return o.value;
    absl::StatusOr<uint64_t> v =
        machine_->controller->HostRead(index, machine_->vcpus.front(), machine_->memory);
    return v.ok() ? *v : ~0ull;
  }
  // The value at reset as the host reads it (0 when the host cannot read it).
  uint64_t ResetValue(uint32_t index) {
    EXPECT_TRUE(machine_->Reset().ok());
    absl::StatusOr<uint64_t> v =
        machine_->controller->HostRead(index, machine_->vcpus.front(), machine_->memory);
    return v.ok() ? *v : 0;
  }

  std::vector<SweptRow> Rows() const { return row_sweep::RowsOf(*machine_->profile); }

  TraceModel trace_;
  std::unique_ptr<Machine> machine_;
};

// The sweep's rows are what the installed set declared to the controller, in the same order.
TEST_P(RowPropertyTest, SweepIsTheDeclaredTable) {
  const std::vector<SweptRow> rows = Rows();
  const std::vector<DeclaredRow>& declared = machine_->controller->declared_rows();
  ASSERT_EQ(rows.size(), declared.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const DeclaredRow& a = rows[i].declared;
    const DeclaredRow& b = declared[i];
    EXPECT_TRUE(a.first == b.first && a.last == b.last && a.reset == b.reset &&
                a.reserved_mask == b.reserved_mask && a.read_only_mask == b.read_only_mask &&
                a.ignored_mask == b.ignored_mask && a.flags == b.flags &&
                a.canonical_bits == b.canonical_bits)
        << rows[i].row.name;
  }
}

TEST_P(RowPropertyTest, IgnoredBitsRetireAndAreKept) {
  for (const SweptRow& s : Rows()) {
    const DeclaredRow& row = s.declared;
    for (uint32_t index : s.Indices()) {
      const std::string name = machine_->controller->MsrName(index);
      const uint64_t base = GuestBase(index) & ~row.reserved_mask;
      for (int b = 0; b < 64; ++b) {
        const uint64_t bit = 1ull << b;
        if ((row.ignored_mask & bit) == 0 || (row.reserved_mask & bit) != 0) continue;
        const absl::optional<uint64_t> back = WriteThenRead(index, base ^ bit);
        ASSERT_TRUE(back.has_value())
            << absl::StrFormat("%s <- %#x (ignored bit %d) did not retire", name, base ^ bit, b);
        EXPECT_EQ(*back & bit, base & bit)
            << absl::StrFormat("%s: ignored bit %d changed (read back %#x)", name, b, *back);
      }
    }
  }
}

// Whether a guest WRMSR of `value` to `row` is expected to retire by the row's masks alone.
bool AcceptedByMasks(const DeclaredRow& row, uint64_t value) {
  if ((row.flags & kRowCanonical) != 0 && !IsCanonicalAt(value, row.canonical_bits)) return false;
  if ((row.flags & kRowLockBit0) != 0) return true;  // Unlocked at reset: bit 0 locks, no #GP.
  return (value & row.reserved_mask) == 0;
}

TEST_P(RowPropertyTest, EveryBitNotReservedOrReadOnlyIsAccepted) {
  int checked = 0;
  for (const SweptRow& s : Rows()) {
    const DeclaredRow& row = s.declared;
    const bool no_write =
        (row.flags & (kRowReadOnly | kRowHostOnlyWrite | kRowValueRules | kRowWritesIgnored)) != 0;
    if (no_write) continue;
    for (uint32_t index : s.Indices()) {
      const std::string name = machine_->controller->MsrName(index);
      const uint64_t base = GuestBase(index);
      ASSERT_TRUE(AcceptedByMasks(row, base))
          << absl::StrFormat("%s: the reset value %#x breaks the row's own masks", name, base);
      for (int b = 0; b < 64; ++b) {
        const uint64_t bit = 1ull << b;
        const uint64_t value = base ^ bit;
        if (((row.reserved_mask | row.read_only_mask) & bit) != 0 || !AcceptedByMasks(row, value)) {
          continue;
        }
        EXPECT_EQ(Guest(Access::kWrite, index, value), Outcome::Kind::kRetired) << absl::StrFormat(
            "%s: WRMSR %#x <- %#x (bit %d, neither reserved nor read-only) "
            "did not retire",
            name, index, value, b);
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0);
}

TEST_P(RowPropertyTest, WritesIgnoredRowsRetireAndKeepTheirValue) {
  for (const SweptRow& s : Rows()) {
    const DeclaredRow& row = s.declared;
    if ((row.flags & kRowWritesIgnored) == 0 || (row.flags & kRowWriteOnly) != 0) continue;
    const std::string name = machine_->controller->MsrName(row.first);
    const uint64_t before = GuestBase(row.first);
    for (uint64_t value : {uint64_t{0}, ~before, uint64_t{0x5555555555555555}}) {
      const absl::optional<uint64_t> back = WriteThenRead(row.first, value);
      ASSERT_TRUE(back.has_value()) << name << " <- " << value << " did not retire";
      EXPECT_EQ(*back, before) << name << ": a writes-ignored row changed";
    }
  }
}

TEST_P(RowPropertyTest, CanonicalRowsAcceptCanonicalValues) {
  for (const SweptRow& s : Rows()) {
    const DeclaredRow& row = s.declared;
    if ((row.flags & kRowCanonical) == 0 || (row.flags & kRowValueRules) != 0) continue;
    const uint64_t top_low = (1ull << (row.canonical_bits - 1)) - 1;  // 0x00007fffffffffff.
    for (uint64_t value :
         {uint64_t{0}, top_low & ~row.reserved_mask, ~top_low & ~row.reserved_mask}) {
      if (!IsCanonicalAt(value, row.canonical_bits)) continue;  // Reserved bits cut the sign.
      EXPECT_EQ(Guest(Access::kWrite, row.first, value), Outcome::Kind::kRetired)
          << absl::StrFormat("%s <- %#x (canonical)", machine_->controller->MsrName(row.first),
                             value);
    }
  }
}

// The handler and its row agree on MAXPHYADDR: for every profile the rows of APIC_BASE and of
// the first variable MTRR pair reserve exactly the bits at and above MAXPHYADDR among the address
// bits, and the handler accepts the highest address bit below it and refuses the one at it.
TEST_P(RowPropertyTest, HandlerAndRowAgreeOnMaxPhyAddr) {
  const int maxphy = machine_->profile->maxphyaddr;
  ASSERT_LT(maxphy, 64);
  const uint64_t above = ~0ull << maxphy;
  const uint64_t top = 1ull << (maxphy - 1);
  int checked = 0;
  for (uint32_t index : {0x1bu, 0x200u, 0x201u}) {  // APIC_BASE, MTRR_PHYSBASE0/PHYSMASK0.
    const SweptRow* swept = nullptr;
    const std::vector<SweptRow> rows = Rows();
    for (const SweptRow& s : rows) {
      if (index >= s.row.index && index <= s.row.last) swept = &s;
    }
    const DeclaredRow* row = swept != nullptr ? &swept->declared : nullptr;
    if (row == nullptr) continue;  // The profile has no such MSR.
    const std::string name = machine_->controller->MsrName(index);
    EXPECT_EQ(row->reserved_mask & above, above) << name << ": row mask misses MAXPHYADDR bits";
    EXPECT_EQ(row->reserved_mask & top, 0u) << name << ": row reserves bit MAXPHYADDR-1";
    const uint64_t base = ResetValue(index);
    EXPECT_EQ(Guest(Access::kWrite, index, base | top), Outcome::Kind::kRetired)
        << absl::StrFormat("%s <- %#x (bit %d, below MAXPHYADDR %d) did not retire", name,
                           base | top, maxphy - 1, maxphy);
    EXPECT_EQ(Guest(Access::kWrite, index, base | (1ull << maxphy)), Outcome::Kind::kGpInjected)
        << absl::StrFormat("%s <- %#x (bit %d = MAXPHYADDR) retired", name, base | (1ull << maxphy),
                           maxphy);
    ++checked;
  }
  EXPECT_EQ(checked, 3) << "APIC_BASE and the first variable MTRR pair are on every profile";
}

INSTANTIATE_TEST_SUITE_P(EveryProfile, RowPropertyTest,
                         ::testing::ValuesIn(row_sweep::ProfileNames()), &row_sweep::ParamName);

}  // namespace
}  // namespace fuzz
}  // namespace msrtrace
