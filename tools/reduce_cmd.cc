// `msrtrace reduce`: flags -> triage::Reduce -> an atomically written trace.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "tools/command.h"
#include "tools/flags.h"
#include "tools/triage_cmds.h"
#include "triage/reduce.h"

namespace msrtrace::cli {
namespace {

bool ParseIndex(const std::string& s, uint32_t* out) {
  if (s.size() > 2 && (s.substr(0, 2) == "0x" || s.substr(0, 2) == "0X")) {
    return absl::SimpleHexAtoi(s.substr(2), out);
  }
  return absl::SimpleAtoi(s, out);
}

std::string KindNames() {
  std::string s;
  for (int k = 0; k < static_cast<int>(DivergenceKind::kCount); ++k) {
    absl::StrAppend(&s, k ? ", " : "", DivergenceKindName(static_cast<DivergenceKind>(k)));
  }
  return s;
}

}  // namespace

int RunReduce(const ReduceCmdOptions& o, std::ostream& out, std::ostream& err) {
  if (o.output.empty()) {
    err << "msrtrace reduce: -o/--output is required\n";
    return kExitBadInput;
  }
  triage::ReduceTarget target;
  if (!o.fuzz_target.empty()) {
    target.kind = triage::FindingKind::kCrash;
    target.fuzz_target = o.fuzz_target;
    target.signature = o.signature;
    target.crash_timeout_seconds = static_cast<double>(o.timeout);
  } else if (!o.oracle.empty()) {
    target.kind = triage::FindingKind::kOracle;
    if (o.oracle != "any") {
      for (int i = 0; i < static_cast<int>(fuzz::Oracle::kCount); ++i) {
        if (o.oracle == fuzz::OracleName(static_cast<fuzz::Oracle>(i))) {
          target.oracle = static_cast<fuzz::Oracle>(i);
        }
      }
      if (!target.oracle.has_value()) {
        err << "msrtrace reduce: --oracle: unknown oracle '" << o.oracle << "'\n";
        return kExitBadInput;
      }
    }
  } else {
    if (!o.divergence.empty()) {
      for (int k = 0; k < static_cast<int>(DivergenceKind::kCount); ++k) {
        if (o.divergence == DivergenceKindName(static_cast<DivergenceKind>(k))) {
          target.divergence = static_cast<DivergenceKind>(k);
        }
      }
      if (!target.divergence.has_value()) {
        err << "msrtrace reduce: --divergence: unknown kind '" << o.divergence
            << "' (known: " << KindNames() << ")\n";
        return kExitBadInput;
      }
    }
    if (!o.msr.empty()) {
      uint32_t index = 0;
      if (!ParseIndex(o.msr, &index)) {
        err << "msrtrace reduce: --msr: '" << o.msr << "' is not an MSR index\n";
        return kExitBadInput;
      }
      target.msr_index = index;
    }
    target.match_values = !o.any_values;
    const absl::optional<VolatilePolicy> policy = ParseVolatilePolicy(o.volatile_policy);
    if (!policy.has_value()) {
      err << "msrtrace reduce: --volatile: unknown policy '" << o.volatile_policy << "'\n";
      return kExitBadInput;
    }
    target.volatile_policy = *policy;
  }

  absl::StatusOr<triage::TraceModel> trace = triage::LoadTrace(o.input);
  if (!trace.ok()) {
    err << "msrtrace reduce: " << trace.status().message() << "\n";
    return kExitBadInput;
  }
  triage::ReduceOptions ro;
  ro.max_seconds = static_cast<double>(o.max_seconds);
  ro.reduce_snapshot = !o.no_snapshot;
  ro.reduce_values = !o.no_values;
  if (o.progress) {
    ro.progress = [&err](const triage::ReduceProgress& p) {
      err << absl::StrFormat("\rreduce [%s] %u events left, %u tests, %.1f s   ", p.phase, p.events,
                             p.tests, p.seconds)
          << std::flush;
    };
  }
  absl::StatusOr<triage::ReduceResult> r = triage::Reduce(*trace, target, ro);
  if (o.progress) err << "\n";
  if (!r.ok()) {
    err << "msrtrace reduce: " << o.input << ": " << r.status().message() << "\n";
    return kExitBadInput;
  }
  absl::Status st = triage::WriteTraceAtomically(r->trace, o.output);
  if (!st.ok()) {
    err << "msrtrace reduce: " << st.message() << "\n";
    return kExitBadInput;
  }
  out << absl::StrFormat(
      "%s: %u -> %u events, snapshot parts %u -> %u, %u tests, %.2f s%s\n  finding: %s\n  "
      "wrote %s\n",
      o.input, r->events_before, r->events_after, r->snapshot_parts_before, r->snapshot_parts_after,
      r->tests, r->seconds, r->timed_out ? " (stopped at --max-seconds: not minimal)" : "",
      r->finding, o.output);
  return kExitOk;
}

int ReduceMain(const std::vector<std::string>& args, bool tty) {
  ReduceCmdOptions o;
  o.progress = tty;
  std::vector<std::string> paths;
  FlagParser p(
      "msrtrace reduce", "TRACE -o OUT",
      "Shrinks a trace to the smallest one that still shows a finding (delta debugging over "
      "events, then snapshot slots and memory pages, then values). The finding is a replay "
      "divergence (default: the first one), a failing oracle (--oracle) or a fuzz target's "
      "crash (--fuzz-target).\nExamples:\n  msrtrace reduce prod.trace --divergence=value "
      "--msr=0x277 -o small.trace\n  msrtrace reduce finding.trace "
      "--fuzz-target=build/fuzz/fuzz/exit_sequence_fuzzer -o min.trace");
  p.Positional("TRACE", &paths, "The trace to reduce.", 1, 1);
  p.String("output", &o.output, "Reduced trace to write (atomically; .gz: gzip).", 'o');
  p.String("divergence", &o.divergence, "Divergence kind to keep (value, outcome, rip, ...).");
  p.String("msr", &o.msr, "MSR index of the divergence (0x277 or decimal).");
  p.Bool("any-values", &o.any_values,
         "Keep any divergence of that kind and MSR, not only the same expected/actual values.");
  p.String("volatile", &o.volatile_policy, "Volatile values: auto, exact or kind-only.");
  p.String("oracle", &o.oracle, "Keep a failing oracle (a name, or any).");
  p.String("fuzz-target", &o.fuzz_target, "Keep this fuzz target binary's crash.");
  p.String("signature", &o.signature, "Crash signature to keep (default: the original's).");
  p.Uint("timeout", &o.timeout, "Seconds per fuzz-target run.");
  p.Uint("max-seconds", &o.max_seconds, "Stop after N seconds with the smallest trace so far.");
  p.Bool("no-snapshot", &o.no_snapshot, "Do not reduce the snapshot.");
  p.Bool("no-values", &o.no_values, "Do not simplify values.");
  if (int c = p.ParseOrExit(args); c >= 0) return c;
  o.input = paths[0];
  return RunReduce(o, std::cout, std::cerr);
}

}  // namespace msrtrace::cli
