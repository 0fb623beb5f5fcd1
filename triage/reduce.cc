#include "triage/reduce.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"
#include "harness/core/status_macros.h"
#include "harness/trace/trace_file.h"

extern char** environ;  // NOLINT: POSIX; posix_spawn passes it to the fuzz target.

namespace msrtrace::triage {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kLow32 = 0xffffffffull;

// A TraceReader over events of a TraceModel in memory: all of them, or the positions in
// `*keep` (ascending). Candidates are tested without encoding or copying events.
class ModelReader : public TraceReader {
 public:
  ModelReader(const TraceModel& model, const std::vector<uint32_t>* keep)
      : model_(model), keep_(keep) {
    trailer_.event_count = keep != nullptr ? keep->size() : model.events.size();
  }
  const TraceHeader& header() const override { return model_.header; }
  const Snapshot& snapshot() const override { return model_.snapshot; }
  absl::StatusOr<bool> Next(ExitEvent* event) override {
    const size_t n = keep_ != nullptr ? keep_->size() : model_.events.size();
    if (next_ >= n) return false;
    *event = model_.events[keep_ != nullptr ? (*keep_)[next_] : next_];
    ++next_;
    return true;
  }
  TraceEnd end() const override { return TraceEnd::kComplete; }
  const TraceTrailer& trailer() const override { return trailer_; }
  uint64_t offset() const override { return next_; }
  uint64_t records() const override { return next_; }

 private:
  const TraceModel& model_;
  const std::vector<uint32_t>* keep_;
  size_t next_ = 0;
  TraceTrailer trailer_;  // Final digest 0: not recorded.
};

// The events of `model` at `keep` as a model of their own.
TraceModel Materialize(const TraceModel& model, const std::vector<uint32_t>* keep) {
  TraceModel out;
  out.header = model.header;
  out.snapshot = model.snapshot;
  if (keep == nullptr) {
    out.events = model.events;
  } else {
    out.events.reserve(keep->size());
    for (uint32_t i : *keep) out.events.push_back(model.events[i]);
  }
  out.trailer.event_count = out.events.size();
  return out;
}

// Decides whether a candidate shows the finding. `keep` = nullptr: every event of `model`.
class Predicate {
 public:
  virtual ~Predicate() = default;
  virtual bool Test(const TraceModel& model, const std::vector<uint32_t>* keep) = 0;
};

// --- Divergence ---------------------------------------------------------------------------

struct DivergenceSignature {
  DivergenceKind kind = DivergenceKind::kOutcome;
  uint64_t seq = 0;
  uint32_t index = 0;
  Access access = Access::kRead;
  std::string expected, actual;
  bool match_values = true;

  bool Matches(const Divergence& d) const {
    return d.kind == kind && d.seq == seq && d.index == index && d.access == access &&
           (!match_values || (d.expected == expected && d.actual == actual));
  }
};

bool IsEventKind(DivergenceKind k) {
  return k != DivergenceKind::kFinalState && k != DivergenceKind::kNondeterministic &&
         k != DivergenceKind::kResume && k != DivergenceKind::kCount;
}

class DivergencePredicate : public Predicate {
 public:
  DivergencePredicate(DivergenceSignature sig, VolatilePolicy policy) : sig_(std::move(sig)) {
    options_.volatile_policy = policy;
    // Only the target event keeps its recording, so few divergences precede it.
    options_.max_divergences = 64;
  }
  bool Test(const TraceModel& model, const std::vector<uint32_t>* keep) override {
    ModelReader reader(model, keep);
    absl::StatusOr<ReplayResult> r = ReplayReader(reader, options_);
    if (!r.ok()) return false;
    for (const Divergence& d : r->divergences) {
      if (sig_.Matches(d)) return true;
    }
    return false;
  }

