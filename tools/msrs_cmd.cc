// msrtrace msrs: the handler table per CPU profile (rendering: handlers/table_format.h): the
// reference table, or with --handler-set the rows a set registers (tools/set_rows.h).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"
#include "handlers/table_format.h"
#include "tools/command.h"
#include "tools/output.h"
#include "tools/set_rows.h"

namespace msrtrace::cli {

int RunMsrs(const MsrsOptions& o, std::ostream& out, std::ostream& err) {
  TableFormat tf = TableFormat::kText;
  switch (o.format) {
    case Format::kTable:
    case Format::kText:
      tf = TableFormat::kText;
      break;
    case Format::kCsv:
      tf = TableFormat::kCsv;
      break;
    case Format::kJson:
      tf = TableFormat::kJson;
      break;
    default:
      err << "msrtrace msrs: --format must be table, csv or json\n";
      return kExitBadInput;
  }
  std::vector<const CpuProfile*> profiles;
  if (o.profile == "all") {
    for (const CpuProfile& p : BuiltinProfiles()) profiles.push_back(&p);
  } else if (o.profile.empty()) {
    profiles.push_back(&DefaultProfile());
  } else if (const CpuProfile* p = FindProfile(o.profile)) {
    profiles.push_back(p);
  } else {
    std::string known;
    for (const CpuProfile& q : BuiltinProfiles()) absl::StrAppend(&known, " ", q.name);
    err << "msrtrace msrs: unknown CPU profile '" << o.profile << "' (known:" << known
        << ", or all)\n";
    return kExitBadInput;
  }
  if (tf == TableFormat::kJson) out << "{\"profiles\": [";
  for (size_t i = 0; i < profiles.size(); ++i) {
    const CpuProfile& p = *profiles[i];
    const bool reference = o.handler_set.empty() || o.handler_set == "reference";
    absl::StatusOr<SetRows> set_rows = SetRows{};
    if (!reference) {
      set_rows = HandlerSetRows(o.handler_set, p);
      if (!set_rows.ok()) {
        err << "msrtrace msrs: " << set_rows.status().message() << "\n";
        return kExitBadInput;
      }
    }
    const std::vector<MsrRow> rows = reference ? MsrTable(p) : set_rows->rows;
    const std::string table = FormatMsrTable(rows, tf);
    switch (tf) {
      case TableFormat::kText:
        if (i > 0) out << "\n";
        out << "# " << p.name << ": " << p.description << " (" << rows.size() << " rows"
            << (reference ? "" : ", handler set " + o.handler_set) << ")\n"
            << table;
        break;
      case TableFormat::kCsv: {
        bool header = true;
        for (absl::string_view line : absl::StrSplit(table, '\n', absl::SkipEmpty())) {
          if (header) {
            if (i == 0) out << "profile," << line << "\n";
            header = false;
            continue;
          }
          out << p.name << "," << line << "\n";
        }
        break;
      }
      case TableFormat::kJson:
        out << (i > 0 ? ",\n" : "\n") << "{\"profile\": " << JsonString(p.name)
            << ", \"description\": " << JsonString(p.description)
            << ", \"vendor\": " << JsonString(VendorName(p.vendor))
            << ", \"handler_set\": " << JsonString(reference ? "reference" : o.handler_set)
            << ", \"msrs\": " << table << "}";
        break;
    }
  }
  if (tf == TableFormat::kJson) out << "]}\n";
  return kExitOk;
}

}  // namespace msrtrace::cli
