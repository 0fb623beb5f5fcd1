#include "handlers/table_format.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "handlers/msr_table.h"

namespace msrtrace {
namespace {

MsrRow SampleRow() {
  MsrRow r;
  r.index = 0x277;
  r.last = 0x277;
  r.name = "IA32_PAT";
  r.family = "mtrr_pat";
  r.reset = 0x0007040600070406ull;
  r.reserved_mask = 0xf8f8f8f8f8f8f8f8ull;
  r.checks = kCheckPatTypes | kCheckCanonical;
  r.requires_feature = Feature::kSpecCtrl;
  r.vendor_only = Vendor::kAmdSvm;
  r.note = "a \"quoted\", noted\nrow";
  return r;
}

size_t CountLines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }

TEST(TableFormatTest, ParseTableFormatAcceptsTheThreeNames) {
  EXPECT_EQ(ParseTableFormat("table"), TableFormat::kText);
  EXPECT_EQ(ParseTableFormat("text"), TableFormat::kText);
  EXPECT_EQ(ParseTableFormat("csv"), TableFormat::kCsv);
  EXPECT_EQ(ParseTableFormat("json"), TableFormat::kJson);
  EXPECT_FALSE(ParseTableFormat("xml").has_value());
}

TEST(TableFormatTest, CheckNamesListsSetBitsLowestFirst) {
  EXPECT_EQ(CheckNames(kCheckPatTypes | kCheckCanonical),
            (std::vector<std::string>{"canonical", "pat-types"}));
  EXPECT_TRUE(CheckNames(kCheckNone).empty());
  EXPECT_EQ(CheckNames(1u << 31), (std::vector<std::string>{"unknown-0x80000000"}));
}

TEST(TableFormatTest, RowFieldsGiveTheDocumentedTexts) {
  const MsrRowFields f = RowFields(SampleRow());
  EXPECT_EQ(f.index, "0x277");
  EXPECT_EQ(f.last, "0x277");
  EXPECT_EQ(f.reset, "0x0007040600070406");
  EXPECT_EQ(f.reserved_mask, "0xf8f8f8f8f8f8f8f8");
  EXPECT_EQ(f.read_only_mask, "0x0000000000000000");
  EXPECT_EQ(f.checks, (std::vector<std::string>{"canonical", "pat-types"}));
  EXPECT_EQ(f.scope, "vcpu");
  EXPECT_EQ(f.requires_feature, "spec-ctrl");
  EXPECT_EQ(f.vendor, "amd-svm");
}

TEST(TableFormatTest, RowFieldsLeaveNoFeatureEmpty) {
  MsrRow r = SampleRow();
  r.requires_feature = Feature::kCount;
  EXPECT_EQ(RowFields(r).requires_feature, "");
}

TEST(TableFormatTest, CsvHasHeaderAndQuotesNotes) {
  const std::vector<MsrRow> rows = {SampleRow()};
  const std::string csv = FormatMsrTable(rows, TableFormat::kCsv);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "index,last,name,family,reset,reserved_mask,read_only_mask,checks,scope,"
            "requires_feature,vendor,volatile,note");
  EXPECT_NE(csv.find("0x277,0x277,IA32_PAT,mtrr_pat,0x0007040600070406,0xf8f8f8f8f8f8f8f8,"
                     "0x0000000000000000,canonical|pat-types,vcpu,spec-ctrl,amd-svm,false,"
                     "\"a \"\"quoted\"\", noted\nrow\"\n"),
            std::string::npos)
      << csv;
}

TEST(TableFormatTest, CsvHasOneRecordPerRowOfTheRealTable) {
  const std::vector<MsrRow> rows = MsrTable(DefaultProfile());
  const std::string csv = FormatMsrTable(rows, TableFormat::kCsv);
  size_t records = 0;
  for (absl::string_view line : absl::StrSplit(csv, '\n')) {
    if (absl::StartsWith(line, "0x")) ++records;
  }
  EXPECT_EQ(records, rows.size());
}

TEST(TableFormatTest, TextHasAHeaderAndOneLinePerRow) {
  std::vector<MsrRow> rows = MsrTable(DefaultProfile());
  const std::string text = FormatMsrTable(rows, TableFormat::kText);
  EXPECT_EQ(CountLines(text), rows.size() + 1);
  EXPECT_EQ(text.rfind("INDEX", 0), 0u);
  EXPECT_NE(text.find("0x400-0x47f"), std::string::npos);
  EXPECT_NE(text.find("IA32_PAT"), std::string::npos);
}

TEST(TableFormatTest, EmptyTableIsJustTheFraming) {
  EXPECT_EQ(CountLines(FormatMsrTable({}, TableFormat::kCsv)), 1u);
}

}  // namespace
}  // namespace msrtrace