 private:
  DivergenceSignature sig_;
  ReplayOptions options_;
};

// --- Oracle -------------------------------------------------------------------------------

fuzz::OracleOptions ReduceOracleOptions(const TraceHeader& header) {
  fuzz::OracleOptions o;
  o.max_events = SIZE_MAX;
  if (const CpuProfile* p = FindProfile(header.cpu_profile)) {
    o.plain_storage = fuzz::PlainStorageTargets(MsrTable(*p));
  }
  return o;
}

class OraclePredicate : public Predicate {
 public:
  OraclePredicate(fuzz::Oracle oracle, const TraceHeader& header)
      : oracle_(oracle), runner_(fuzz::ReferenceEngineFactory(), ReduceOracleOptions(header)) {}
  bool Test(const TraceModel& model, const std::vector<uint32_t>* keep) override {
    const TraceModel candidate = Materialize(model, keep);
    absl::StatusOr<absl::optional<fuzz::OracleFailure>> f = runner_.Check(candidate);
    return f.ok() && f->has_value() && (*f)->oracle == oracle_;
  }

 private:
  fuzz::Oracle oracle_;
  fuzz::OracleRunner runner_;
};

// --- Crash of a fuzz target -----------------------------------------------------------------

std::string MaskNumbers(absl::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s.substr(i, 2) == "==" && i + 2 < s.size() && absl::ascii_isdigit(s[i + 2])) {
      size_t j = i + 2;  // "==1234==" (a sanitizer's pid tag) is dropped.
      while (j < s.size() && absl::ascii_isdigit(s[j])) ++j;
      if (s.substr(j, 2) == "==") {
        i = j + 2;
        continue;
      }
    }
    if (s.substr(i, 2) == "0x") {
      size_t j = i + 2;
      while (j < s.size() && absl::ascii_isxdigit(s[j])) ++j;
      out += "0x_";
      i = j;
    } else if (absl::ascii_isdigit(s[i])) {
      while (i < s.size() && absl::ascii_isdigit(s[i])) ++i;
      out += 'N';
    } else {
      out += s[i++];
    }
  }
  return out;
}

// The line of `report` containing `needle`, from the needle to the end of the line.
absl::optional<std::string> From(absl::string_view report, absl::string_view needle) {
  const size_t at = report.find(needle);
  if (at == absl::string_view::npos) return absl::nullopt;
  const size_t eol = report.find('\n', at);
  std::string line(report.substr(at, eol == absl::string_view::npos ? eol : eol - at));
  return line;
}

// Runs `argv` with stdout and stderr to `log`; returns false on timeout (the child is killed)
// or when it cannot be started.
bool RunWithTimeout(const std::vector<std::string>& args, const std::string& log,
                    double timeout_seconds) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;
  const Clock::time_point deadline =
      Clock::now() +
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_seconds));
  auto sleep = std::chrono::microseconds(200);
  int status = 0;
  while (true) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) return w == pid;
    if (Clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return false;
    }
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, std::chrono::microseconds(20000));
  }
}

