// What a handler set registers, as MSR table rows: `msrtrace msrs --handler-set`, and the seed
// corpus and dictionary of `msrtrace seeds`, read a set (a team's included) through this.
#ifndef MSRTRACE_TOOLS_SET_ROWS_H_
#define MSRTRACE_TOOLS_SET_ROWS_H_

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"

namespace msrtrace::cli {

struct SetRows {
  // Sorted by index: the reference table rows of which the set registers at least one index,
  // and one row per run of consecutive indices with the same name that the set registers
  // outside the table (family = the set's name; other fields at their defaults).
  std::vector<MsrRow> rows;
  // The rows outside the reference table (the set's own MSRs), as [first, last] ranges.
  std::vector<std::pair<uint32_t, uint32_t>> own;
  // Every registered index as [first, last] runs of consecutive indices.
  std::vector<std::pair<uint32_t, uint32_t>> registered;
  std::deque<std::string> strings;  // Owns the own rows' name, family and note.
};

// The rows of `handler_set` installed for `profile`. Errors: BuildMachine's (unknown set or
// profile, a set that fails to install).
[[nodiscard]] absl::StatusOr<SetRows> HandlerSetRows(absl::string_view handler_set,
                                                     const CpuProfile& profile);

}  // namespace msrtrace::cli

#endif  // MSRTRACE_TOOLS_SET_ROWS_H_
