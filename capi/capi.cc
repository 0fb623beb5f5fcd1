// The C API (include/msrtrace/msrtrace.h) over the C++ library. Every entry point converts its
// arguments, calls the C++ API and converts the result back; absl::Status becomes a status code
// plus a message in the caller's buffer. Nothing here throws (the library builds with
// -fno-exceptions) and no C++ type escapes.
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "fuzz/fuzz_setup.h"
#include "fuzz/oracles.h"
#include "fuzz/trace_mutator.h"
#include "handlers/cpu_profile.h"
#include "handlers/handler_set.h"
#include "harness/core/controller.h"
#include "harness/core/dir_walk.h"
#include "harness/core/msr_handler.h"
#include "harness/core/status_macros.h"
#include "harness/replay/recorder.h"
#include "harness/replay/replay.h"
#include "harness/trace/trace_file.h"
#include "msrtrace/msrtrace.h"

// ---- Opaque types -----------------------------------------------------------------------------

namespace msrtrace {
namespace capi {

struct MsrEntry {
  uint32_t first = 0;
  uint32_t last = 0;
  std::string name;
  msrtrace_read_fn read = nullptr;
  msrtrace_write_fn write = nullptr;
  void* ctx = nullptr;
};

// A handler set as the C API describes it. Immutable once registered or installed.
struct SetDef {
  const HandlerSetDef* base = nullptr;
  std::vector<uint32_t> base_indices;  // The base's indices on the default profile (sorted).
  std::vector<SlotInfo> vcpu_slots;
  std::vector<SlotInfo> vm_slots;
  std::vector<MsrEntry> msrs;
};

// The controller slot ids of one installation of a SetDef, by C slot number.
struct SlotMap {
  std::vector<SlotId> vcpu;
  std::vector<SlotId> vm;
};

}  // namespace capi
}  // namespace msrtrace

struct msrtrace_handler_set {
  msrtrace::capi::SetDef def;
};

struct msrtrace_access {
  msrtrace::ExitContext* ctx;
  const msrtrace::capi::SlotMap* slots;
};

struct msrtrace_controller {
  std::unique_ptr<msrtrace::Machine> machine;
  std::string set_name;  // The registered name; empty for an unregistered set.
};

struct msrtrace_recorder {
  msrtrace_controller* controller = nullptr;
  std::unique_ptr<msrtrace::Recorder> recorder;
  bool closed = false;
};

struct msrtrace_fuzzer {
  std::string set_name;
  std::unique_ptr<msrtrace::fuzz::TraceMutator> mutator;
  std::unique_ptr<msrtrace::fuzz::OracleRunner> runner;
  // Handler count of the set per CPU profile (for running traces of the set's base).
  absl::flat_hash_map<std::string, size_t> handler_counts;
};

namespace msrtrace {
namespace capi {
namespace {

constexpr size_t kMaxRegisteredSets = 64;

void WriteMessage(char* err, size_t err_len, absl::string_view message) {
  if (err == nullptr || err_len == 0) return;
  const size_t n = std::min(err_len - 1, message.size());
  if (n > 0) std::memcpy(err, message.data(), n);  // An empty view's data() may be null.
  err[n] = '\0';
}

int CodeOf(const absl::Status& st) {
  if (st.ok()) return MSRTRACE_OK;
  if (IsExitNotHandled(st)) return MSRTRACE_NOT_HANDLED;
  switch (st.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return MSRTRACE_INVALID_ARGUMENT;
    case absl::StatusCode::kNotFound:
      return MSRTRACE_NOT_FOUND;
    case absl::StatusCode::kAlreadyExists:
      return MSRTRACE_ALREADY_EXISTS;
    case absl::StatusCode::kFailedPrecondition:
      return MSRTRACE_FAILED_PRECONDITION;
    case absl::StatusCode::kDataLoss:
      return MSRTRACE_DATA_LOSS;
    case absl::StatusCode::kResourceExhausted:
      return MSRTRACE_RESOURCE_EXHAUSTED;
    default:
      return MSRTRACE_INTERNAL;
  }
}

int Fail(const absl::Status& st, char* err, size_t err_len) {
  WriteMessage(err, err_len, st.message());
  return CodeOf(st);
}

int Fail(int code, absl::string_view message, char* err, size_t err_len) {
  WriteMessage(err, err_len, message);
  return code;
}

// ---- Callback handlers ----------------------------------------------------------------------

class CallbackHandler : public MsrHandler {
 public:
  CallbackHandler(const MsrEntry& entry, std::shared_ptr<const SlotMap> slots)
      : entry_(entry), slots_(std::move(slots)) {}

  absl::StatusOr<MsrResult> Read(uint32_t index, ExitContext& ctx) override {
    if (entry_.read == nullptr) return MsrResult::Gp();  // Write-only MSR.
    msrtrace_access access{&ctx, slots_.get()};
    uint64_t value = 0;
    const int verdict = entry_.read(entry_.ctx, &access, index, &value);  // Before reading value.
    return Verdict(verdict, index, value);
  }
  absl::StatusOr<MsrResult> Write(uint32_t index, uint64_t value, ExitContext& ctx) override {
    if (entry_.write == nullptr) return MsrResult::Gp();  // Read-only MSR.
    msrtrace_access access{&ctx, slots_.get()};
    return Verdict(entry_.write(entry_.ctx, &access, index, value), index, 0);
  }
  absl::string_view MsrName(uint32_t /*index*/) const override { return entry_.name; }