std::string ReadFile(const std::string& path, size_t limit) {
  std::string out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  char buf[8192];
  size_t n = 0;
  while (out.size() < limit && (n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

class CrashPredicate : public Predicate {
 public:
  CrashPredicate(const ReduceTarget& target, std::string dir)
      : target_(target), dir_(std::move(dir)) {}

  // The signature the fuzz target reports for `model` ("" = none, or it did not finish).
  std::string SignatureOf(const TraceModel& model, const std::vector<uint32_t>* keep) {
    absl::StatusOr<std::string> bytes = fuzz::EncodeTrace(Materialize(model, keep));
    if (!bytes.ok()) return "";
    const std::string input = dir_ + "/candidate.trace";
    const std::string log = dir_ + "/candidate.log";
    {
      FILE* f = std::fopen(input.c_str(), "wb");
      if (f == nullptr) return "";
      const bool ok = std::fwrite(bytes->data(), 1, bytes->size(), f) == bytes->size();
      if (std::fclose(f) != 0 || !ok) return "";
    }
    std::vector<std::string> args = {target_.fuzz_target};
    args.insert(args.end(), target_.fuzz_args.begin(), target_.fuzz_args.end());
    args.push_back(input);
    if (!RunWithTimeout(args, log, target_.crash_timeout_seconds)) return "";
    return CrashSignature(ReadFile(log, 1 << 20));
  }
  void set_signature(std::string s) { signature_ = std::move(s); }
  bool Test(const TraceModel& model, const std::vector<uint32_t>* keep) override {
    return SignatureOf(model, keep) == signature_;
  }

 private:
  const ReduceTarget& target_;
  std::string dir_;
  std::string signature_;
};

// --- The search -----------------------------------------------------------------------------

class Search {
 public:
  Search(Predicate& predicate, const ReduceOptions& options)
      : predicate_(predicate), options_(options), start_(Clock::now()) {}

  double Elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  bool OutOfTime() {
    if (options_.max_seconds > 0 && Elapsed() >= options_.max_seconds) timed_out_ = true;
    return timed_out_;
  }
  bool Test(const TraceModel& model, const std::vector<uint32_t>* keep) {
    if (OutOfTime()) return false;
    ++tests_;
    Report(false);
    return predicate_.Test(model, keep);
  }
  void set_phase(const char* phase) { phase_ = phase; }
  void set_events(uint64_t n) {
    events_ = n;
    Report(true);
  }
  void Report(bool force) {
    if (!options_.progress) return;
    const double now = Elapsed();
    if (!force && now - last_report_ < 0.25) return;
    last_report_ = now;
    options_.progress(ReduceProgress{events_, tests_, now, phase_});
  }

  // ddmin over `items`: the smallest subset (1-minimal when not stopped by time) for which
  // test(subset) holds. REQUIRES: test(items).
  template <typename TestFn>
  std::vector<uint32_t> DDMin(std::vector<uint32_t> items, TestFn test) {
    if (items.empty()) return items;
    if (test(std::vector<uint32_t>{})) return {};
    size_t n = 2;
    std::vector<uint32_t> candidate;
    while (items.size() >= 2 && !OutOfTime()) {
      n = std::min(n, items.size());
      bool reduced = false;
      // Subsets first, then complements (for n == 2 they are the same sets).
      for (int pass = 0; pass < 2 && !reduced; ++pass) {
        if (pass == 1 && n == 2) break;
        for (size_t i = 0; i < n && !reduced; ++i) {
          const size_t lo = items.size() * i / n, hi = items.size() * (i + 1) / n;
          candidate.clear();
          if (pass == 0) {
            candidate.assign(items.begin() + lo, items.begin() + hi);
          } else {
            candidate.assign(items.begin(), items.begin() + lo);
            candidate.insert(candidate.end(), items.begin() + hi, items.end());
          }
          if (test(candidate)) {
            items.swap(candidate);
            n = pass == 0 ? 2 : std::max<size_t>(n - 1, 2);
            reduced = true;
          }
        }
      }
      if (reduced) continue;
      if (n >= items.size()) break;
      n = std::min(items.size(), n * 2);
    }
    return items;
  }

  uint64_t tests() const { return tests_; }
  bool timed_out() const { return timed_out_; }

 private:
  Predicate& predicate_;
  const ReduceOptions& options_;
  Clock::time_point start_;
  uint64_t tests_ = 0;
  uint64_t events_ = 0;
  double last_report_ = -1;
  const char* phase_ = "events";
  bool timed_out_ = false;
};

// One part of the snapshot that differs from the reset machine.
struct SnapshotPart {
  enum Kind : uint8_t { kVcpuRegs, kVcpuSlot, kVmSlot, kHandlerState, kPage } kind;
  uint32_t vcpu = 0;
  uint32_t slot = 0;  // Slot / handler position.
  uint64_t gpa = 0;
};

class SnapshotReducer {
 public:
  SnapshotReducer(const Snapshot& original, const Snapshot& reset)
      : original_(original), reset_(reset) {
    for (size_t j = 0; j < reset.vcpu_slot_names.size(); ++j) {
      reset_vcpu_slot_[reset.vcpu_slot_names[j]] = j;
    }
    for (size_t j = 0; j < reset.vm_slot_names.size(); ++j) {
      reset_vm_slot_[reset.vm_slot_names[j]] = j;
    }
    for (uint32_t v = 0; v < original.vcpus.size(); ++v) {
      const Vcpu* rv = ResetVcpu(v);
      if (rv == nullptr) continue;
      if (RegsDigest(original.vcpus[v].regs) != RegsDigest(ResetRegs(v))) {
        parts_.push_back({SnapshotPart::kVcpuRegs, v, 0, 0});
      }
      for (uint32_t j = 0; j < original.vcpus[v].slots.size(); ++j) {
        absl::optional<uint64_t> r = ResetVcpuSlot(v, j);
        if (r.has_value() && *r != original.vcpus[v].slots[j]) {
          parts_.push_back({SnapshotPart::kVcpuSlot, v, j, 0});
        }
      }
    }
    for (uint32_t j = 0; j < original.vm_slots.size(); ++j) {
      absl::optional<uint64_t> r = ResetVmSlot(j);
      if (r.has_value() && *r != original.vm_slots[j]) {
        parts_.push_back({SnapshotPart::kVmSlot, 0, j, 0});
      }
    }
    if (original.handler_states.size() == reset.handler_states.size()) {
      for (uint32_t j = 0; j < original.handler_states.size(); ++j) {
        if (original.handler_states[j] != reset.handler_states[j]) {
          parts_.push_back({SnapshotPart::kHandlerState, 0, j, 0});
        }
      }
    }
    for (uint64_t gpa : original.memory.PageAddresses()) {
      parts_.push_back({SnapshotPart::kPage, 0, 0, gpa});
    }
  }

  size_t size() const { return parts_.size(); }

  // The original snapshot with every part not in `keep` reset.
  void Build(const std::vector<uint32_t>& keep, Snapshot* out) const {
    *out = original_;
    std::vector<bool> kept(parts_.size(), false);
    for (uint32_t k : keep) kept[k] = true;
    out->memory.Clear();
    for (size_t i = 0; i < parts_.size(); ++i) {
      const SnapshotPart& p = parts_[i];
      if (p.kind == SnapshotPart::kPage) {
        if (kept[i]) {
          out->memory.SetPage(p.gpa, absl::MakeConstSpan(original_.memory.Page(p.gpa), kPageSize));
        }
        continue;
      }
      if (kept[i]) continue;
      switch (p.kind) {
        case SnapshotPart::kVcpuRegs:
          out->vcpus[p.vcpu].regs = ResetRegs(p.vcpu);
          break;
        case SnapshotPart::kVcpuSlot:
          out->vcpus[p.vcpu].slots[p.slot] = *ResetVcpuSlot(p.vcpu, p.slot);
          break;
        case SnapshotPart::kVmSlot:
          out->vm_slots[p.slot] = *ResetVmSlot(p.slot);
          break;
        case SnapshotPart::kHandlerState:
          out->handler_states[p.slot] = reset_.handler_states[p.slot];
          break;
        case SnapshotPart::kPage:
          break;
      }
    }
  }

 private:
  const Vcpu* ResetVcpu(uint32_t v) const {
    if (v < reset_.vcpus.size()) return &reset_.vcpus[v];
    return reset_.vcpus.empty() ? nullptr : &reset_.vcpus.back();
  }
  // Reset registers keep the vCPU's id-dependent parts from the reset machine.
  VcpuRegs ResetRegs(uint32_t v) const { return ResetVcpu(v)->regs; }
  absl::optional<uint64_t> ResetVcpuSlot(uint32_t v, uint32_t j) const {
    if (j >= original_.vcpu_slot_names.size()) return absl::nullopt;
    auto it = reset_vcpu_slot_.find(original_.vcpu_slot_names[j]);
    const Vcpu* rv = ResetVcpu(v);
    if (it == reset_vcpu_slot_.end() || rv == nullptr || it->second >= rv->slots.size()) {
      return absl::nullopt;
    }
    return rv->slots[it->second];
  }
  absl::optional<uint64_t> ResetVmSlot(uint32_t j) const {
    if (j >= original_.vm_slot_names.size()) return absl::nullopt;
    auto it = reset_vm_slot_.find(original_.vm_slot_names[j]);
    if (it == reset_vm_slot_.end() || it->second >= reset_.vm_slots.size()) return absl::nullopt;
    return reset_.vm_slots[it->second];
  }

  const Snapshot& original_;
  const Snapshot& reset_;
  absl::flat_hash_map<std::string, size_t> reset_vcpu_slot_, reset_vm_slot_;
  std::vector<SnapshotPart> parts_;
};

std::vector<uint32_t> Iota(size_t begin, size_t end) {
  std::vector<uint32_t> v;
  v.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) v.push_back(static_cast<uint32_t>(i));
  return v;
}

bool IsWrite(const ExitEvent& e) { return MsrAccessOf(e.exit) == Access::kWrite; }

// Phase 3: simpler values, one event at a time. `model` shows the finding on entry and exit.
void ReduceValues(Search& search, TraceModel* model) {
  for (size_t i = 0; i < model->events.size() && !search.OutOfTime(); ++i) {
    auto attempt = [&](auto change) {
      const ExitEvent saved = model->events[i];
      change(&model->events[i]);
      if (model->events[i].rcx == saved.rcx && model->events[i].rax == saved.rax &&
          model->events[i].rdx == saved.rdx) {
        return false;
      }
      if (search.Test(*model, nullptr)) return true;
      model->events[i] = saved;
      return false;
    };
    attempt([](ExitEvent* e) { e->rcx &= kLow32; });
    attempt([](ExitEvent* e) {
      e->rax &= kLow32;
      e->rdx &= kLow32;
    });
    if (!IsWrite(model->events[i])) {
      attempt([](ExitEvent* e) { e->rax = e->rdx = 0; });
      continue;
    }
    if (attempt([](ExitEvent* e) { e->rax = e->rdx = 0; })) continue;
    for (int bit = 63; bit >= 0 && !search.OutOfTime(); --bit) {
      ExitEvent& e = model->events[i];
      const uint64_t value = ((e.rdx & kLow32) << 32) | (e.rax & kLow32);
      if (((value >> bit) & 1) == 0) continue;
      attempt([bit](ExitEvent* ev) {
        if (bit >= 32) {
          ev->rdx &= ~(1ull << (bit - 32));
        } else {
          ev->rax &= ~(1ull << bit);
        }
      });
    }
  }
}

std::string DescribeDivergence(const Divergence& d) {
  std::string s = absl::StrFormat("%s at seq %u vcpu %u %s %s (%#x)", DivergenceKindName(d.kind),
                                  d.seq, d.vcpu_id, AccessName(d.access), d.msr_name, d.index);
  if (!d.expected.empty() || !d.actual.empty()) {
    absl::StrAppend(&s, ": expected ", d.expected, " actual ", d.actual);
  }
  return s;
}

}  // namespace

std::string CrashSignature(absl::string_view report) {
  absl::optional<std::string> line = From(report, "FAILED: ");
  if (line.has_value()) {  // "FAILED: <oracle>": the oracle name only.
    const size_t end = line->find_first_not_of("abcdefghijklmnopqrstuvwxyz-", 8);
    return line->substr(0, end);
  }
  line = From(report, "ERROR: AddressSanitizer: ");
  if (line.has_value()) {
    const size_t end = line->find(' ', 25);
    return MaskNumbers(line->substr(0, end));
  }
  for (absl::string_view needle :
       {"runtime error: ", "ERROR: LeakSanitizer: ", "ERROR: libFuzzer: ", "ERROR: "}) {
    line = From(report, needle);
    if (line.has_value()) return MaskNumbers(*line);
  }
  return "";
}

absl::StatusOr<TraceModel> LoadTrace(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> reader, TraceReader::Open(path));
  TraceModel out;
  out.header = reader->header();
  out.snapshot = reader->snapshot();
  ExitEvent event;
  while (true) {
    ASSIGN_OR_RETURN(bool more, reader->Next(&event));
    if (!more) break;
    out.events.push_back(event);
  }
  if (reader->end() == TraceEnd::kComplete) out.trailer = reader->trailer();
  return out;
}

