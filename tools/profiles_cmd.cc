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
#include "proto/report.pb.h"
#include "tools/command.h"
#include "tools/flags.h"
#include "tools/output.h"

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

report::Profile ProfileReport(const CpuProfile& p) {
  report::Profile r;
  r.set_name(p.name);
  r.set_description(p.description);
  r.set_vendor(VendorName(p.vendor));
  r.set_maxphyaddr(p.maxphyaddr);
  r.set_canonical_bits(p.canonical_bits());
  r.set_mce_banks(p.mce_banks);
  r.set_mcg_cap_extra(Hex(p.mcg_cap_extra));
  r.set_ucode_rev(Hex(p.ucode_rev));
  report::Pmu* pmu = r.mutable_pmu();
  pmu->set_version(p.pmu_version);
  pmu->set_gp_counters(p.pmu_gp_counters);
  pmu->set_gp_width(p.pmu_gp_width);
  pmu->set_fixed_counters(p.pmu_fixed_counters);
  pmu->set_fixed_width(p.pmu_fixed_width);
  r.set_perf_capabilities(Hex(p.perf_capabilities));
  r.set_arch_capabilities(Hex(p.arch_capabilities));
  r.set_supported_xss(Hex(p.supported_xss));
  r.set_supported_xfd(Hex(p.supported_xfd));
  r.set_msr_rows(static_cast<uint32_t>(MsrTable(p).size()));
  const auto users = FeatureUsers(p);
  for (Feature f : ProfileFeatures(p)) {
    report::ProfileFeature* feature = r.add_features();
    feature->set_name(FeatureName(f));
    auto it = users.find(f);
    if (it == users.end()) continue;
    for (const std::string& n : it->second) feature->add_msrs(n);
  }
  report::HypervFeatures* hv = r.mutable_hyperv();
  hv->set_features_eax(Hex(p.hv_features_eax));
  hv->set_features_edx(Hex(p.hv_features_edx));
  hv->set_synic(p.hv_synic);
  hv->set_syndbg(p.hv_syndbg);
  for (const std::string& n : MaxPhyAddrUsers(p)) r.add_maxphyaddr_msrs(n);
  return r;
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
    report::ProfilesReport json;
    for (const CpuProfile* p : list) *json.add_profiles() = ProfileReport(*p);
    const absl::Status st = PrintJsonReport(json, out);
    if (!st.ok()) {
      err << "msrtrace profiles: " << st.message() << "\n";
      return kExitBadInput;
    }
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
  if (int c = p.ParseOrExit(args); c >= 0) return c;
  return RunProfiles(profile, format, std::cout, std::cerr);
}

}  // namespace msrtrace::cli