 private:
  absl::StatusOr<MsrResult> Verdict(int verdict, uint32_t index, uint64_t value) const {
    switch (verdict) {
      case MSRTRACE_VERDICT_OK:
        return MsrResult::Ok(value);
      case MSRTRACE_VERDICT_GP:
        return MsrResult::Gp();
      case MSRTRACE_VERDICT_UNSUPPORTED:
        return MsrResult::Unsupported();
      case MSRTRACE_VERDICT_VMM_ERROR:
        return absl::InternalError(
            absl::StrFormat("C handler '%s' (MSR %#x) reported a VMM error", entry_.name, index));
      default:
        return absl::InternalError(absl::StrFormat(
            "C handler '%s' (MSR %#x) returned invalid verdict %d", entry_.name, index, verdict));
    }
  }

  MsrEntry entry_;
  std::shared_ptr<const SlotMap> slots_;
};

absl::Status InstallSet(const SetDef& def, Controller& controller, const CpuProfile& profile) {
  if (def.base != nullptr) RETURN_IF_ERROR(def.base->install(controller, profile));
  auto slots = std::make_shared<SlotMap>();
  StateLayout& layout = controller.layout();
  for (const SlotInfo& s : def.vcpu_slots) {
    if (layout.FindVcpuSlot(s.name) >= 0) {
      return absl::AlreadyExistsError(absl::StrCat("per-vCPU slot '", s.name, "' is taken"));
    }
    slots->vcpu.push_back(layout.AddVcpuSlot(s.name, s.reset));
  }
  for (const SlotInfo& s : def.vm_slots) {
    if (layout.FindVmSlot(s.name) >= 0) {
      return absl::AlreadyExistsError(absl::StrCat("VM-wide slot '", s.name, "' is taken"));
    }
    slots->vm.push_back(layout.AddVmSlot(s.name, s.reset));
  }
  for (const MsrEntry& e : def.msrs) {
    MsrHandler* h = controller.Adopt(std::make_unique<CallbackHandler>(e, slots));
    if (!controller.InsertRange(e.first, e.last, h)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("C handler '%s' at [%#x, %#x]: an index is taken on CPU profile '%s'",
                          e.name, e.first, e.last, profile.name));
    }
  }
  return absl::OkStatus();
}

// ---- Registered sets: one install trampoline per registry entry ------------------------------
// HandlerSetDef::install is a plain function pointer, so each registered C set gets its own
// instantiation of InstallRegistered<N>, which finds its definition in a fixed table.

absl::Mutex g_register_mu;
std::array<const SetDef*, kMaxRegisteredSets> g_registered ABSL_GUARDED_BY(g_register_mu) = {};
size_t g_registered_count ABSL_GUARDED_BY(g_register_mu) = 0;

template <size_t N>
absl::Status InstallRegistered(Controller& controller, const CpuProfile& profile) {
  const SetDef* def;
  {
    absl::MutexLock lock(&g_register_mu);
    def = g_registered[N];
  }
  if (def == nullptr) return absl::InternalError("C handler set table entry is empty");
  return InstallSet(*def, controller, profile);
}

using InstallFn = absl::Status (*)(Controller&, const CpuProfile&);

template <size_t... N>
constexpr std::array<InstallFn, sizeof...(N)> MakeTrampolines(std::index_sequence<N...>) {
  return {{&InstallRegistered<N>...}};
}
constexpr std::array<InstallFn, kMaxRegisteredSets> kTrampolines =
    MakeTrampolines(std::make_index_sequence<kMaxRegisteredSets>());

// ---- Running traces of a base set on an extending set -----------------------------------------

// The number of handlers `set_name` installs on `profile_name`.
absl::StatusOr<size_t> HandlerCount(const std::string& set_name, const std::string& profile_name,
                                    UnknownMsrPolicy policy) {
  TraceHeader h;
  h.handler_set = set_name;
  h.cpu_profile = profile_name;
  h.unknown_msr_policy = policy;
  h.vcpu_count = 0;
  ASSIGN_OR_RETURN(std::unique_ptr<Machine> m, BuildMachine(h));
  return m->controller->handlers().size();
}

// Makes a trace recorded on the set its header names run on `target`, which must extend it:
// the target's extra handlers (installed after the base's) start with empty state.
absl::Status Retarget(const std::string& target, size_t target_handlers, TraceHeader* header,
                      Snapshot* snapshot) {
  if (snapshot->handler_states.size() > target_handlers) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "handler set '%s' (%u handlers) does not extend the trace's set '%s' (%u handlers)", target,
        target_handlers, header->handler_set, snapshot->handler_states.size()));
  }
  snapshot->handler_states.resize(target_handlers);
  header->handler_set = target;
  return absl::OkStatus();
}

// A TraceReader that presents another reader's trace as recorded on an extending set.
class RetargetReader : public TraceReader {
 public:
  static absl::StatusOr<std::unique_ptr<TraceReader>> Open(const std::string& path,
                                                           const std::string& target) {
    ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> inner, TraceReader::Open(path));
    if (inner->header().handler_set == target) return inner;
    auto r = std::unique_ptr<RetargetReader>(new RetargetReader(std::move(inner)));
    ASSIGN_OR_RETURN(size_t count,
                     HandlerCount(target, r->header_.cpu_profile, r->header_.unknown_msr_policy));
    RETURN_IF_ERROR(Retarget(target, count, &r->header_, &r->snapshot_));
    return std::unique_ptr<TraceReader>(std::move(r));
  }

  const TraceHeader& header() const override { return header_; }
  const Snapshot& snapshot() const override { return snapshot_; }
  absl::StatusOr<bool> Next(ExitEvent* event) override { return inner_->Next(event); }
  TraceEnd end() const override { return inner_->end(); }
  // The recorded final digest covers the other set's state: not comparable.
  const TraceTrailer& trailer() const override {
    trailer_ = inner_->trailer();
    trailer_.final_state_digest = 0;
    return trailer_;
  }
  uint64_t offset() const override { return inner_->offset(); }
  uint64_t records() const override { return inner_->records(); }

 private:
  explicit RetargetReader(std::unique_ptr<TraceReader> inner)
      : inner_(std::move(inner)), header_(inner_->header()), snapshot_(inner_->snapshot()) {}

  std::unique_ptr<TraceReader> inner_;
  TraceHeader header_;
  Snapshot snapshot_;
  mutable TraceTrailer trailer_;
};

