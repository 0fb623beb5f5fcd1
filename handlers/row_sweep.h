// Test support: the row x profile sweep the two table-wide tests share. Every built-in CPU
// profile is a test parameter; for each, every row of MsrTable(profile) comes with what it
// declares to the harness (DeclaredRowOf: the rows Controller::declared_rows() holds once the
// reference set is installed) and the indices a test exercises.
//   handlers/row_conformance_test.cc  handler-side facts: reset values, access kinds, every
//                                     reserved and read-only bit #GPs with the state unchanged,
//                                     dropped bits, canonical, lock bit, x2APIC mode, feature
//                                     gates;
//   fuzz/row_property_test.cc         the controller-level acceptance half: what a row allows
//                                     retires (single-bit changes, canonical values, ignored
//                                     bits, writes-ignored rows), and MAXPHYADDR agreement.
// Each fact is asserted in one of them only.
#ifndef MSRTRACE_HANDLERS_ROW_SWEEP_H_
#define MSRTRACE_HANDLERS_ROW_SWEEP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"
#include "harness/core/declared_rows.h"

namespace msrtrace {
namespace row_sweep {

// The indices a test exercises of `row`: the first and the last of a range, or the one MSR.
inline std::vector<uint32_t> IndicesOf(const MsrRow& row) {
  if (row.index == row.last) return {row.index};
  return {row.index, row.last};
}

struct SweptRow {
  MsrRow row;            // Resolved for the profile.
  DeclaredRow declared;  // DeclaredRowOf(row, profile).

  std::vector<uint32_t> Indices() const { return IndicesOf(row); }
};

// Every row of the reference set on `profile`, in MsrTable(profile) order (by index).
inline std::vector<SweptRow> RowsOf(const CpuProfile& profile) {
  std::vector<SweptRow> out;
  for (const MsrRow& row : MsrTable(profile)) out.push_back({row, DeclaredRowOf(row, profile)});
  return out;
}

// The sweep's test parameters: the built-in profiles' names.
inline std::vector<std::string> ProfileNames() {
  std::vector<std::string> names;
  for (const CpuProfile& p : BuiltinProfiles()) names.push_back(p.name);
  return names;
}

// A parameter's test name ("intel-icx" -> "intel_icx": gtest names are [A-Za-z0-9_]).
inline std::string ParamName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (c == '-' || c == '.') c = '_';
  }
  return name;
}

}  // namespace row_sweep
}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_ROW_SWEEP_H_