absl::Status WriteTraceAtomically(const TraceModel& trace, const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  std::string tmp = dir + "/.msrtrace-reduce-XXXXXX";
  const int fd = mkstemp(tmp.data());
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot create a temp file in ", dir, ": ", std::strerror(errno)));
  }
  close(fd);
  TraceWriterOptions wo;
  wo.gzip = absl::EndsWith(path, ".gz");
  absl::Status st = [&]() -> absl::Status {
    TraceHeader header = trace.header;  // Host events from a writer before format 1.2 too.
    for (const ExitEvent& e : trace.events) header.host_events |= e.host_initiated;
    ASSIGN_OR_RETURN(std::unique_ptr<TraceWriter> w,
                     TraceWriter::Create(tmp, header, trace.snapshot, wo));
    for (const ExitEvent& e : trace.events) RETURN_IF_ERROR(w->Append(e));
    return w->Close(trace.trailer.final_state_digest);
  }();
  if (st.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    st = absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot rename the temp file: ", std::strerror(errno)));
  }
  if (!st.ok()) unlink(tmp.c_str());
  return st;
}

absl::StatusOr<ReduceResult> Reduce(const TraceModel& trace, const ReduceTarget& target,
                                    const ReduceOptions& options) {
  ReduceResult result;
  result.events_before = trace.events.size();
  TraceModel model = trace;
  model.trailer = TraceTrailer{};
  model.trailer.event_count = model.events.size();

  std::unique_ptr<Predicate> predicate;
  std::unique_ptr<char, void (*)(char*)> temp_dir(nullptr, [](char* d) {
    const std::string cmd = absl::StrCat("rm -rf '", d, "'");
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "reduce: cannot remove %s\n", d);
    std::free(d);
  });
  // For a divergence: position of the target event (always kept) and the events before it.
  absl::optional<size_t> pinned;

  switch (target.kind) {
    case FindingKind::kDivergence: {
      if (target.divergence.has_value() && !IsEventKind(*target.divergence)) {
        return absl::InvalidArgumentError(
            absl::StrCat("divergence kind ", DivergenceKindName(*target.divergence),
                         " belongs to the whole trace, not an event: it cannot be reduced"));
      }
      ReplayOptions ro;
      ro.volatile_policy = target.volatile_policy;
      ro.max_divergences = UINT32_MAX;
      ModelReader reader(model, nullptr);
      ASSIGN_OR_RETURN(ReplayResult r, ReplayReader(reader, ro));
      const Divergence* found = nullptr;
      for (const Divergence& d : r.divergences) {
        if (!IsEventKind(d.kind)) continue;
        if (target.divergence.has_value() && d.kind != *target.divergence) continue;
        if (target.msr_index.has_value() && d.index != *target.msr_index) continue;
        found = &d;
        break;
      }
      if (found == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the trace does not show the divergence to preserve (it has ", r.divergence_count,
            " divergence(s)",
            r.divergences.empty()
                ? std::string()
                : absl::StrCat(", the first: ", DescribeDivergence(r.divergences.front())),
            ")"));
      }
      DivergenceSignature sig{found->kind,     found->seq,    found->index,       found->access,
                              found->expected, found->actual, target.match_values};
      result.finding = DescribeDivergence(*found);
      size_t pos = 0;
      while (pos < model.events.size() && model.events[pos].seq != found->seq) ++pos;
      if (pos == model.events.size()) {
        return absl::InternalError("the divergent event is not in the trace");
      }
      model.events.resize(pos + 1);  // Later events cannot change an earlier exit.
      for (size_t i = 0; i < pos; ++i) fuzz::ClearOutcome(&model.events[i]);
      pinned = pos;
      predicate = std::make_unique<DivergencePredicate>(std::move(sig), target.volatile_policy);
      break;
    }
    case FindingKind::kOracle: {
      fuzz::OracleRunner runner(fuzz::ReferenceEngineFactory(), ReduceOracleOptions(model.header));
      ASSIGN_OR_RETURN(absl::optional<fuzz::OracleFailure> f, runner.Check(model));
      if (!f.has_value() || (target.oracle.has_value() && f->oracle != *target.oracle)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the trace does not fail oracle ",
            target.oracle.has_value() ? fuzz::OracleName(*target.oracle) : "(any)",
            f.has_value() ? absl::StrCat(" (it fails ", fuzz::OracleName(f->oracle), ")")
                          : std::string(" (every oracle holds)")));
      }
      result.finding = absl::StrCat("oracle ", fuzz::OracleName(f->oracle), " at event ", f->event,
                                    ": ", f->detail);
      predicate = std::make_unique<OraclePredicate>(f->oracle, model.header);
      break;
    }
    case FindingKind::kCrash: {
      if (access(target.fuzz_target.c_str(), X_OK) != 0) {
        return absl::NotFoundError(
            absl::StrCat(target.fuzz_target, ": not an executable fuzz target"));
      }
      const char* tmpdir = std::getenv("TMPDIR");
      std::string templ = absl::StrCat(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp",
                                       "/msrtrace-reduce-XXXXXX");
      if (mkdtemp(templ.data()) == nullptr) {
        return absl::InternalError(
            absl::StrCat("cannot create a temp dir: ", std::strerror(errno)));
      }
      temp_dir.reset(strdup(templ.c_str()));
      auto crash = std::make_unique<CrashPredicate>(target, templ);
      const std::string original = crash->SignatureOf(model, nullptr);
      const std::string want = target.signature.empty() ? original : target.signature;
      if (want.empty() || original != want) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the fuzz target does not report ", want.empty() ? "a crash" : want, " on the trace",
            original.empty() ? "" : absl::StrCat(" (it reports: ", original, ")")));
      }
      crash->set_signature(want);
      result.finding = absl::StrCat("crash of ", target.fuzz_target, ": ", want);
      predicate = std::move(crash);
      break;
    }
  }

  Search search(*predicate, options);

  // Phase 1: events.
  search.set_phase("events");
  search.set_events(model.events.size());
  {
    const size_t free_end = pinned.has_value() ? *pinned : model.events.size();
    std::vector<uint32_t> keep;
    std::vector<uint32_t> kept =
        search.DDMin(Iota(0, free_end), [&](const std::vector<uint32_t>& c) {
          keep.assign(c.begin(), c.end());
          if (pinned.has_value()) keep.push_back(static_cast<uint32_t>(*pinned));
          const bool ok = search.Test(model, &keep);
          if (ok) search.set_events(keep.size());
          return ok;
        });
    if (pinned.has_value()) kept.push_back(static_cast<uint32_t>(*pinned));
    model = Materialize(model, &kept);
    search.set_events(model.events.size());
  }

  // Phase 2: snapshot parts, then the vCPU count.
  if (options.reduce_snapshot && !search.OutOfTime()) {
    search.set_phase("snapshot");
    absl::StatusOr<std::unique_ptr<Machine>> machine = BuildMachine(model.header);
    if (machine.ok()) {
      const Snapshot reset =
          CaptureSnapshot(*(*machine)->controller, (*machine)->vcpus, (*machine)->memory);
      const Snapshot original = model.snapshot;
      SnapshotReducer reducer(original, reset);
      result.snapshot_parts_before = reducer.size();
      TraceModel candidate = model;
      std::vector<uint32_t> parts =
          search.DDMin(Iota(0, reducer.size()), [&](const std::vector<uint32_t>& keep) {
            reducer.Build(keep, &candidate.snapshot);
            return search.Test(candidate, nullptr);
          });
      reducer.Build(parts, &model.snapshot);
      result.snapshot_parts_after = parts.size();
    }
    uint32_t max_vcpu = 0;
    for (const ExitEvent& e : model.events) max_vcpu = std::max(max_vcpu, e.vcpu_id);
    bool ids_are_positions = true;
    for (uint32_t v = 0; v < model.snapshot.vcpus.size(); ++v) {
      ids_are_positions = ids_are_positions && model.snapshot.vcpus[v].id == v;
    }
    if (ids_are_positions && model.header.vcpu_count > max_vcpu + 1 &&
        model.snapshot.vcpus.size() == model.header.vcpu_count) {
      TraceModel candidate = model;
      candidate.header.vcpu_count = max_vcpu + 1;
      candidate.snapshot.vcpus.resize(max_vcpu + 1);
      if (search.Test(candidate, nullptr)) model = std::move(candidate);
    }
  }

  // Phase 3: values.
  if (options.reduce_values && !search.OutOfTime()) {
    search.set_phase("values");
    ReduceValues(search, &model);
  }

  model.trailer = TraceTrailer{};
  model.trailer.event_count = model.events.size();
  result.events_after = model.events.size();
  result.tests = search.tests();
  result.seconds = search.Elapsed();
  result.timed_out = search.timed_out();
  search.set_phase("done");
  search.Report(true);
  result.trace = std::move(model);
  return result;
}

}  // namespace msrtrace::triage
