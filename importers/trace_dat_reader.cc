#include "importers/trace_dat_reader.h"

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "harness/core/exit.h"

#if MSRTRACE_HAVE_TRACECMD
#include <traceevent/event-parse.h>
#include <traceevent/trace-seq.h>

// The libtracecmd 1.x reading API (trace-cmd/trace-cmd.h). Declared here rather than included:
// that header includes tracefs.h, whose inline functions are not valid C++ (an int passed as
// an enum in tracefs_hist_start), and this reader needs none of libtracefs.
extern "C" {
struct tracecmd_input;
enum { kTracecmdFlLoadNoPlugins = 1 << 0, kTracecmdFlLoadNoSystemPlugins = 1 << 1 };
struct tracecmd_input* tracecmd_open(const char* file, int flags);
void tracecmd_close(struct tracecmd_input* handle);
struct tep_handle* tracecmd_get_tep(struct tracecmd_input* handle);
int tracecmd_buffer_instances(struct tracecmd_input* handle);
const char* tracecmd_buffer_instance_name(struct tracecmd_input* handle, int indx);
struct tracecmd_input* tracecmd_buffer_instance_handle(struct tracecmd_input* handle, int indx);
int tracecmd_iterate_events_multi(struct tracecmd_input** handles, int nr_handles,
                                  int (*callback)(struct tracecmd_input* handle, struct tep_record*,
                                                  int, void*),
                                  void* callback_data);
void tracecmd_set_loglevel(enum tep_loglevel level);
}
#endif

