// The msrtrace subcommands as library functions. msrtrace_main.cc only parses flags into these
// option structs and calls the Run function; tests call the Run functions directly.
//
// Every subcommand is `int RunX(const XOptions&, std::ostream& out, std::ostream& err)`: results
// go to `out`, diagnostics (one line per problem, never a stack trace) and progress to `err`,
// and the return value is the process exit code below. docs/cli.md documents every flag and
// JSON key.
#ifndef MSRTRACE_TOOLS_COMMAND_H_
#define MSRTRACE_TOOLS_COMMAND_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace msrtrace::cli {

// Process exit codes, shared by every subcommand.
enum ExitCode : int {
  kExitOk = 0,          // Success; replay: every trace clean and complete.
  kExitDivergence = 1,  // Replay found divergences (diff: the traces differ).
  kExitBadInput = 2,    // Unusable input or usage error (unreadable/corrupt trace, bad flag).
  kExitIncomplete = 3,  // A trace was incomplete (torn tail or no trailer) but its intact part
                        // replayed clean. Lower precedence than 1 and 2.
};

// Combines per-trace exit codes: 2 beats 1 beats 3 beats 0.
int CombineExitCodes(int a, int b);

// Output formats.
enum class Format : uint8_t {
  kText = 0,
  kJson = 1,
  kTextProto = 2,
  kCsv = 3,
  kTable = 4,
  kLog = 5,  // One line per exit (show).
};

// --- record -------------------------------------------------------------------------------
struct RecordOptions {
  std::string output;              // Trace path ("x.trace", ".gz" = gzip). Required.
  std::string workload;            // "linux-boot", "random", or a scenario name.
  std::string golden;              // A golden trace name (workloads/golden_traces.h): sets
                                   // workload, profile, vCPUs, seed and events.
  std::string profile;             // CPU profile; empty = the workload's default.
  std::string unknown_msr_policy;  // inject-gp | ignore | fail; empty = the workload's default.
  std::string handler_set = "reference";  // A registered handler set (handlers/handler_set.h).
  uint64_t seed = 1;
  uint64_t events = 10000;  // random: number of exits.
  uint64_t vcpus = 0;       // 0 = the workload's default.
  uint64_t flush_every = 0;
  // Every N guest exits, a host save/restore round trip (KVM_GET_MSRS then KVM_SET_MSRS of the
  // kernel's save list) on the exiting vCPU, recorded as host events; 0 = none.
  uint64_t host_save_restore = 0;
  // MSR routing in the header (docs/trace-format.md, "MSR routing"): the userspace exit
  // reasons ("inval|unknown|filter", "," also separates; empty = none), MSR indices the filter
  // denies to the kernel (hex or decimal, comma-separated; empty = no filter) and the handler
  // set answering userspace exits.
  std::string user_space_msr;
  std::string msr_filter_deny;
  std::string userspace_handler_set;
  bool list = false;      // List workloads and exit.
  bool progress = false;  // Progress on `err` (set when stderr is a terminal).
};
int RunRecord(const RecordOptions& options, std::ostream& out, std::ostream& err);

// --- replay -------------------------------------------------------------------------------
struct ReplayCommandOptions {
  std::vector<std::string> paths;  // Trace files or directories (searched for *.trace[.gz]).
  Format format = Format::kText;   // kText or kJson.
  std::string junit;               // Write JUnit XML here when non-empty.
  uint64_t max_divergences = 10;   // Per trace, with details.
  uint64_t repeat = 1;
  uint64_t shard_index = 0;  // --shard=K/N: replay only traces i with i % N == K.
  uint64_t shard_count = 1;
  std::string volatile_policy = "auto";  // auto | exact | kind-only.
  uint64_t resume_after = 0;             // Also check resuming from a snapshot after N events.
  bool skip_corrupt = false;             // Read past corrupt records, naming each (exit >= 3).
  bool read_ahead = true;                // Decode on a second thread (ReplayOptions::read_ahead).
  bool progress = false;
  // --against=SET: compare each trace's own handler set with SET event by event instead of with
  // the recording (triage/differential.h); --allowlist: its intended deviations.
  std::string against;
  std::string allowlist;
};
int RunReplay(const ReplayCommandOptions& options, std::ostream& out, std::ostream& err);
// `replay --against` (tools/replay_against.cc); RunReplay calls it when `against` is set.
int RunReplayAgainst(const ReplayCommandOptions& options, std::ostream& out, std::ostream& err);

// --- show / convert / diff / stats ----------------------------------------------------------
struct ShowOptions {
  std::string path;
  Format format = Format::kTextProto;  // kTextProto, kJson or kLog (one line per exit).
  uint64_t head = 0;                   // Only the first N events (0 = all).
  uint64_t tail = 0;                   // Only the last N events (0 = all).
  bool events_only = false;            // Omit header, snapshot and trailer.
  bool no_memory = false;              // Omit the snapshot's memory pages.
};
int RunShow(const ShowOptions& options, std::ostream& out, std::ostream& err);

struct ConvertOptions {
  std::string input;  // Binary, text-proto or JSON trace (detected from content).
  std::string output;
  std::string to;  // binary | textproto | json; empty = from the output's extension
                   // (.json, .textproto/.txtpb/.pbtxt, otherwise binary).
};
int RunConvert(const ConvertOptions& options, std::ostream& out, std::ostream& err);

struct DiffOptions {
  std::string a, b;
  Format format = Format::kText;
};
// Exit 0 when the traces' headers and events are equal, 1 at the first difference (printed).
int RunDiff(const DiffOptions& options, std::ostream& out, std::ostream& err);

struct StatsOptions {
  std::vector<std::string> paths;
  Format format = Format::kText;
};
int RunStats(const StatsOptions& options, std::ostream& out, std::ostream& err);

// --- msrs ---------------------------------------------------------------------------------
struct MsrsOptions {
  std::string profile;  // Empty = every profile's table (the default profile first).
  // "reference": the table. Another set: the table rows it registers plus one row per index
  // range it registers outside the table (name from its handlers, family = the set's name).
  std::string handler_set = "reference";
  Format format = Format::kTable;  // kTable, kCsv or kJson.
};
int RunMsrs(const MsrsOptions& options, std::ostream& out, std::ostream& err);

// --- seeds --------------------------------------------------------------------------------
struct SeedsOptions {
  std::string dir;                        // Output directory (created).
  std::string handler_set = "reference";  // The set to record with.
  std::string dict;                       // Also write a libFuzzer dictionary here when set.
};
// Writes a fuzz seed corpus for `handler_set`: every complete golden workload recorded on it
// (<dir>/<golden>.trace) and sweeps of the indices it registers (<dir>/sweep-*.trace).
int RunSeeds(const SeedsOptions& options, std::ostream& out, std::ostream& err);

// Expands files and directories into a list of trace files (*.trace, *.trace.gz; directories
// recursively, by the rules of harness/core/dir_walk.h: sorted, symlinks followed, every file
// once). Errors name the path: a missing path, an unreadable directory, a dangling *.trace symlink,
// a directory without traces. Returns kExitBadInput if there was one.
int ExpandTracePaths(const std::vector<std::string>& paths, std::vector<std::string>* files,
                     std::ostream& err);

}  // namespace msrtrace::cli

#endif  // MSRTRACE_TOOLS_COMMAND_H_