absl::StatusOr<ReplayResult> ReplayOnce(const std::string& path, const std::string& target,
                                        uint64_t resume_after) {
  std::unique_ptr<TraceReader> reader;
  if (target.empty()) {
    ASSIGN_OR_RETURN(reader, TraceReader::Open(path));
  } else {
    ASSIGN_OR_RETURN(reader, RetargetReader::Open(path, target));
  }
  ReplayOptions options;
  options.max_divergences = 1;
  options.resume_after = resume_after;
  return ReplayReader(*reader, options);
}

std::string DescribeDivergence(const Divergence& d) {
  std::string s = absl::StrFormat("seq %u vcpu %u %s %s (%#x): %s: expected %s, actual %s", d.seq,
                                  d.vcpu_id, AccessName(d.access), d.msr_name, d.index,
                                  DivergenceKindName(d.kind), d.expected, d.actual);
  if (!d.reg_diff.empty()) absl::StrAppend(&s, " ", d.reg_diff);
  return s;
}

// ---- Conversions ------------------------------------------------------------------------------

absl::StatusOr<Exit> ToExit(const msrtrace_exit* in) {
  if (in == nullptr) return absl::InvalidArgumentError("exit is NULL");
  if (in->vendor != MSRTRACE_VENDOR_INTEL_VMX && in->vendor != MSRTRACE_VENDOR_AMD_SVM) {
    return absl::InvalidArgumentError(absl::StrCat("unknown exit vendor ", in->vendor));
  }
  if (in->instruction_length < 1 || in->instruction_length > 15) {
    return absl::InvalidArgumentError(
        absl::StrCat("instruction length ", in->instruction_length, " is not in 1..15"));
  }
  Exit e;
  e.vendor = static_cast<Vendor>(in->vendor);
  e.reason = in->reason;
  e.info1 = in->info1;
  e.instruction_length = static_cast<uint8_t>(in->instruction_length);
  e.host_tsc = in->host_tsc;
  e.host_wall_ns = in->host_wall_ns;
  return e;
}

void ToRegs(const msrtrace_regs& in, VcpuRegs* out) {
  for (int i = 0; i < kNumGprs; ++i) out->gpr[i] = in.gpr[i];
  out->rip = in.rip;
  out->rflags = in.rflags;
  out->cr0 = in.cr0;
  out->cr4 = in.cr4;
  out->efer = in.efer;
  out->cs_l = in.cs_l != 0;
  out->interruptibility = in.interruptibility;
  // No pending exception means none at all: stale vector/error-code fields of a delivered
  // exception are not state (they would otherwise enter the state digest).
  out->pending = {};
  if (in.pending_valid != 0) {
    out->pending.valid = true;
    out->pending.vector = static_cast<uint8_t>(in.pending_vector);
    out->pending.has_error_code = in.pending_has_error_code != 0;
    out->pending.error_code = in.pending_error_code;
    out->pending.payload = in.pending_payload;
  }
}

void FromRegs(const VcpuRegs& in, msrtrace_regs* out) {
  for (int i = 0; i < kNumGprs; ++i) out->gpr[i] = in.gpr[i];
  out->rip = in.rip;
  out->rflags = in.rflags;
  out->cr0 = in.cr0;
  out->cr4 = in.cr4;
  out->efer = in.efer;
  out->cs_l = in.cs_l ? 1 : 0;
  out->interruptibility = in.interruptibility;
  out->pending_valid = in.pending.valid ? 1 : 0;
  out->pending_vector = in.pending.vector;
  out->pending_has_error_code = in.pending.has_error_code ? 1 : 0;
  out->pending_error_code = in.pending.error_code;
  out->pending_payload = in.pending.payload;
}

void FromOutcome(const Outcome& in, msrtrace_outcome* out) {
  if (out == nullptr) return;
  out->kind = static_cast<uint32_t>(in.kind);  // Outcome::Kind values equal MSRTRACE_OUTCOME_*.
  out->is_write = in.access == Access::kWrite ? 1 : 0;
  out->index = in.index;
  out->unknown_msr = in.unknown_msr ? 1 : 0;
  out->value = in.value;
}

absl::StatusOr<UnknownMsrPolicy> ToPolicy(int policy) {
  switch (policy) {
    case MSRTRACE_POLICY_INJECT_GP:
      return UnknownMsrPolicy::kInjectGp;
    case MSRTRACE_POLICY_IGNORE:
      return UnknownMsrPolicy::kIgnore;
    case MSRTRACE_POLICY_FAIL:
      return UnknownMsrPolicy::kFail;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown unknown-MSR policy ", policy));
  }
}

absl::StatusOr<const CpuProfile*> ToProfile(const char* name) {
  if (name == nullptr) return &DefaultProfile();
  const CpuProfile* p = FindProfile(name);
  if (p == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown CPU profile '", name, "'"));
  }
  return p;
}