namespace msrtrace {
namespace importers {

#if MSRTRACE_HAVE_TRACECMD
namespace {

// The kvm events of one tep handle (instances normally share the top instance's).
struct KvmFormats {
  tep_handle* tep = nullptr;
  int msr_id = -1, exit_id = -1, entry_id = -1, inj_id = -1;
  tep_format_field* msr_write = nullptr;
  tep_format_field* msr_ecx = nullptr;
  tep_format_field* msr_data = nullptr;
  tep_format_field* msr_exception = nullptr;
  tep_format_field* exit_reason = nullptr;
  tep_format_field* exit_rip = nullptr;
  tep_format_field* exit_isa = nullptr;
  tep_format_field* exit_info1 = nullptr;
  tep_format_field* exit_vcpu = nullptr;
  tep_format_field* entry_vcpu = nullptr;
  tep_format_field* entry_rip = nullptr;
  tep_format_field* inj_exception = nullptr;
};

// KVM_ISA_VMX / KVM_ISA_SVM (arch/x86/kvm/trace.h).
constexpr uint64_t kIsaVmx = 1;
constexpr uint64_t kIsaSvm = 2;

absl::Status Require(const std::string& path, const char* event, const char* field,
                     tep_format_field* f) {
  if (f != nullptr) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": the kvm:", event, " format stored in the trace.dat has no field '", field, "'"));
}

absl::Status LoadFormats(const std::string& path, tep_handle* tep, KvmFormats* k) {
  k->tep = tep;
  if (tep_event* e = tep_find_event_by_name(tep, "kvm", "kvm_msr")) {
    k->msr_id = e->id;
    k->msr_write = tep_find_field(e, "write");
    k->msr_ecx = tep_find_field(e, "ecx");
    k->msr_data = tep_find_field(e, "data");
    k->msr_exception = tep_find_field(e, "exception");
    if (absl::Status s = Require(path, "kvm_msr", "write", k->msr_write); !s.ok()) return s;
    if (absl::Status s = Require(path, "kvm_msr", "ecx", k->msr_ecx); !s.ok()) return s;
    if (absl::Status s = Require(path, "kvm_msr", "data", k->msr_data); !s.ok()) return s;
  }
  if (tep_event* e = tep_find_event_by_name(tep, "kvm", "kvm_exit")) {
    k->exit_id = e->id;
    k->exit_reason = tep_find_field(e, "exit_reason");
    k->exit_rip = tep_find_field(e, "guest_rip");
    k->exit_isa = tep_find_field(e, "isa");
    k->exit_info1 = tep_find_field(e, "info1");
    k->exit_vcpu = tep_find_field(e, "vcpu_id");
    if (absl::Status s = Require(path, "kvm_exit", "exit_reason", k->exit_reason); !s.ok()) {
      return s;
    }
    if (absl::Status s = Require(path, "kvm_exit", "guest_rip", k->exit_rip); !s.ok()) return s;
  }
  if (tep_event* e = tep_find_event_by_name(tep, "kvm", "kvm_entry")) {
    k->entry_id = e->id;
    k->entry_vcpu = tep_find_field(e, "vcpu_id");
    if (absl::Status s = Require(path, "kvm_entry", "vcpu_id", k->entry_vcpu); !s.ok()) return s;
    k->entry_rip = tep_find_field(e, "rip");
  }
  if (tep_event* e = tep_find_event_by_name(tep, "kvm", "kvm_inj_exception")) {
    k->inj_id = e->id;
    k->inj_exception = tep_find_field(e, "exception");
    if (absl::Status s = Require(path, "kvm_inj_exception", "exception", k->inj_exception);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

struct Context {
  const std::string* path;
  TraceDatCallback* fn;
  std::vector<KvmFormats> formats;
  uint64_t ordinal = 0;
  absl::Status status;
};

// Reads a numeric field, checking that the record holds it.
bool ReadField(const tep_format_field* f, const tep_record* rec, uint64_t* v) {
  if (f == nullptr || f->offset < 0 || f->size <= 0 || f->size > 8 ||
      f->offset + f->size > rec->size) {
    return false;
  }
  // NOLINTNEXTLINE(google-runtime-int): tep_read_number_field's parameter type.
  unsigned long long value = 0;
  if (tep_read_number_field(const_cast<tep_format_field*>(f), rec->data, &value) != 0) {
    return false;
  }
  *v = value;
  return true;
}

LineStatus Convert(const KvmFormats& k, tep_record* rec, ParsedLine* p, LineError* err) {
  const int type = tep_data_type(k.tep, rec);
  auto bad = [err](const char* what) {
    err->what = what;
    err->column = 0;
    return LineStatus::kBad;
  };
  uint64_t v = 0;
  if (type == k.msr_id) {
    p->type = EventType::kMsr;
    p->event_name = "kvm_msr";
    uint64_t write = 0, ecx = 0;
    if (!ReadField(k.msr_write, rec, &write) || !ReadField(k.msr_ecx, rec, &ecx) ||
        !ReadField(k.msr_data, rec, &p->data)) {
      return bad("kvm_msr record shorter than its format");
    }
    p->write = write != 0;
    p->index = static_cast<uint32_t>(ecx);
    p->gp = ReadField(k.msr_exception, rec, &v) && v != 0;
    return LineStatus::kEvent;
  }
  if (type == k.exit_id) {
    p->type = EventType::kExit;
    p->event_name = "kvm_exit";
    uint64_t reason = 0;
    if (!ReadField(k.exit_reason, rec, &reason) || !ReadField(k.exit_rip, rec, &p->rip)) {
      return bad("kvm_exit record shorter than its format");
    }
    p->has_rip = true;
    if (ReadField(k.exit_vcpu, rec, &v)) {
      if (v > kMaxVcpuId) return bad("kvm_exit: bad vcpu id");
      p->has_vcpu = true;
      p->vcpu = static_cast<uint32_t>(v);
    }
    p->has_info1 = ReadField(k.exit_info1, rec, &p->info1);
    uint64_t isa = kIsaVmx;  // Formats without `isa` predate SVM support in this tracepoint.
    ReadField(k.exit_isa, rec, &isa);
    if (isa == kIsaSvm) {
      p->reason = static_cast<uint32_t>(reason);
      if (reason == kSvmExitMsr) {
        p->msr_exit = true;
        p->vendor = Vendor::kAmdSvm;
        // SVM EXITINFO1: 0 = RDMSR, 1 = WRMSR (AMD APM Vol2 §15.11).
        if (p->has_info1 && (p->info1 == 0 || p->info1 == 1)) {
          p->has_access = true;
          p->access = p->info1 == 1 ? Access::kWrite : Access::kRead;
        }
      }
    } else {
      const uint32_t basic = static_cast<uint32_t>(reason & 0xffff);  // Basic exit reason.
      p->reason = basic;
      if (basic == kVmxExitRdmsr || basic == kVmxExitWrmsr) {
        p->msr_exit = true;
        p->vendor = Vendor::kIntelVmx;
        p->has_access = true;
        p->access = basic == kVmxExitWrmsr ? Access::kWrite : Access::kRead;
      }
    }
    return LineStatus::kEvent;
  }
  if (type == k.entry_id) {
    p->type = EventType::kEntry;
    p->event_name = "kvm_entry";
    if (!ReadField(k.entry_vcpu, rec, &v)) return bad("kvm_entry record shorter than its format");
    if (v > kMaxVcpuId) return bad("kvm_entry: bad vcpu id");
    p->has_vcpu = true;
    p->vcpu = static_cast<uint32_t>(v);
    p->has_rip = ReadField(k.entry_rip, rec, &p->rip);
    return LineStatus::kEvent;
  }
  if (type == k.inj_id) {
    p->type = EventType::kInjException;
    p->event_name = "kvm_inj_exception";
    if (!ReadField(k.inj_exception, rec, &v)) {
      return bad("kvm_inj_exception record shorter than its format");
    }
    p->vector = static_cast<uint8_t>(v);
    return LineStatus::kEvent;
  }
  p->type = EventType::kOther;
  tep_event* e = tep_find_event(k.tep, type);
  p->event_name = e != nullptr && e->name != nullptr ? absl::string_view(e->name)
                                                     : absl::string_view("(unknown event id)");
  return LineStatus::kEvent;
}

int OnRecord(tracecmd_input* handle, tep_record* rec, int cpu, void* data) {
  Context* ctx = static_cast<Context*>(data);
  tep_handle* tep = tracecmd_get_tep(handle);
  const KvmFormats* k = nullptr;
  for (const KvmFormats& f : ctx->formats) {
    if (f.tep == tep) k = &f;
  }
  if (k == nullptr) {
    ctx->formats.emplace_back();
    ctx->status = LoadFormats(*ctx->path, tep, &ctx->formats.back());
    if (!ctx->status.ok()) return -1;
    k = &ctx->formats.back();
  }
  const uint64_t ordinal = ++ctx->ordinal;
  ParsedLine p;
  LineError err;
  if (rec->missed_events != 0) {
    p.has_cpu = true;
    p.cpu = static_cast<uint32_t>(cpu);
    p.lost = rec->missed_events > 0 ? static_cast<uint64_t>(rec->missed_events) : UINT64_MAX;
    ctx->status = (*ctx->fn)(ordinal, LineStatus::kLost, p, err);
    if (!ctx->status.ok()) return -1;
    p = ParsedLine();
  }
  p.rendering = Rendering::kTraceDat;
  p.has_cpu = true;
  p.cpu = static_cast<uint32_t>(cpu);
  p.timestamp_ns = rec->ts;
  const int pid = tep_data_pid(tep, rec);
  p.tid = pid < 0 ? 0 : static_cast<uint32_t>(pid);
  LineStatus st = Convert(*k, rec, &p, &err);
  ctx->status = (*ctx->fn)(ordinal, st, p, err);
  return ctx->status.ok() ? 0 : -1;
}

}  // namespace

bool TraceDatSupported() { return true; }

absl::Status ReadTraceDat(const std::string& path, TraceDatCallback fn, uint64_t* bytes) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot open: ", strerror(errno)));
  }
  *bytes = static_cast<uint64_t>(st.st_size);
  tracecmd_set_loglevel(TEP_LOG_NONE);
  tracecmd_input* top =
      tracecmd_open(path.c_str(), kTracecmdFlLoadNoPlugins | kTracecmdFlLoadNoSystemPlugins);
  if (top == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": libtracecmd cannot read this trace.dat (unsupported file version, "
                     "or a corrupt or truncated header)"));
  }
  std::vector<tracecmd_input*> handles = {top};
  const int instances = tracecmd_buffer_instances(top);
  absl::Status status;
  for (int i = 0; i < instances; ++i) {
    tracecmd_input* h = tracecmd_buffer_instance_handle(top, i);
    if (h == nullptr) {
      const char* name = tracecmd_buffer_instance_name(top, i);
      status = absl::InvalidArgumentError(
          absl::StrCat(path, ": cannot read buffer instance '", name != nullptr ? name : "?", "'"));
      break;
    }
    handles.push_back(h);
  }
  if (status.ok()) {
    Context ctx;
    ctx.path = &path;
    ctx.fn = &fn;
    tracecmd_iterate_events_multi(handles.data(), static_cast<int>(handles.size()), OnRecord, &ctx);
    status = ctx.status;
  }
  for (size_t i = handles.size(); i-- > 0;) tracecmd_close(handles[i]);
  return status;
}

