#include "tools/import_cmd.h"

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "handlers/cpu_profile.h"
#include "handlers/handler_set.h"
#include "handlers/msr_table.h"
#include "harness/core/controller.h"
#include "importers/kvm_trace_assembler.h"
#include "importers/kvm_trace_importer.h"
#include "tools/command.h"
#include "tools/flags.h"
#include "tools/output.h"

namespace msrtrace::cli {

int RunImport(const ImportOptions& options, std::ostream& out, std::ostream& err) {
  using importers::ImportConfig;
  using importers::ImportSummary;
  if (options.inputs.empty()) {
    err << "msrtrace import: no capture given (a file, or - for stdin)\n";
    return kExitBadInput;
  }
  if (options.format != "text" && options.format != "json") {
    err << "msrtrace import: --format: unknown format '" << options.format << "' (text or json)\n";
    return kExitBadInput;
  }
  const CpuProfile* profile =
      options.profile.empty() ? &DefaultProfile() : FindProfile(options.profile);
  if (profile == nullptr) {
    std::vector<std::string> names;
    for (const CpuProfile& p : BuiltinProfiles()) names.push_back(p.name);
    err << "msrtrace import: --profile: unknown CPU profile '" << options.profile
        << "' (known: " << absl::StrJoin(names, ", ") << ")\n";
    return kExitBadInput;
  }
  const HandlerSetDef* set = FindHandlerSet(options.handler_set);
  if (set == nullptr) {
    std::vector<std::string> names;
    for (const HandlerSetDef* s : ListHandlerSets()) names.push_back(s->name);
    err << "msrtrace import: --handler-set: unknown handler set '" << options.handler_set
        << "' (known: " << absl::StrJoin(names, ", ") << ")\n";
    return kExitBadInput;
  }
  absl::optional<UnknownMsrPolicy> policy = ParseUnknownMsrPolicy(options.unknown_msr_policy);
  if (!policy.has_value() || *policy == UnknownMsrPolicy::kUnspecified) {
    err << "msrtrace import: --unknown-msr-policy: unknown policy '" << options.unknown_msr_policy
        << "' (inject-gp, ignore or fail)\n";
    return kExitBadInput;
  }
  Vendor vendor = profile->vendor;
  if (options.vendor == "intel") {
    vendor = Vendor::kIntelVmx;
  } else if (options.vendor == "amd") {
    vendor = Vendor::kAmdSvm;
  } else if (!options.vendor.empty()) {
    err << "msrtrace import: --vendor: expected intel or amd, got '" << options.vendor << "'\n";
    return kExitBadInput;
  }

  // Volatile MSRs: the importer's list plus the reference table's volatile rows.
  importers::VolatileMsrSet volatile_msrs = importers::VolatileMsrSet::Builtin();
  for (const auto& [first, last] : VolatileRanges(MsrTable())) volatile_msrs.Add(first, last);

  ImportConfig config;
  config.inputs = options.inputs;
  config.output = options.output;
  config.profile_name = profile->name;
  config.handler_set_name = set->name;
  config.unknown_msr_policy = *policy;
  config.default_vendor = vendor;
  config.install = [set, profile](Controller& c) { return set->install(c, *profile); };
  config.volatile_msrs = &volatile_msrs;
  config.strict = options.strict;
  config.accept_truncated = options.accept_truncated;
  config.compare = options.compare;
  config.progress = options.progress;
  config.diagnostics = &err;
  config.max_reported_bad_lines = static_cast<uint32_t>(options.max_bad_lines);

  absl::StatusOr<ImportSummary> s = importers::ImportCapture(config);
  if (!s.ok()) {
    err << "msrtrace import: " << s.status().message() << "\n";
    return kExitBadInput;
  }
  if (s->bad_lines > s->first_bad_lines.size()) {
    err << "msrtrace import: " << s->bad_lines - s->first_bad_lines.size()
        << " more bad lines not shown\n";
  }
  if (options.format == "json") {
    const absl::Status st = PrintJsonReport(importers::SummaryReport(*s), out);
    if (!st.ok()) {
      err << "msrtrace import: " << st.message() << "\n";
      return kExitBadInput;
    }
  } else {
    out << importers::FormatSummaryText(*s);
  }
  if (options.fail_on_disagreement && s->msrs_disagree > 0) return kExitDivergence;
  return kExitOk;
}

int ImportMain(const std::vector<std::string>& args, bool tty) {
  ImportOptions o;
  o.progress = tty;
  bool no_compare = false;
  FlagParser p(
      "msrtrace import", "CAPTURE...",
      "Imports KVM tracepoint captures (raw ftrace, trace-cmd report, perf script or bare\n"
      "tracepoint lines of kvm:kvm_msr, kvm_exit, kvm_entry, kvm_inj_exception; plain or .gz;\n"
      "- = stdin; or trace-cmd's binary trace.dat) into a trace, infers initial MSR values,\n"
      "and compares the capture with a handler set.\n"
      "Example:\n  trace-cmd report | msrtrace import - --profile=intel-icx -o prod.trace");
  p.Positional("CAPTURE...", &o.inputs,
               "Capture files (\"-\" = stdin, .gz accepted, trace.dat detected by content).", 1);
  p.String("output", &o.output, "Write the imported trace here.", 'o');
  p.String("profile", &o.profile, "CPU profile of the handlers (default: the default profile).");
  p.String("handler-set", &o.handler_set, "Handler set to compare with and record.");
  p.String("unknown-msr-policy", &o.unknown_msr_policy, "inject-gp, ignore or fail.");
  p.String("vendor", &o.vendor, "intel or amd, for captures without kvm_exit lines.");
  p.Bool("strict", &o.strict,
         "Fail on the first line that does not parse or has a tolerated shape (no CPU column,\n"
         "other flags widths, bare lines, trailing text).");
  p.Bool("accept-truncated", &o.accept_truncated,
         "Import a cut capture (gzip without its end, final line without newline): the cut\n"
         "line is dropped and the summary and trace header say truncated.");
  p.Bool("no-compare", &no_compare, "Do not compare the capture with the handler set.");
  p.Bool("fail-on-disagreement", &o.fail_on_disagreement,
         "Exit 1 when a handled MSR disagrees with production.");
  p.String("format", &o.format, "Summary format: text or json.");
  p.Uint("max-bad-lines", &o.max_bad_lines, "Bad lines reported one by one.");
  if (int c = p.ParseOrExit(args); c >= 0) return c;
  o.compare = !no_compare;
  return RunImport(o, std::cout, std::cerr);
}

}  // namespace msrtrace::cli