// Runs one exit of `c` through `handle` (the controller's or a recorder's Handle).
template <typename HandleFn>
int HandleExit(msrtrace_controller* c, uint32_t vcpu_id, const msrtrace_exit* exit,
               msrtrace_regs* regs, msrtrace_outcome* out, char* err, size_t err_len,
               HandleFn handle) {
  if (c == nullptr || regs == nullptr) {
    return Fail(MSRTRACE_INVALID_ARGUMENT, "controller or regs is NULL", err, err_len);
  }
  absl::StatusOr<Exit> e = ToExit(exit);
  if (!e.ok()) return Fail(e.status(), err, err_len);
  Vcpu* vcpu = c->machine->FindVcpu(vcpu_id);
  if (vcpu == nullptr) {
    return Fail(MSRTRACE_INVALID_ARGUMENT, absl::StrCat("no vCPU ", vcpu_id), err, err_len);
  }
  ToRegs(*regs, &vcpu->regs);
  absl::StatusOr<Outcome> o = handle(*e, *vcpu, c->machine->memory);
  if (!o.ok()) return Fail(o.status(), err, err_len);  // Registers unchanged on error.
  FromRegs(vcpu->regs, regs);
  FromOutcome(*o, out);
  return MSRTRACE_OK;
}

// A file is itself; a directory stands for the *.trace / *.trace.gz files under it, by the
// walker's rules (harness/core/dir_walk.h). An unreadable directory adds nothing.
std::vector<std::string> ExpandSeeds(const char* const* paths, size_t count) {
  std::vector<std::string> out;
  DirWalker walker([](const std::string& name) {
    return absl::EndsWith(name, ".trace") || absl::EndsWith(name, ".trace.gz");
  });
  for (size_t i = 0; i < count; ++i) {
    if (paths[i] == nullptr) continue;
    std::error_code ec;
    if (!std::filesystem::is_directory(paths[i], ec)) {
      out.emplace_back(paths[i]);
      continue;
    }
    std::vector<std::string> problems;
    walker.Walk(paths[i], &out, &problems);
  }
  return out;
}

// Decodes a fuzz input and makes it run on the fuzzer's set. False: skip the input.
bool PrepareInput(msrtrace_fuzzer* f, absl::string_view bytes, fuzz::TraceModel* trace) {
  absl::StatusOr<fuzz::TraceModel> t = fuzz::DecodeTrace(bytes, f->mutator->config().max_events);
  if (!t.ok()) return false;
  *trace = *std::move(t);
  if (trace->header.handler_set == f->set_name) return true;
  auto it = f->handler_counts.find(trace->header.cpu_profile);
  if (it == f->handler_counts.end()) {
    absl::StatusOr<size_t> n =
        HandlerCount(f->set_name, trace->header.cpu_profile, UnknownMsrPolicy::kInjectGp);
    if (!n.ok()) return false;
    it = f->handler_counts.emplace(trace->header.cpu_profile, *n).first;
  }
  trace->trailer.final_state_digest = 0;
  return Retarget(f->set_name, it->second, &trace->header, &trace->snapshot).ok();
}

int CheckInput(msrtrace_fuzzer* f, const fuzz::TraceModel& trace, char* report, size_t report_len) {
  absl::StatusOr<absl::optional<fuzz::OracleFailure>> failure = f->runner->Check(trace);
  if (!failure.ok() || !failure->has_value()) return MSRTRACE_OK;
  WriteMessage(
      report, report_len,
      fuzz::FormatFailure(**failure, trace, absl::StrCat("msrtrace_fuzzer(", f->set_name, ")")));
  return MSRTRACE_FINDING;
}

}  // namespace
}  // namespace capi
}  // namespace msrtrace

// ---- The C entry points -----------------------------------------------------------------------

using msrtrace::capi::Fail;

