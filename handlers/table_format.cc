#include "handlers/table_format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "harness/core/enum_names.h"

namespace msrtrace {
namespace {

constexpr MsrCheck kAllChecks[] = {
    kCheckCanonical,       kCheckCanonicalize,         kCheckPatTypes,
    kCheckMtrrTypes,       kCheckMaxPhyAddr,           kCheckLockBit,
    kCheckHostOnlyWrite,   kCheckWritesIgnored,        kCheckWriteOnly,
    kCheckReadOnly,        kCheckGuestMemory,          kCheckX2ApicMode,
    kCheckHostOnlyRead,    kCheckAbsentWithoutFeature, kCheckFeatureGatesHost,
    kCheckReservedIgnored, kCheckReservedConditional,  kCheckResetVaries,
    kCheckValueRules,      kCheckReadOnlyKept,
};

std::string Hex(uint64_t v) { return absl::StrFormat("0x%x", v); }  // "0x0" for 0.
std::string Hex64(uint64_t v) { return absl::StrFormat("0x%016x", v); }

const char* VendorKey(Vendor v) { return v == Vendor::kUnspecified ? "any" : VendorName(v); }

std::string FeatureKey(const MsrRow& r) {
  return r.requires_feature == Feature::kCount ? "" : FeatureName(r.requires_feature);
}

std::string CsvField(absl::string_view s) {
  if (s.find_first_of(",\"\n") == absl::string_view::npos) return static_cast<std::string>(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += "\"";
    out.push_back(c);
  }
  out += "\"";
  return out;
}

std::string FormatCsv(absl::Span<const MsrRow> rows) {
  std::string out =
      "index,last,name,family,reset,reserved_mask,read_only_mask,checks,scope,requires_feature,"
      "vendor,volatile,note\n";
  for (const MsrRow& r : rows) {
    absl::StrAppend(&out, Hex(r.index), ",", Hex(r.last), ",", CsvField(r.name), ",",
                    CsvField(r.family), ",", Hex64(r.reset), ",", Hex64(r.reserved_mask), ",",
                    Hex64(r.read_only_mask), ",",
                    CsvField(absl::StrJoin(CheckNames(r.checks), "|")), ",", ScopeName(r.scope),
                    ",", FeatureKey(r), ",", VendorKey(r.vendor_only), ",",
                    r.volatile_value ? "true" : "false", ",", CsvField(r.note), "\n");
  }
  return out;
}

std::string FormatText(absl::Span<const MsrRow> rows) {
  struct Line {
    std::vector<std::string> cells;
  };
  const std::vector<std::string> header = {"INDEX",    "NAME",      "FAMILY",   "RESET",
                                           "RESERVED", "READ_ONLY", "CHECKS",   "SCOPE",
                                           "FEATURE",  "VENDOR",    "VOLATILE", "NOTE"};
  std::vector<Line> lines;
  lines.push_back({header});
  for (const MsrRow& r : rows) {
    std::string index = Hex(r.index);
    if (r.last != r.index) absl::StrAppend(&index, "-", Hex(r.last));
    const std::string checks = absl::StrJoin(CheckNames(r.checks), ",");
    const std::string feature = FeatureKey(r);
    lines.push_back(
        {{index, r.name, r.family, Hex64(r.reset), Hex64(r.reserved_mask), Hex64(r.read_only_mask),
          checks.empty() ? "-" : checks, ScopeName(r.scope), feature.empty() ? "-" : feature,
          VendorKey(r.vendor_only), r.volatile_value ? "yes" : "no", r.note}});
  }
  std::vector<size_t> width(header.size(), 0);
  for (const Line& l : lines) {
    for (size_t c = 0; c + 1 < l.cells.size(); ++c) {
      width[c] = std::max(width[c], l.cells[c].size());
    }
  }
  std::string out;
  for (const Line& l : lines) {
    for (size_t c = 0; c < l.cells.size(); ++c) {
      if (c + 1 < l.cells.size()) {
        absl::StrAppend(&out, l.cells[c], std::string(width[c] - l.cells[c].size() + 2, ' '));
      } else {
        absl::StrAppend(&out, l.cells[c]);
      }
    }
    out += "\n";
  }
  return out;
}

}  // namespace

// "text" is an alias of "table".
constexpr EnumName<TableFormat> kTableFormatNames[] = {
    {TableFormat::kText, "table"},
    {TableFormat::kCsv, "csv"},
    {TableFormat::kJson, "json"},
    {TableFormat::kText, "text"},
};

absl::optional<TableFormat> ParseTableFormat(absl::string_view name) {
  return ValueOf(kTableFormatNames, name);
}

const char* TableFormatName(TableFormat f) { return NameOf(kTableFormatNames, f, "table"); }

const char* CheckName(MsrCheck check) {
  switch (check) {
    case kCheckCanonical:
      return "canonical";
    case kCheckCanonicalize:
      return "canonicalize";
    case kCheckPatTypes:
      return "pat-types";
    case kCheckMtrrTypes:
      return "mtrr-types";
    case kCheckMaxPhyAddr:
      return "maxphyaddr";
    case kCheckLockBit:
      return "lock-bit";
    case kCheckHostOnlyWrite:
      return "host-only-write";
    case kCheckWritesIgnored:
      return "writes-ignored";
    case kCheckWriteOnly:
      return "write-only";
    case kCheckReadOnly:
      return "read-only";
    case kCheckGuestMemory:
      return "guest-memory";
    case kCheckX2ApicMode:
      return "x2apic-mode";
    case kCheckHostOnlyRead:
      return "host-only-read";
    case kCheckAbsentWithoutFeature:
      return "absent-without-feature";
    case kCheckFeatureGatesHost:
      return "feature-gates-host";
    case kCheckReservedIgnored:
      return "reserved-ignored";
    case kCheckReservedConditional:
      return "reserved-conditional";
    case kCheckResetVaries:
      return "reset-varies";
    case kCheckValueRules:
      return "value-rules";
    case kCheckReadOnlyKept:
      return "read-only-kept";
    case kCheckNone:
      break;
  }
  return "unknown";
}

std::vector<std::string> CheckNames(uint32_t checks) {
  std::vector<std::string> out;
  uint32_t known = 0;
  for (MsrCheck c : kAllChecks) {
    known |= c;
    if (checks & c) out.push_back(CheckName(c));
  }
  if (checks & ~known) out.push_back(absl::StrFormat("unknown-%#x", checks & ~known));
  return out;
}

const char* ScopeName(MsrScope scope) {
  switch (scope) {
    case MsrScope::kVcpu:
      return "vcpu";
    case MsrScope::kVm:
      return "vm";
    case MsrScope::kNone:
      return "none";
  }
  return "none";
}

MsrRowFields RowFields(const MsrRow& r) {
  MsrRowFields f;
  f.index = Hex(r.index);
  f.last = Hex(r.last);
  f.reset = Hex64(r.reset);
  f.reserved_mask = Hex64(r.reserved_mask);
  f.read_only_mask = Hex64(r.read_only_mask);
  f.checks = CheckNames(r.checks);
  f.scope = ScopeName(r.scope);
  f.requires_feature = FeatureKey(r);
  f.vendor = VendorKey(r.vendor_only);
  return f;
}

std::string FormatMsrTable(absl::Span<const MsrRow> rows, TableFormat format) {
  switch (format) {
    case TableFormat::kCsv:
      return FormatCsv(rows);
    case TableFormat::kJson:  // Rendered by the caller from RowFields (see the header).
    case TableFormat::kText:
      break;
  }
  return FormatText(rows);
}

}  // namespace msrtrace
