// msrtrace: record, replay and inspect MSR VM-exit traces. This file is the CLI entry point
// RunMsrtraceCli (tools/cli.h; main() is tools/main.cc, a team's is tools/set_cli_main.cc): it only
// parses flags (with the small parser in tools/flags.h; see there why not CLI11) and calls the Run
// functions of tools/command.h. docs/cli.md documents every subcommand, flag, exit code and JSON
// key.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "tools/cli.h"
#include "tools/command.h"
#include "tools/flags.h"
#include "tools/import_cmd.h"
#include "tools/output.h"
#include "tools/profiles_cmd.h"
#include "tools/triage_cmds.h"

namespace msrtrace::cli {
namespace {

using Args = std::vector<std::string>;

// The configuration RunMsrtraceCli was called with (the subcommands' signature is fixed).
const CliConfig& Config(const CliConfig* set = nullptr) {
  static CliConfig* config = new CliConfig;  // Never destroyed (no exit-time destructor).
  if (set != nullptr) *config = *set;
  return *config;
}

bool ParseFormat(const std::string& s, Format* f) {
  if (s == "text" || s == "table") {
    *f = s == "text" ? Format::kText : Format::kTable;
  } else if (s == "json") {
    *f = Format::kJson;
  } else if (s == "textproto") {
    *f = Format::kTextProto;
  } else if (s == "csv") {
    *f = Format::kCsv;
  } else if (s == "log") {
    *f = Format::kLog;
  } else {
    std::cerr << "msrtrace: --format: unknown format '" << s << "'\n";
    return false;
  }
  return true;
}

int Record(const Args& args, bool tty) {
  RecordOptions o;
  o.progress = tty;
  FlagParser p("msrtrace record", "",
               "Runs a built-in guest workload against a handler set (--handler-set) and writes "
               "a trace.\nExamples:\n  msrtrace record --workload=linux-boot --profile=amd-zen3 "
               "-o boot.trace\n  msrtrace record --workload=random --seed=7 --events=5000000 -o "
               "big.trace\n  msrtrace record --golden=faults -o corpus/golden/faults.trace");
  p.String("output", &o.output, "Trace file to write (.gz: gzip).", 'o');
  p.String("workload", &o.workload, "Workload: linux-boot, random, or a scenario (see --list).");
  p.String("golden", &o.golden,
           "Record a golden trace by name (fixes workload, profile, vCPUs, seed, events).");
  o.handler_set = Config().default_handler_set;
  p.String("handler-set", &o.handler_set,
           "Handler set to record with (built in: reference, reference+fifo; a team's "
           "<name>_msrtrace also knows its own).");
  p.String("profile", &o.profile, "CPU profile (default: the workload's).");
  p.String("unknown-msr-policy", &o.unknown_msr_policy,
           "inject-gp, ignore or fail (default: the workload's).");
  p.Uint("seed", &o.seed, "Seed of the workload's random choices.");
  p.Uint("events", &o.events, "Number of exits (random workload).");
  p.Uint("vcpus", &o.vcpus, "Number of vCPUs (default: the workload's).");
  p.Uint("flush-every", &o.flush_every,
         "Hand buffered records to the OS (write, no fsync) every N events (0 = only when the "
         "64 KiB buffer fills, and at the end, which fsyncs).");
  p.Uint("host-save-restore", &o.host_save_restore,
         "Every N guest exits, record a host save/restore round trip (KVM_GET_MSRS then "
         "KVM_SET_MSRS of the save list) on the exiting vCPU (0 = none).");
  p.String("user-space-msr", &o.user_space_msr,
           "KVM_CAP_X86_USER_SPACE_MSR exit reasons in the header: inval|unknown|filter.");
  p.String("msr-filter-deny", &o.msr_filter_deny,
           "KVM_X86_SET_MSR_FILTER in the header: comma-separated MSR indices denied to the "
           "kernel (default allow for the rest).");
  p.String("userspace-handler-set", &o.userspace_handler_set,
           "Handler set that answers userspace MSR exits (default: none).");
  p.Bool("list", &o.list, "List workloads and golden traces.");
  if (int c = p.ParseOrExit(args); c >= 0) return c;
  return RunRecord(o, std::cout, std::cerr);
}

bool ParseShard(const std::string& s, ReplayCommandOptions* o) {
  std::vector<std::string> parts = absl::StrSplit(s, '/');
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &o->shard_index) ||
      !absl::SimpleAtoi(parts[1], &o->shard_count)) {
    std::cerr << "msrtrace: --shard: '" << s << "' is not K/N\n";
    return false;
  }
  return true;
}

