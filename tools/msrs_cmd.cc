// msrtrace msrs: the handler table per CPU profile, the reference table or with --handler-set the
// rows a set registers (tools/set_rows.h). Text and CSV: handlers/table_format.h; JSON:
// proto/report.proto MsrsReport.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"
#include "handlers/table_format.h"
#include "proto/report.pb.h"
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
  report::MsrsReport json;
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
    const std::string table = tf == TableFormat::kJson ? "" : FormatMsrTable(rows, tf);
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
      case TableFormat::kJson: {
        report::ProfileMsrs* pm = json.add_profiles();
        pm->set_profile(p.name);
        pm->set_description(p.description);
        pm->set_vendor(VendorName(p.vendor));
        pm->set_handler_set(ValidUtf8(reference ? "reference" : o.handler_set));
        for (const MsrRow& r : rows) {
          const MsrRowFields f = RowFields(r);
          report::MsrRow* m = pm->add_msrs();
          m->set_index(f.index);
          m->set_last(f.last);
          m->set_name(ValidUtf8(r.name));
          m->set_family(ValidUtf8(r.family));
          m->set_reset(f.reset);
          m->set_reserved_mask(f.reserved_mask);
          m->set_read_only_mask(f.read_only_mask);
          for (const std::string& c : f.checks) m->add_checks(c);
          m->set_scope(f.scope);
          m->set_requires_feature(f.requires_feature);
          m->set_vendor(f.vendor);
          m->set_volatile_(r.volatile_value);
          m->set_note(ValidUtf8(r.note));
        }
        break;
      }
    }
  }
  if (tf == TableFormat::kJson) {
    const absl::Status st = PrintJsonReport(json, out);
    if (!st.ok()) {
      err << "msrtrace msrs: " << st.message() << "\n";
      return kExitBadInput;
    }
  }
  return kExitOk;
}

}  // namespace msrtrace::cli
