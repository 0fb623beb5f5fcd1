#include "tools/profiles_cmd.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"
#include "harness/core/json.h"
#include "tools/command.h"
#include "tools/flags.h"

namespace msrtrace::cli {
namespace {

std::vector<Feature> ProfileFeatures(const CpuProfile& p) {
  std::vector<Feature> out;
  for (uint32_t i = 0; i < static_cast<uint32_t>(Feature::kCount); ++i) {
    if (p.Has(static_cast<Feature>(i))) out.push_back(static_cast<Feature>(i));
  }
  return out;
}

// Feature -> the MSR rows (of the profile's vendor) that require it.
std::map<Feature, std::vector<std::string>> FeatureUsers(const CpuProfile& p) {
  std::map<Feature, std::vector<std::string>> out;
  for (const MsrRow& r : MsrTable()) {
    if (r.requires_feature == Feature::kCount) continue;
    if (r.vendor_only != Vendor::kUnspecified && r.vendor_only != p.vendor) continue;
    std::vector<std::string>& v = out[r.requires_feature];
    if (std::find(v.begin(), v.end(), r.name) == v.end()) v.push_back(r.name);
  }
  return out;
}

std::vector<std::string> MaxPhyAddrUsers(const CpuProfile& p) {
  std::vector<std::string> out;
  for (const MsrRow& r : MsrTable(p)) {
    if (r.checks & kCheckMaxPhyAddr) out.push_back(r.name);
  }
  out.emplace_back("MSR_VM_HSAVE_PA (AMD guest writes)");
  return out;
}

std::string Hex(uint64_t v) { return absl::StrFormat("0x%x", v); }

std::string PmuText(const CpuProfile& p) {
  if (p.pmu_version == 0) return "none";
  if (p.amd()) {
    return absl::StrFormat("AMD v%u, %u counters x %u bits", p.pmu_version, p.pmu_gp_counters,
                           p.pmu_gp_width);
  }
  return absl::StrFormat("v%u, %u GP x %u bits, %u fixed x %u bits", p.pmu_version,
                         p.pmu_gp_counters, p.pmu_gp_width, p.pmu_fixed_counters,
                         p.pmu_fixed_width);
}

void PrintTable(const CpuProfile& p, std::ostream& out) {
  const auto users = FeatureUsers(p);
  out << p.name << ": " << p.description << "\n";
  out << absl::StrFormat("  vendor %s, MAXPHYADDR %u, canonical MSR addresses %d bits\n",
                         VendorName(p.vendor), p.maxphyaddr, p.canonical_bits());
  out << absl::StrFormat("  MCE banks %u, MCG_CAP extra %s, microcode %s\n", p.mce_banks,
                         Hex(p.mcg_cap_extra), Hex(p.ucode_rev));
  out << "  vPMU " << PmuText(p) << ", PERF_CAPABILITIES " << Hex(p.perf_capabilities)
      << ", ARCH_CAPABILITIES " << Hex(p.arch_capabilities) << "\n";
  out << "  XSS " << Hex(p.supported_xss) << ", XFD " << Hex(p.supported_xfd) << ", MSRs "
      << MsrTable(p).size() << " rows\n";
  if (p.Has(Feature::kHyperV)) {
    out << absl::StrFormat("  Hyper-V: HYPERV_CPUID_FEATURES EAX %s EDX %s, SynIC %s, SYNDBG %s\n",
                           Hex(p.hv_features_eax), Hex(p.hv_features_edx),
                           p.hv_synic == 0 ? "off" : (p.hv_synic == 1 ? "v1" : "v2"),
                           p.hv_syndbg ? "on" : "off");
  }
  out << "  features:\n";
  for (Feature f : ProfileFeatures(p)) {
    auto it = users.find(f);
    out << "    " << FeatureName(f);
    if (it != users.end()) out << "  -> " << absl::StrJoin(it->second, ", ");
    out << "\n";
  }
  out << "  MAXPHYADDR -> " << absl::StrJoin(MaxPhyAddrUsers(p), ", ") << "\n";
}

std::string ProfileJson(const CpuProfile& p) {
  const auto users = FeatureUsers(p);
  std::vector<std::string> features;
  for (Feature f : ProfileFeatures(p)) {
    std::vector<std::string> names;
    auto it = users.find(f);
    if (it != users.end()) {
      for (const std::string& n : it->second) names.push_back(JsonString(n));
    }
    features.push_back(absl::StrCat("{\"name\": ", JsonString(FeatureName(f)), ", \"msrs\": [",
                                    absl::StrJoin(names, ", "), "]}"));
  }
  std::vector<std::string> phys;
  for (const std::string& n : MaxPhyAddrUsers(p)) phys.push_back(JsonString(n));
  return absl::StrCat(
      "  {\"name\": ", JsonString(p.name), ", \"description\": ", JsonString(p.description),
      ", \"vendor\": ", JsonString(VendorName(p.vendor)), ", \"maxphyaddr\": ", p.maxphyaddr,
      ", \"canonical_bits\": ", p.canonical_bits(), ", \"mce_banks\": ", p.mce_banks,
      ", \"mcg_cap_extra\": ", JsonString(Hex(p.mcg_cap_extra)),
      ", \"ucode_rev\": ", JsonString(Hex(p.ucode_rev)), ", \"pmu\": {\"version\": ", p.pmu_version,
      ", \"gp_counters\": ", p.pmu_gp_counters, ", \"gp_width\": ", p.pmu_gp_width,
      ", \"fixed_counters\": ", p.pmu_fixed_counters, ", \"fixed_width\": ", p.pmu_fixed_width,
      "}, \"perf_capabilities\": ", JsonString(Hex(p.perf_capabilities)),
      ", \"arch_capabilities\": ", JsonString(Hex(p.arch_capabilities)),
      ", \"supported_xss\": ", JsonString(Hex(p.supported_xss)),
      ", \"supported_xfd\": ", JsonString(Hex(p.supported_xfd)),
      ", \"hyperv\": {\"features_eax\": ", JsonString(Hex(p.hv_features_eax)),
      ", \"features_edx\": ", JsonString(Hex(p.hv_features_edx)),
      ", \"synic\": ", static_cast<int>(p.hv_synic),
      ", \"syndbg\": ", p.hv_syndbg ? "true" : "false", "}", ", \"msr_rows\": ", MsrTable(p).size(),
      ", \"features\": [", absl::StrJoin(features, ", "), "], \"maxphyaddr_msrs\": [",
      absl::StrJoin(phys, ", "), "]}");
}

}  // namespace

int RunProfiles(const std::string& profile, const std::string& format, std::ostream& out,
                std::ostream& err) {
  if (format != "table" && format != "json") {
    err << "msrtrace profiles: --format: unknown format '" << format << "' (table or json)\n";
    return kExitBadInput;
  }
  std::vector<const CpuProfile*> list;
  if (profile.empty() || profile == "all") {
    for (const CpuProfile& p : BuiltinProfiles()) list.push_back(&p);
  } else {
    const CpuProfile* p = FindProfile(profile);
    if (p == nullptr) {
      err << "msrtrace profiles: --profile: unknown profile '" << profile << "'\n";
      return kExitBadInput;
    }
    list.push_back(p);
  }
  if (format == "json") {
    std::vector<std::string> items;
    items.reserve(list.size());
    for (const CpuProfile* p : list) items.push_back(ProfileJson(*p));
    out << "[\n" << absl::StrJoin(items, ",\n") << "\n]\n";
    return kExitOk;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    if (i > 0) out << "\n";
    PrintTable(*list[i], out);
  }
  return kExitOk;
}

int ProfilesMain(const std::vector<std::string>& args, bool) {
  std::string profile;
  std::string format = "table";
  FlagParser p("msrtrace profiles", "",
               "Prints the built-in CPU profiles: vendor, MAXPHYADDR, canonical-address width, "
               "vPMU, feature MSR values, CPUID features and the MSR rows each one gates.");
  p.String("profile", &profile, "One profile (default: all).");
  p.String("format", &format, "table or json.");
  absl::Status st = p.Parse(args);
  if (!st.ok()) {
    std::cerr << "msrtrace: " << st.message() << "\n";
    return kExitBadInput;
  }
  if (p.help_requested()) {
    std::cout << p.Help();
    return kExitOk;
  }
  return RunProfiles(profile, format, std::cout, std::cerr);
}

}  // namespace msrtrace::cli