extern "C" {

const char* msrtrace_status_name(int status) {
  switch (status) {
    case MSRTRACE_OK:
      return "ok";
    case MSRTRACE_INVALID_ARGUMENT:
      return "invalid-argument";
    case MSRTRACE_NOT_FOUND:
      return "not-found";
    case MSRTRACE_ALREADY_EXISTS:
      return "already-exists";
    case MSRTRACE_FAILED_PRECONDITION:
      return "failed-precondition";
    case MSRTRACE_DATA_LOSS:
      return "data-loss";
    case MSRTRACE_NOT_HANDLED:
      return "not-handled";
    case MSRTRACE_DIVERGED:
      return "diverged";
    case MSRTRACE_FINDING:
      return "finding";
    case MSRTRACE_RESOURCE_EXHAUSTED:
      return "resource-exhausted";
    case MSRTRACE_INTERNAL:
      return "internal";
    default:
      return "unknown-status";
  }
}

// --- Access ---

uint32_t msrtrace_access_vcpu_id(const msrtrace_access* a) { return a->ctx->vcpu_id(); }
int msrtrace_access_host_initiated(const msrtrace_access* a) {
  return a->ctx->host_initiated() ? 1 : 0;
}
uint64_t msrtrace_access_host_tsc(const msrtrace_access* a) { return a->ctx->exit().host_tsc; }
uint64_t msrtrace_access_host_wall_ns(const msrtrace_access* a) {
  return a->ctx->exit().host_wall_ns;
}
uint64_t msrtrace_access_get_slot(const msrtrace_access* a, uint32_t slot) {
  return a->ctx->slot(a->slots->vcpu[slot]);
}
void msrtrace_access_set_slot(msrtrace_access* a, uint32_t slot, uint64_t value) {
  a->ctx->slot(a->slots->vcpu[slot]) = value;
}
uint64_t msrtrace_access_get_vm_slot(const msrtrace_access* a, uint32_t slot) {
  return a->ctx->vm_slot(a->slots->vm[slot]);
}
void msrtrace_access_set_vm_slot(msrtrace_access* a, uint32_t slot, uint64_t value) {
  a->ctx->vm_slot(a->slots->vm[slot]) = value;
}
int msrtrace_access_read_guest(const msrtrace_access* a, uint64_t gpa, void* dst, size_t len) {
  return a->ctx->ReadGuest(gpa, dst, len) ? 1 : 0;
}
int msrtrace_access_write_guest(msrtrace_access* a, uint64_t gpa, const void* src, size_t len) {
  return a->ctx->WriteGuest(gpa, src, len) ? 1 : 0;
}

// --- Handler sets ---

msrtrace_handler_set* msrtrace_handler_set_create(const char* base, char* err, size_t err_len) {
  auto set = std::make_unique<msrtrace_handler_set>();
  if (base != nullptr) {
    // A C set may be created from a load-time constructor, before C++ static initializers of
    // other translation units ran: register the built-in sets now (idempotent).
    msrtrace::RegisterBuiltinHandlerSets();
    set->def.base = msrtrace::FindHandlerSet(base);
    if (set->def.base == nullptr) {
      Fail(MSRTRACE_NOT_FOUND, absl::StrCat("unknown handler set '", base, "'"), err, err_len);
      return nullptr;
    }
    msrtrace::Controller probe;
    absl::Status st = set->def.base->install(probe, msrtrace::DefaultProfile());
    if (!st.ok()) {
      Fail(st, err, err_len);
      return nullptr;
    }
    set->def.base_indices = probe.RegisteredIndices();
  }
  return set.release();
}

void msrtrace_handler_set_destroy(msrtrace_handler_set* set) { delete set; }

static int AddSlot(std::vector<msrtrace::SlotInfo>* slots, const char* name, uint64_t reset,
                   uint32_t* slot, char* err, size_t err_len) {
  if (name == nullptr || slot == nullptr) {
    return Fail(MSRTRACE_INVALID_ARGUMENT, "slot name or result pointer is NULL", err, err_len);
  }
  for (const msrtrace::SlotInfo& s : *slots) {
    if (s.name == name) {
      return Fail(MSRTRACE_ALREADY_EXISTS, absl::StrCat("slot '", name, "' is taken"), err,
                  err_len);
    }
  }
  *slot = static_cast<uint32_t>(slots->size());
  slots->push_back(msrtrace::SlotInfo{name, reset});
  return MSRTRACE_OK;
}

int msrtrace_handler_set_add_vcpu_slot(msrtrace_handler_set* set, const char* name, uint64_t reset,
                                       uint32_t* slot, char* err, size_t err_len) {
  if (set == nullptr) return Fail(MSRTRACE_INVALID_ARGUMENT, "set is NULL", err, err_len);
  return AddSlot(&set->def.vcpu_slots, name, reset, slot, err, err_len);
}

int msrtrace_handler_set_add_vm_slot(msrtrace_handler_set* set, const char* name, uint64_t reset,
                                     uint32_t* slot, char* err, size_t err_len) {
  if (set == nullptr) return Fail(MSRTRACE_INVALID_ARGUMENT, "set is NULL", err, err_len);
  return AddSlot(&set->def.vm_slots, name, reset, slot, err, err_len);
}

int msrtrace_handler_set_add_msr(msrtrace_handler_set* set, uint32_t first, uint32_t last,
                                 const char* name, msrtrace_read_fn read, msrtrace_write_fn write,
                                 void* ctx, char* err, size_t err_len) {
  if (set == nullptr) return Fail(MSRTRACE_INVALID_ARGUMENT, "set is NULL", err, err_len);
  if (first > last) {
    return Fail(MSRTRACE_INVALID_ARGUMENT,
                absl::StrFormat("range [%#x, %#x] is empty", first, last), err, err_len);
  }
  for (const msrtrace::capi::MsrEntry& e : set->def.msrs) {
    if (first <= e.last && e.first <= last) {
      return Fail(MSRTRACE_ALREADY_EXISTS,
                  absl::StrFormat("[%#x, %#x] overlaps '%s' at [%#x, %#x]", first, last, e.name,
                                  e.first, e.last),
                  err, err_len);
    }
  }
  const std::vector<uint32_t>& base = set->def.base_indices;
  auto it = std::lower_bound(base.begin(), base.end(), first);
  if (it != base.end() && *it <= last) {
    return Fail(
        MSRTRACE_ALREADY_EXISTS,
        absl::StrFormat("MSR %#x is taken by the base handler set '%s'", *it, set->def.base->name),
        err, err_len);
  }
  msrtrace::capi::MsrEntry e;
  e.first = first;
  e.last = last;
  e.name = name != nullptr ? name : absl::StrFormat("MSR_%#x", first);
  e.read = read;
  e.write = write;
  e.ctx = ctx;
  set->def.msrs.push_back(std::move(e));
  return MSRTRACE_OK;
}

int msrtrace_handler_set_register(const msrtrace_handler_set* set, const char* name,
                                  const char* description, char* err, size_t err_len) {
  using msrtrace::capi::g_register_mu;
  using msrtrace::capi::g_registered;
  using msrtrace::capi::g_registered_count;
  if (set == nullptr || name == nullptr || name[0] == '\0') {
    return Fail(MSRTRACE_INVALID_ARGUMENT, "set or name is NULL or empty", err, err_len);
  }
  absl::MutexLock lock(&g_register_mu);
  if (msrtrace::FindHandlerSet(name) != nullptr) {
    return Fail(MSRTRACE_ALREADY_EXISTS, absl::StrCat("handler set '", name, "' exists"), err,
                err_len);
  }
  if (g_registered_count == msrtrace::capi::kMaxRegisteredSets) {
    return Fail(MSRTRACE_RESOURCE_EXHAUSTED,
                absl::StrCat("at most ", msrtrace::capi::kMaxRegisteredSets,
                             " handler sets can be registered through the C API"),
                err, err_len);
  }
  const size_t n = g_registered_count;
  g_registered[n] = new msrtrace::capi::SetDef(set->def);  // Never freed, like the registry.
  // Lock order: g_register_mu, then the registry's lock (installing takes g_register_mu alone).
  if (!msrtrace::RegisterHandlerSet(msrtrace::HandlerSetDef{
          name, description != nullptr ? description : "", msrtrace::capi::kTrampolines[n]})) {
    delete g_registered[n];
    g_registered[n] = nullptr;
    return Fail(MSRTRACE_ALREADY_EXISTS, absl::StrCat("handler set '", name, "' exists"), err,
                err_len);
  }
  ++g_registered_count;
  return MSRTRACE_OK;
}

// --- Controller ---

void msrtrace_exit_init(msrtrace_exit* exit, int is_write) {
  std::memset(exit, 0, sizeof(*exit));
  exit->vendor = MSRTRACE_VENDOR_INTEL_VMX;
  exit->reason = is_write ? msrtrace::kVmxExitWrmsr : msrtrace::kVmxExitRdmsr;
  exit->instruction_length = 2;
}

msrtrace_controller* msrtrace_controller_create(const msrtrace_handler_set* set,
                                                const char* profile, int policy,
                                                uint32_t vcpu_count, char* err, size_t err_len) {
  if (set == nullptr) {
    Fail(MSRTRACE_INVALID_ARGUMENT, "set is NULL", err, err_len);
    return nullptr;
  }
  absl::StatusOr<const msrtrace::CpuProfile*> p = msrtrace::capi::ToProfile(profile);
  absl::StatusOr<msrtrace::UnknownMsrPolicy> pol = msrtrace::capi::ToPolicy(policy);
  if (!p.ok() || !pol.ok()) {
    Fail(p.ok() ? pol.status() : p.status(), err, err_len);
    return nullptr;
  }
  auto m = std::make_unique<msrtrace::Machine>();
  m->profile = *p;
  m->controller = std::make_unique<msrtrace::Controller>(msrtrace::ControllerOptions{*pol});
  absl::Status st = msrtrace::capi::InstallSet(set->def, *m->controller, **p);
  if (!st.ok()) {
    Fail(MSRTRACE_INVALID_ARGUMENT, st.message(), err, err_len);
    return nullptr;
  }
  for (uint32_t i = 0; i < vcpu_count; ++i) m->vcpus.push_back(m->controller->CreateVcpu(i));
  auto c = std::make_unique<msrtrace_controller>();
  c->machine = std::move(m);
  return c.release();
}

msrtrace_controller* msrtrace_controller_create_registered(const char* set_name,
                                                           const char* profile, int policy,
                                                           uint32_t vcpu_count, char* err,
                                                           size_t err_len) {
  if (set_name == nullptr) {
    Fail(MSRTRACE_INVALID_ARGUMENT, "set name is NULL", err, err_len);
    return nullptr;
  }
  if (msrtrace::FindHandlerSet(set_name) == nullptr) {
    Fail(MSRTRACE_NOT_FOUND, absl::StrCat("unknown handler set '", set_name, "'"), err, err_len);
    return nullptr;
  }
  absl::StatusOr<const msrtrace::CpuProfile*> p = msrtrace::capi::ToProfile(profile);
  absl::StatusOr<msrtrace::UnknownMsrPolicy> pol = msrtrace::capi::ToPolicy(policy);
  if (!p.ok() || !pol.ok()) {
    Fail(p.ok() ? pol.status() : p.status(), err, err_len);
    return nullptr;
  }
  msrtrace::TraceHeader h;
  h.handler_set = set_name;
  h.cpu_profile = (*p)->name;
  h.unknown_msr_policy = *pol;
  h.vcpu_count = vcpu_count;
  absl::StatusOr<std::unique_ptr<msrtrace::Machine>> m = msrtrace::BuildMachine(h);
  if (!m.ok()) {
    Fail(m.status(), err, err_len);
    return nullptr;
  }
  auto c = std::make_unique<msrtrace_controller>();
  c->machine = *std::move(m);
  c->set_name = set_name;
  return c.release();
}

void msrtrace_controller_destroy(msrtrace_controller* c) { delete c; }

int msrtrace_controller_handle(msrtrace_controller* c, uint32_t vcpu_id, const msrtrace_exit* exit,
                               msrtrace_regs* regs, msrtrace_outcome* out, char* err,
                               size_t err_len) {
  return msrtrace::capi::HandleExit(
      c, vcpu_id, exit, regs, out, err, err_len,
      [c](const msrtrace::Exit& e, msrtrace::Vcpu& v, msrtrace::GuestMemory& m) {
        return c->machine->controller->Handle(e, v, m);
      });
}

static msrtrace::Vcpu* FindVcpu(msrtrace_controller* c, uint32_t vcpu_id, char* err,
                                size_t err_len) {
  msrtrace::Vcpu* v = c == nullptr ? nullptr : c->machine->FindVcpu(vcpu_id);
  if (v == nullptr) {
    Fail(MSRTRACE_INVALID_ARGUMENT, absl::StrCat("no vCPU ", vcpu_id), err, err_len);
  }
  return v;
}

int msrtrace_controller_host_read(msrtrace_controller* c, uint32_t vcpu_id, uint32_t index,
                                  uint64_t* value, char* err, size_t err_len) {
  msrtrace::Vcpu* v = FindVcpu(c, vcpu_id, err, err_len);
  if (v == nullptr || value == nullptr) return MSRTRACE_INVALID_ARGUMENT;
  absl::StatusOr<uint64_t> r = c->machine->controller->HostRead(index, *v, c->machine->memory);
  if (!r.ok()) return Fail(r.status(), err, err_len);
  *value = *r;
  return MSRTRACE_OK;
}

int msrtrace_controller_host_write(msrtrace_controller* c, uint32_t vcpu_id, uint32_t index,
                                   uint64_t value, char* err, size_t err_len) {
  msrtrace::Vcpu* v = FindVcpu(c, vcpu_id, err, err_len);
  if (v == nullptr) return MSRTRACE_INVALID_ARGUMENT;
  return Fail(c->machine->controller->HostWrite(index, value, *v, c->machine->memory), err,
              err_len);
}

int msrtrace_controller_get_regs(const msrtrace_controller* c, uint32_t vcpu_id,
                                 msrtrace_regs* regs) {
  if (c == nullptr || regs == nullptr) return MSRTRACE_INVALID_ARGUMENT;
  const msrtrace::Vcpu* v = c->machine->FindVcpu(vcpu_id);
  if (v == nullptr) return MSRTRACE_INVALID_ARGUMENT;
  msrtrace::capi::FromRegs(v->regs, regs);
  return MSRTRACE_OK;
}

uint64_t msrtrace_controller_state_digest(const msrtrace_controller* c) {
  return c == nullptr ? 0 : c->machine->Digest();
}

// --- Recorder ---

msrtrace_recorder* msrtrace_recorder_start(msrtrace_controller* c, const char* path,
                                           const char* producer, char* err, size_t err_len) {
  if (c == nullptr || path == nullptr) {
    Fail(MSRTRACE_INVALID_ARGUMENT, "controller or path is NULL", err, err_len);
    return nullptr;
  }
  if (c->set_name.empty()) {
    Fail(MSRTRACE_FAILED_PRECONDITION,
         "recording needs a controller of a registered handler set (the trace names it)", err,
         err_len);
    return nullptr;
  }
  msrtrace::TraceHeader h;
  h.producer = producer != nullptr ? producer : "msrtrace C API";
  h.cpu_profile = c->machine->profile->name;
  h.handler_set = c->set_name;
  absl::StatusOr<std::unique_ptr<msrtrace::Recorder>> rec = msrtrace::Recorder::Start(
      path, h, *c->machine->controller, c->machine->vcpus, c->machine->memory);
  if (!rec.ok()) {
    Fail(rec.status(), err, err_len);
    return nullptr;
  }
  auto r = std::make_unique<msrtrace_recorder>();
  r->controller = c;
  r->recorder = *std::move(rec);
  return r.release();
}

int msrtrace_recorder_handle(msrtrace_recorder* r, uint32_t vcpu_id, const msrtrace_exit* exit,
                             msrtrace_regs* regs, msrtrace_outcome* out, char* err,
                             size_t err_len) {
  if (r == nullptr || r->closed) {
    return Fail(MSRTRACE_FAILED_PRECONDITION, "recorder is NULL or closed", err, err_len);
  }
  msrtrace::Recorder* rec = r->recorder.get();
  return msrtrace::capi::HandleExit(
      r->controller, vcpu_id, exit, regs, out, err, err_len,
      [rec](const msrtrace::Exit& e, msrtrace::Vcpu& v, msrtrace::GuestMemory& m) {
        return rec->Handle(e, v, m);
      });
}

int msrtrace_recorder_close(msrtrace_recorder* r, char* err, size_t err_len) {
  if (r == nullptr || r->closed) {
    return Fail(MSRTRACE_FAILED_PRECONDITION, "recorder is NULL or closed", err, err_len);
  }
  r->closed = true;
  absl::Status st = r->recorder->status();
  absl::Status close = r->recorder->Close(r->controller->machine->vcpus);
  if (st.ok()) st = close;
  return Fail(st, err, err_len);
}

void msrtrace_recorder_destroy(msrtrace_recorder* r) {
  if (r == nullptr) return;
  if (!r->closed) r->recorder->CloseWithoutDigest().IgnoreError();
  delete r;
}

uint64_t msrtrace_recorder_events(const msrtrace_recorder* r) {
  return r == nullptr ? 0 : r->recorder->events_recorded();
}

// --- Replay ---

int msrtrace_replay_file(const char* path, const char* handler_set, uint32_t repeat,
                         int check_resume, msrtrace_replay_result* result, char* err,
                         size_t err_len) {
  if (result != nullptr) std::memset(result, 0, sizeof(*result));
  if (path == nullptr) return Fail(MSRTRACE_INVALID_ARGUMENT, "path is NULL", err, err_len);
  const std::string target = handler_set != nullptr ? handler_set : "";
  absl::StatusOr<msrtrace::ReplayResult> first = msrtrace::capi::ReplayOnce(path, target, 0);
  if (!first.ok()) return Fail(first.status(), err, err_len);
  uint64_t divergences = first->divergence_count;
  std::string message;
  if (!first->divergences.empty()) {
    message = msrtrace::capi::DescribeDivergence(first->divergences.front());
  }
  for (uint32_t i = 1; i < repeat; ++i) {
    absl::StatusOr<msrtrace::ReplayResult> again = msrtrace::capi::ReplayOnce(path, target, 0);
    if (!again.ok()) return Fail(again.status(), err, err_len);
    if (again->final_digest != first->final_digest) {
      ++divergences;
      if (message.empty()) {
        message =
            absl::StrFormat("nondeterministic: replay %u ended in state %#x, the first in %#x",
                            i + 1, again->final_digest, first->final_digest);
      }
    }
  }
  if (check_resume != 0 && first->events > 1) {
    absl::StatusOr<msrtrace::ReplayResult> resumed =
        msrtrace::capi::ReplayOnce(path, target, first->events / 2);
    if (!resumed.ok()) return Fail(resumed.status(), err, err_len);
    divergences += resumed->divergence_count;
    if (message.empty() && !resumed->divergences.empty()) {
      message = msrtrace::capi::DescribeDivergence(resumed->divergences.front());
    }
    if (resumed->final_digest != first->final_digest) {
      ++divergences;
      if (message.empty()) {
        message = absl::StrFormat("resume after %u events ended in state %#x, the replay in %#x",
                                  first->events / 2, resumed->final_digest, first->final_digest);
      }
    }
  }
  if (result != nullptr) {
    result->events = first->events;
    result->reads = first->reads;
    result->writes = first->writes;
    result->faults = first->faults;
    result->ignored = first->ignored;
    result->vmm_errors = first->vmm_errors;
    result->divergences = divergences;
    result->complete = first->incomplete() ? 0 : 1;
    result->final_digest = first->final_digest;
  }
  if (divergences == 0) return MSRTRACE_OK;
  return Fail(MSRTRACE_DIVERGED, absl::StrCat(path, ": ", message), err, err_len);
}

// --- Fuzzer ---

msrtrace_fuzzer* msrtrace_fuzzer_create(const char* handler_set, char* err, size_t err_len) {
  if (handler_set == nullptr) {
    Fail(MSRTRACE_INVALID_ARGUMENT, "handler set is NULL", err, err_len);
    return nullptr;
  }
  if (msrtrace::FindHandlerSet(handler_set) == nullptr) {
    Fail(MSRTRACE_NOT_FOUND, absl::StrCat("unknown handler set '", handler_set, "'"), err, err_len);
    return nullptr;
  }
  absl::StatusOr<msrtrace::fuzz::MutatorConfig> config =
      msrtrace::fuzz::MakeMutatorConfig(handler_set);
  if (!config.ok()) {
    Fail(config.status(), err, err_len);
    return nullptr;
  }
  auto f = std::make_unique<msrtrace_fuzzer>();
  f->set_name = handler_set;
  f->mutator = std::make_unique<msrtrace::fuzz::TraceMutator>(*std::move(config));
  f->runner = std::make_unique<msrtrace::fuzz::OracleRunner>(
      msrtrace::fuzz::ReferenceEngineFactory(), msrtrace::fuzz::MakeOracleOptions());
  return f.release();
}

void msrtrace_fuzzer_destroy(msrtrace_fuzzer* f) { delete f; }

int msrtrace_fuzzer_test_one_input(msrtrace_fuzzer* f, const uint8_t* data, size_t size,
                                   char* report, size_t report_len) {
  if (f == nullptr) return MSRTRACE_INVALID_ARGUMENT;
  msrtrace::fuzz::TraceModel trace;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), data == nullptr ? 0 : size);
  if (!msrtrace::capi::PrepareInput(f, bytes, &trace)) return MSRTRACE_OK;
  return msrtrace::capi::CheckInput(f, trace, report, report_len);
}