namespace {

struct RenderContext {
  std::string* text;
};

int RenderRecord(tracecmd_input* handle, tep_record* rec, int cpu, void* data) {
  RenderContext* ctx = static_cast<RenderContext*>(data);
  if (rec->missed_events > 0) {
    absl::StrAppend(ctx->text, "CPU:", cpu, " [", rec->missed_events, " EVENTS DROPPED]\n");
  } else if (rec->missed_events < 0) {
    absl::StrAppend(ctx->text, "CPU:", cpu, " [EVENTS DROPPED]\n");
  }
  trace_seq seq;
  trace_seq_init(&seq);
  tep_print_event(tracecmd_get_tep(handle), &seq, rec, "%16s-%-5d [%03d] %6.1000d: %s: %s\n",
                  TEP_PRINT_COMM, TEP_PRINT_PID, TEP_PRINT_CPU, TEP_PRINT_TIME, TEP_PRINT_NAME,
                  TEP_PRINT_INFO);
  trace_seq_terminate(&seq);
  ctx->text->append(seq.buffer, seq.len);
  trace_seq_destroy(&seq);
  return 0;
}

}  // namespace

absl::Status RenderTraceDatText(const std::string& path, std::string* text) {
  tracecmd_set_loglevel(TEP_LOG_NONE);
  tracecmd_input* top =
      tracecmd_open(path.c_str(), kTracecmdFlLoadNoPlugins | kTracecmdFlLoadNoSystemPlugins);
  if (top == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": libtracecmd cannot read it"));
  }
  std::vector<tracecmd_input*> handles = {top};
  for (int i = 0; i < tracecmd_buffer_instances(top); ++i) {
    tracecmd_input* h = tracecmd_buffer_instance_handle(top, i);
    if (h != nullptr) handles.push_back(h);
  }
  RenderContext ctx{text};
  tracecmd_iterate_events_multi(handles.data(), static_cast<int>(handles.size()), RenderRecord,
                                &ctx);
  for (size_t i = handles.size(); i-- > 0;) tracecmd_close(handles[i]);
  return absl::OkStatus();
}

#else  // !MSRTRACE_HAVE_TRACECMD

bool TraceDatSupported() { return false; }

absl::Status ReadTraceDat(const std::string& path, TraceDatCallback, uint64_t*) {
  return absl::UnimplementedError(absl::StrCat(
      path,
      ": a trace-cmd trace.dat, but this msrtrace was built without libtracecmd "
      "(install libtracecmd-dev and libtraceevent-dev, then reconfigure); or convert it "
      "with `trace-cmd report` and import the text"));
}

absl::Status RenderTraceDatText(const std::string& path, std::string*) {
  return absl::UnimplementedError(absl::StrCat(path, ": built without libtracecmd"));
}

#endif  // MSRTRACE_HAVE_TRACECMD

}  // namespace importers
}  // namespace msrtrace
