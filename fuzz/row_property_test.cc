// Property tests over the whole declared table: for every CPU profile and every row the reference
// set declares (Controller::declared_rows, harness/core/declared_rows.h), generated guest exits
// check that the handler does what the row says:
//   - a WRMSR of the current value with one reserved bit set #GPs (each bit of the mask, which
//     for MAXPHYADDR rows includes the profile's bits at and above MAXPHYADDR: the handler and
//     the row share MaxPhyAddrReservedBits);
//   - a WRMSR of a non-canonical value to a canonical row #GPs;
//   - a WRMSR to a read-only or host-write-only row #GPs; an RDMSR of a write-only row #GPs.
// The rows' own masks drive the tests, so a family added to the table is covered without a test
// of its own.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "fuzz/fuzz_setup.h"
#include "gtest/gtest.h"
#include "handlers/cpu_profile.h"
#include "harness/core/declared_rows.h"
#include "harness/replay/exit_check.h"
#include "harness/replay/machine.h"

namespace msrtrace {
namespace fuzz {
namespace {

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
    ExitEvent e = MakeEvent(trace_, access, index, value);
    Vcpu& v = machine_->vcpus.front();
    ApplyEventInputs(e, &v.regs);
    absl::StatusOr<Outcome> o = machine_->controller->Handle(e.exit, v, machine_->memory);
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? o->kind : Outcome::Kind::kRetired;
  }
  // The value at reset as the host reads it (0 when the host cannot read it).
  uint64_t ResetValue(uint32_t index) {
    EXPECT_TRUE(machine_->Reset().ok());
    absl::StatusOr<uint64_t> v =
        machine_->controller->HostRead(index, machine_->vcpus.front(), machine_->memory);
    return v.ok() ? *v : 0;
  }

  TraceModel trace_;
  std::unique_ptr<Machine> machine_;
};

TEST_P(RowPropertyTest, EveryReservedBitFaults) {
  int checked = 0;
  for (const DeclaredRow& row : machine_->controller->declared_rows()) {
    if ((row.flags & kRowWritesIgnored) != 0) continue;
    for (uint32_t index : {row.first, row.last}) {
      const uint64_t base = ResetValue(index) & ~row.reserved_mask;
      for (int b = 0; b < 64; ++b) {
        if (((row.reserved_mask >> b) & 1) == 0) continue;
        const uint64_t value = base | (1ull << b);
        EXPECT_EQ(Guest(Access::kWrite, index, value), Outcome::Kind::kGpInjected)
            << absl::StrFormat("%s: WRMSR %#x <- %#x (reserved bit %d) did not #GP",
                               machine_->controller->MsrName(index), index, value, b);
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0);
}

TEST_P(RowPropertyTest, NonCanonicalValuesFaultOnCanonicalRows) {
  for (const DeclaredRow& row : machine_->controller->declared_rows()) {
    if ((row.flags & kRowCanonical) == 0) continue;
    for (uint64_t value : {1ull << (row.canonical_bits - 1), 1ull << 62, 0x8000000000000000ull}) {
      EXPECT_EQ(Guest(Access::kWrite, row.first, value), Outcome::Kind::kGpInjected)
          << absl::StrFormat("%s <- %#x", machine_->controller->MsrName(row.first), value);
    }
  }
}

TEST_P(RowPropertyTest, AccessRestrictionsFault) {
  for (const DeclaredRow& row : machine_->controller->declared_rows()) {
    const std::string name = machine_->controller->MsrName(row.first);
    const bool no_write =
        (row.flags & kRowReadOnly) != 0 ||
        ((row.flags & kRowHostOnlyWrite) != 0 && (row.flags & kRowWritesIgnored) == 0);
    if (no_write) {
      EXPECT_EQ(Guest(Access::kWrite, row.first, ResetValue(row.first)), Outcome::Kind::kGpInjected)
          << name << ": a guest write retired";
    }
    if ((row.flags & kRowWriteOnly) != 0) {
      EXPECT_EQ(Guest(Access::kRead, row.first, 0), Outcome::Kind::kGpInjected)
          << name << ": a guest read retired";
    }
  }
}

std::vector<std::string> ProfileNames() {
  std::vector<std::string> names;
  for (const CpuProfile& p : BuiltinProfiles()) names.push_back(p.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(EveryProfile, RowPropertyTest, ::testing::ValuesIn(ProfileNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-' || c == '.') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace fuzz
}  // namespace msrtrace