int Replay(const Args& args, bool tty) {
  ReplayCommandOptions o;
  o.progress = tty;
  std::string format = "text", shard;
  FlagParser p("msrtrace replay", "PATH...",
               "Replays traces against the handler set, CPU profile and unknown-MSR policy "
               "their headers name, compares every exit with the recording and checks the "
               "architectural rules.\nExit status: 0 clean, 1 divergences, 2 unusable input or "
               "usage, 3 a trace was incomplete (torn tail / no trailer) but replayed clean.");
  p.Positional("PATH...", &o.paths, "Trace files or directories (searched for *.trace[.gz]).", 1);
  p.String("format", &format, "text or json.");
  p.String("junit", &o.junit, "Also write a JUnit XML report to this file.");
  p.Uint("max-divergences", &o.max_divergences, "Divergences reported per trace.");
  p.Uint("repeat", &o.repeat, "Replay each trace N times and compare final-state digests.");
  p.String("shard", &shard, "K/N: replay only the traces i with i % N == K (0-based).");
  p.String("volatile", &o.volatile_policy,
           "How volatile values (TSC, kvm-clock) compare: auto (exact when the event "
           "recorded the host clock, else kind-only), exact or kind-only.");
  p.Uint("resume-after", &o.resume_after,
         "Also replay resuming from a snapshot taken after N events; must match.");
  p.Bool("skip-corrupt", &o.skip_corrupt,
         "Read past corrupt records (naming each on stderr and in the report) instead of "
         "stopping; such a trace counts as incomplete (exit 3 if otherwise clean).");
  p.Bool("read-ahead", &o.read_ahead,
         "Read and decode the trace on a second thread while the exits run (default true; "
         "the result is the same, --read-ahead=false keeps replay on one thread).");
  p.String("against", &o.against,
           "Run every event also on this handler set (e.g. reference) and report where the "
           "trace's own set disagrees with it (outcome, value, registers, memory, state).");
  p.String("allowlist", &o.allowlist, "With --against: the intended deviations (one per line).");
  if (int c = p.ParseOrExit(args); c >= 0) return c;
  if (!ParseFormat(format, &o.format)) return kExitBadInput;
  if (!shard.empty() && !ParseShard(shard, &o)) return kExitBadInput;
  return RunReplay(o, std::cout, std::cerr);
}

int Show(const Args& args, bool) {
  ShowOptions o;
  std::string format = "textproto";
  std::vector<std::string> paths;
  FlagParser p("msrtrace show", "PATH",
               "Prints a trace's header, snapshot, events and trailer as a text-format or JSON "
               "`Trace` message (which `msrtrace convert` reads back), or as a log with one "
               "line per exit (--format=log).");
  p.Positional("PATH", &paths, "The trace (\"-\" = stdin).", 1, 1);
  p.String("format", &format, "textproto, json or log.");
  p.Uint("head", &o.head, "Only the first N events.");
  p.Uint("tail", &o.tail, "Only the last N events.");
  p.Bool("events-only", &o.events_only, "Omit header, snapshot and trailer.");
  p.Bool("no-memory", &o.no_memory, "Omit the snapshot's guest-memory pages.");
  if (int c = p.ParseOrExit(args); c >= 0) return c;
  if (!ParseFormat(format, &o.format)) return kExitBadInput;
  o.path = paths[0];
  return RunShow(o, std::cout, std::cerr);
}

int Convert(const Args& args, bool) {
  ConvertOptions o;
  std::vector<std::string> paths;
  FlagParser p("msrtrace convert", "INPUT OUTPUT",
               "Converts between binary, text-format and JSON traces. The input form is "
               "detected from its content; the output form from --to or OUTPUT's extension "
               "(.json, .textproto/.txtpb/.pbtxt, else binary).");
  p.Positional("INPUT OUTPUT", &paths, "Input and output files (\"-\" = stdin/stdout).", 2, 2);
  p.String("to", &o.to, "binary, textproto or json.");
  if (int c = p.ParseOrExit(args); c >= 0) return c;
  o.input = paths[0];
  o.output = paths[1];
  return RunConvert(o, std::cout, std::cerr);
}

int Diff(const Args& args, bool) {
  DiffOptions o;
  std::string format = "text";
  std::vector<std::string> paths;
  FlagParser p("msrtrace diff", "A B",
               "Compares two traces (header fields replay uses, snapshot, events, trailer) and "
               "prints the first difference. Exit 0 identical, 1 different, 2 unusable input.");
  p.Positional("A B", &paths, "The two traces.", 2, 2);
  p.String("format", &format, "text or json.");
  if (int c = p.ParseOrExit(args); c >= 0) return c;
  if (!ParseFormat(format, &o.format)) return kExitBadInput;
  o.a = paths[0];
  o.b = paths[1];
  return RunDiff(o, std::cout, std::cerr);
}

int Stats(const Args& args, bool) {
  StatsOptions o;
  std::string format = "text";
  FlagParser p("msrtrace stats", "PATH...",
               "Counts a trace's events per outcome, vCPU and MSR without replaying it.");
  p.Positional("PATH...", &o.paths, "Trace files or directories.", 1);
  p.String("format", &format, "text or json.");
  if (int c = p.ParseOrExit(args); c >= 0) return c;
  if (!ParseFormat(format, &o.format)) return kExitBadInput;
  return RunStats(o, std::cout, std::cerr);
}

