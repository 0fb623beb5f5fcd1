#include "tools/set_rows.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "harness/core/status_macros.h"
#include "harness/replay/replay.h"

namespace msrtrace::cli {

absl::StatusOr<SetRows> HandlerSetRows(absl::string_view handler_set, const CpuProfile& profile) {
  TraceHeader header;
  header.cpu_profile = profile.name;
  header.handler_set = static_cast<std::string>(handler_set);
  header.vcpu_count = 1;
  ASSIGN_OR_RETURN(std::unique_ptr<Machine> machine, BuildMachine(header));
  const Controller& controller = *machine->controller;
  const std::vector<uint32_t> indices = controller.RegisteredIndices();  // Increasing.
  const std::vector<MsrRow> table = MsrTable(profile);                   // Sorted by index.
  // Every reference row of any profile: an index the reference handlers register but whose row
  // this profile lacks (a feature the profile does not have) is not the set's own.
  const std::vector<MsrRow> all_rows = MsrTable();  // Sorted by index.

  SetRows out;
  auto registered_in = [&indices](uint32_t first, uint32_t last) {
    auto it = std::lower_bound(indices.begin(), indices.end(), first);
    return it != indices.end() && *it <= last;
  };
  auto in_table = [&all_rows](uint32_t index) {
    auto it = std::upper_bound(all_rows.begin(), all_rows.end(), index,
                               [](uint32_t i, const MsrRow& r) { return i < r.index; });
    // Rows of different vendors or profiles may cover the same index: look back a few rows.
    for (int k = 0; k < 4 && it != all_rows.begin(); ++k) {
      --it;
      if (index >= it->index && index <= it->last) return true;
    }
    return false;
  };
  for (const MsrRow& row : table) {
    if (registered_in(row.index, row.last)) out.rows.push_back(row);
  }
  const std::string& family = out.strings.emplace_back(handler_set);
  const std::string& note = out.strings.emplace_back(
      absl::StrCat("registered by handler set ", handler_set, " outside the reference table"));
  for (size_t i = 0; i < indices.size();) {
    size_t j = i + 1;
    while (j < indices.size() && indices[j] == indices[j - 1] + 1) ++j;
    out.registered.emplace_back(indices[i], indices[j - 1]);
    i = j;
  }
  for (size_t i = 0; i < indices.size();) {
    if (in_table(indices[i])) {
      ++i;
      continue;
    }
    const std::string name = controller.MsrName(indices[i]);
    size_t j = i + 1;
    while (j < indices.size() && indices[j] == indices[j - 1] + 1 && !in_table(indices[j]) &&
           controller.MsrName(indices[j]) == name) {
      ++j;
    }
    MsrRow row;
    row.index = indices[i];
    row.last = indices[j - 1];
    row.name = out.strings.emplace_back(name).c_str();
    row.family = family.c_str();
    row.note = note.c_str();
    out.own.emplace_back(row.index, row.last);
    out.rows.push_back(row);
    i = j;
  }
  std::stable_sort(out.rows.begin(), out.rows.end(),
                   [](const MsrRow& a, const MsrRow& b) { return a.index < b.index; });
  return out;
}

}  // namespace msrtrace::cli
