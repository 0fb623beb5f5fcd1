// Renders MSR table rows (MsrTable(profile)) for `msrtrace msrs` as a text table or CSV; the
// JSON form is proto/report.proto MsrRow, filled by `msrtrace msrs` from RowFields().
//
// All three formats carry the same fields, under these stable keys (CSV header, JSON keys):
//   index, last           "0x277" (lowercase hex strings)
//   name, family          strings
//   reset, reserved_mask, read_only_mask   "0x0007040600070406" (hex strings: 64-bit values do
//                         not survive JSON numbers)
//   checks                list of check names (CheckName); CSV joins them with '|'
//   scope                 "vcpu" | "vm" | "none"
//   requires_feature      FeatureName() or empty
//   vendor                "any" | "intel-vmx" | "amd-svm"
//   volatile              true | false
//   note                  string
// The text table has one line per row with the note last.
#ifndef MSRTRACE_HANDLERS_TABLE_FORMAT_H_
#define MSRTRACE_HANDLERS_TABLE_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "absl/types/span.h"
#include "handlers/msr_table.h"

namespace msrtrace {

enum class TableFormat : uint8_t { kText = 0, kCsv = 1, kJson = 2 };

// "table" (or "text"), "csv", "json"; nullopt otherwise.
absl::optional<TableFormat> ParseTableFormat(absl::string_view name);
const char* TableFormatName(TableFormat f);

// Name of one MsrCheck bit ("canonical", "pat-types", ...); "unknown" for others.
const char* CheckName(MsrCheck check);
// Names of the bits set in `checks`, lowest bit first.
std::vector<std::string> CheckNames(uint32_t checks);
const char* ScopeName(MsrScope scope);

// The text of every field of `r` as the formats above print it (name, family, volatile and note
// are the row's own).
struct MsrRowFields {
  std::string index, last;
  std::string reset, reserved_mask, read_only_mask;
  std::vector<std::string> checks;
  std::string scope;
  std::string requires_feature;  // Empty for none.
  std::string vendor;
};
MsrRowFields RowFields(const MsrRow& r);

// Renders `rows` as the text table (kText) or CSV (kCsv); kJson gives the text table (JSON is
// built from RowFields). The output ends with a newline.
std::string FormatMsrTable(absl::Span<const MsrRow> rows, TableFormat format);

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_TABLE_FORMAT_H_