int Msrs(const Args& args, bool) {
  MsrsOptions o;
  std::string format = "table";
  FlagParser p(
      "msrtrace msrs", "",
      "Prints the handler table (one row per MSR or range) of a CPU profile: the reference "
      "table, or the rows --handler-set registers.");
  p.String("profile", &o.profile, "CPU profile, or all (default: the default profile).");
  o.handler_set = Config().default_handler_set;
  p.String("handler-set", &o.handler_set,
           "Handler set: the reference table's rows it registers, plus a row per index range of "
           "its own.");
  p.String("format", &format, "table, csv or json.");
  if (int c = p.ParseOrExit(args); c >= 0) return c;
  if (!ParseFormat(format, &o.format)) return kExitBadInput;
  return RunMsrs(o, std::cout, std::cerr);
}

int Seeds(const Args& args, bool) {
  SeedsOptions o;
  std::vector<std::string> dirs;
  FlagParser p("msrtrace seeds", "DIR",
               "Writes a fuzz seed corpus for a handler set into DIR: every golden workload "
               "recorded on the set (DIR/<golden>.trace) and a sweep of the indices the set "
               "registers (DIR/sweep-*.trace); with --dict also a libFuzzer dictionary of those "
               "indices and names. msrtrace_add_fuzzer runs it at build time.");
  p.Positional("DIR", &dirs, "Output directory (created; existing *.trace files are replaced).", 1,
               1);
  o.handler_set = Config().default_handler_set;
  p.String("handler-set", &o.handler_set, "Handler set to record with.");
  p.String("dict", &o.dict, "Also write a libFuzzer dictionary to this file.");
  if (int c = p.ParseOrExit(args); c >= 0) return c;
  o.dir = dirs[0];
  return RunSeeds(o, std::cout, std::cerr);
}

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(const Args&, bool tty);
};

constexpr Subcommand kSubcommands[] = {
    {"record", "Run a built-in workload and write a trace", Record},
    {"replay", "Replay traces and report divergences", Replay},
    {"show", "Print a trace as text proto or JSON", Show},
    {"convert", "Convert binary <-> text proto <-> JSON", Convert},
    {"diff", "Show the first difference of two traces", Diff},
    {"stats", "Count events per outcome, vCPU and MSR", Stats},
    {"msrs", "Print the handler table per CPU profile", Msrs},
    {"profiles", "Print the CPU profiles and what depends on them", ProfilesMain},
    {"seeds", "Write a fuzz seed corpus and dictionary for a handler set", Seeds},
    {"import", "Import a production trace (trace-cmd, perf, ...)", ImportMain},
    {"reduce", "Shrink a trace to what shows a divergence or crash", ReduceMain},
    {"coverage", "Map which MSR-table cases traces exercise", CoverageMain},
};

void Usage(std::ostream& o) {
  o << "Usage: " << Config().program << " <command> [flags] [args]\n";
  if (Config().default_handler_set != "reference") {
    o << "(msrtrace with the handler set " << Config().default_handler_set << " linked in)\n";
  }
  o << "\nCommands:\n";
  for (const Subcommand& c : kSubcommands) {
    o << "  " << c.name << std::string(10 - std::string(c.name).size(), ' ') << c.summary << "\n";
  }
  o << "\n'" << Config().program
    << " <command> --help' describes a command's flags. Exit status: 0 ok, "
       "1 divergences, 2 bad input or usage, 3 incomplete trace replayed clean.\n";
}

}  // namespace

int RunMsrtraceCli(int argc, char** argv, const CliConfig& config) {
  CliConfig resolved = config;
  if (resolved.program.empty()) {
    const std::string argv0 = argc > 0 && argv[0] != nullptr ? argv[0] : "msrtrace";
    resolved.program = argv0.substr(argv0.rfind('/') + 1);
  }
  if (resolved.default_handler_set.empty()) resolved.default_handler_set = "reference";
  Config(&resolved);
  if (argc < 2) {
    Usage(std::cerr);
    return kExitBadInput;
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    Usage(std::cout);
    return kExitOk;
  }
  if (cmd == "--version") {
    std::cout << (resolved.program == "msrtrace" ? "" : resolved.program + ": ")
              << "msrtrace 0.1.0\n";
    return kExitOk;
  }
  const Args args(argv + 2, argv + argc);
  const bool tty = isatty(2) == 1;
  // Every write to stdout is checked: a failed write or flush is exit 2 with the OS reason.
  CheckStdout();
  for (const Subcommand& c : kSubcommands) {
    if (cmd == c.name) return FinishStdout(c.run(args, tty), std::cerr);
  }
  std::cerr << resolved.program << ": unknown command '" << cmd << "' (see " << resolved.program
            << " --help)\n";
  return kExitBadInput;
}

}  // namespace msrtrace::cli