size_t msrtrace_fuzzer_mutate(msrtrace_fuzzer* f, uint8_t* data, size_t size, size_t max_size,
                              uint64_t seed) {
  return f->mutator->MutateBytes(data, size, max_size, seed);
}

int msrtrace_fuzzer_run(msrtrace_fuzzer* f, const char* const* seed_paths, size_t seed_count,
                        uint64_t runs, uint64_t seed, msrtrace_fuzz_stats* stats, char* report,
                        size_t report_len) {
  if (stats != nullptr) std::memset(stats, 0, sizeof(*stats));
  if (f == nullptr) return MSRTRACE_INVALID_ARGUMENT;
  std::vector<msrtrace::fuzz::TraceModel> seeds;
  for (const std::string& path :
       msrtrace::capi::ExpandSeeds(seed_paths, seed_paths == nullptr ? 0 : seed_count)) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return Fail(MSRTRACE_INVALID_ARGUMENT, absl::StrCat(path, ": cannot open"), report,
                  report_len);
    }
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    msrtrace::fuzz::TraceModel trace;
    if (!msrtrace::capi::PrepareInput(f, bytes, &trace)) continue;  // Not a trace of the set.
    if (stats != nullptr) ++stats->seeds;
    if (stats != nullptr) ++stats->runs;
    const int rc = msrtrace::capi::CheckInput(f, trace, report, report_len);
    if (rc != MSRTRACE_OK) return rc;
    seeds.push_back(std::move(trace));
  }
  if (seeds.empty()) seeds.push_back(f->mutator->config().fallback);
  msrtrace::Rng rng(seed);
  msrtrace::fuzz::TraceModel mutant;
  for (uint64_t i = 0; i < runs; ++i) {
    mutant = seeds[rng.Below(seeds.size())];
    const uint64_t stacked = 1 + rng.Below(4);
    for (uint64_t k = 0; k < stacked; ++k) f->mutator->Mutate(&mutant, rng);
    if (stats != nullptr) ++stats->runs;
    const int rc = msrtrace::capi::CheckInput(f, mutant, report, report_len);
    if (rc != MSRTRACE_OK) return rc;
  }
  return MSRTRACE_OK;
}

}  // extern "C"
