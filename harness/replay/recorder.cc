#include "harness/replay/recorder.h"

#include <utility>

#include "absl/strings/str_format.h"
#include "harness/core/kvm_save_list.h"
#include "harness/core/status_macros.h"

namespace msrtrace {
namespace {

// The registers an exit's recording determines (see the replay model in recorder.h). Other
// GPRs keep the model's values.
void ApplyToModel(const VcpuRegs& actual, VcpuRegs& model) {
  model.reg(Gpr::kRax) = actual.reg(Gpr::kRax);
  model.reg(Gpr::kRcx) = actual.reg(Gpr::kRcx);
  model.reg(Gpr::kRdx) = actual.reg(Gpr::kRdx);
  model.rip = actual.rip;
  model.rflags = actual.rflags;
  model.cr0 = actual.cr0;
  model.cr4 = actual.cr4;
  model.efer = actual.efer;
  model.cs_l = actual.cs_l;
  model.interruptibility = actual.interruptibility;
  model.pending = actual.pending;
}

// The vCPU state an event records besides the register inputs (RCX, RAX, RDX).
void CopyMachineState(const VcpuRegs& r, ExitEvent& ev) {
  ev.rip = r.rip;
  ev.rflags = r.rflags;
  ev.cr0 = r.cr0;
  ev.cr4 = r.cr4;
  ev.efer = r.efer;
  ev.cs_l = r.cs_l;
  ev.interruptibility = r.interruptibility;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Recorder>> Recorder::Start(
    const std::string& path, TraceHeader header, Controller& controller,
    absl::Span<const Vcpu> vcpus, const SparseMemory& memory, RecorderOptions options) {
  return StartWithSnapshot(path, std::move(header), controller,
                           CaptureSnapshot(controller, vcpus, memory), std::move(options));
}

absl::StatusOr<std::unique_ptr<Recorder>> Recorder::StartWithSnapshot(const std::string& path,
                                                                      TraceHeader header,
                                                                      Controller& controller,
                                                                      const Snapshot& snapshot,
                                                                      RecorderOptions options) {
  if (snapshot.vcpus.empty()) {
    return absl::InvalidArgumentError("cannot record a machine without vCPUs");
  }
  header.vcpu_count = static_cast<uint32_t>(snapshot.vcpus.size());
  header.unknown_msr_policy = controller.options().unknown_msr_policy;
  TraceWriterOptions wo;
  wo.gzip = options.gzip;
  wo.flush_every = options.flush_every;
  wo.atomic = options.atomic;
  ASSIGN_OR_RETURN(std::unique_ptr<TraceWriter> writer,
                   TraceWriter::Create(path, header, snapshot, wo));
  return std::unique_ptr<Recorder>(
      new Recorder(controller, std::move(header), snapshot, std::move(options), std::move(writer)));
}

Recorder::Recorder(Controller& controller, TraceHeader header, const Snapshot& snapshot,
                   RecorderOptions options, std::unique_ptr<TraceWriter> writer)
    : controller_(controller),
      header_(std::move(header)),
      options_(std::move(options)),
      writer_(std::move(writer)),
      model_(snapshot.vcpus),
      shadow_(snapshot.memory) {}

Recorder::~Recorder() {
  if (!closed_ && writer_ != nullptr) {
    // Best effort: an unclosed recording keeps its events (no trailer, so replay reports it as
    // incomplete).
    (void)writer_->Flush();
  }
}

int Recorder::ModelIndex(uint32_t vcpu_id) const {
  // Usually vCPU ids are their positions.
  if (vcpu_id < model_.size() && model_[vcpu_id].id == vcpu_id) return static_cast<int>(vcpu_id);
  for (size_t i = 0; i < model_.size(); ++i) {
    if (model_[i].id == vcpu_id) return static_cast<int>(i);
  }
  return -1;
}

absl::StatusOr<Outcome> Recorder::Handle(const Exit& exit, Vcpu& vcpu, GuestMemory& memory) {
  const bool recording = status_.ok() && !closed_;
  ExitEvent& ev = event_;
  const VcpuRegs& r = vcpu.regs;
  if (recording) {
    ev.vcpu_id = vcpu.id;
    ev.known = kFieldAll;
    ev.exit = exit;
    ev.rcx = r.reg(Gpr::kRcx);
    ev.rax = r.reg(Gpr::kRax);
    ev.rdx = r.reg(Gpr::kRdx);
    CopyMachineState(r, ev);
  }

  absl::StatusOr<Outcome> out = controller_.Handle(exit, vcpu, memory);
  if (!recording) return out;
  if (!out.ok() && IsExitNotHandled(out.status())) return out;

  ev.host_initiated = false;
  Finish(out, vcpu);
  return out;
}

void Recorder::Finish(const absl::StatusOr<Outcome>& out, Vcpu& vcpu) {
  ExitEvent& ev = event_;
  const VcpuRegs& r = vcpu.regs;
  ev.seq = next_seq_++;
  ev.volatile_value = options_.is_volatile && options_.is_volatile(ev.index());
  ev.error.clear();
  ev.route = MsrRoute::kUnspecified;
  if (out.ok()) {
    ev.kind = RecordedKindOf(out->kind);
    // The route is recorded when routing is configured (traces without it stay unchanged).
    if (controller_.routing().active()) ev.route = out->route;
    if (ev.host_initiated) {
      ev.kind = out->kind == Outcome::Kind::kGpInjected ? RecordedKind::kHostFailed
                                                        : RecordedKind::kRetired;
    }
  } else {
    ev.kind = RecordedKind::kVmmError;
    const absl::string_view msg = out.status().message();
    ev.error.assign(msg.data(), msg.size());
  }
  ev.rax_out = r.reg(Gpr::kRax);
  ev.rdx_out = r.reg(Gpr::kRdx);
  if (ev.host_initiated && out.ok() && ev.kind == RecordedKind::kRetired &&
      out->access == Access::kRead) {
    ev.rax_out = out->value & 0xffffffffull;
    ev.rdx_out = out->value >> 32;
  }
  ev.rip_out = r.rip;
  ev.pending_out = r.pending;

  const WriteLog& writes = controller_.last_writes();
  ev.memory_writes.resize(writes.writes().size());
  for (size_t i = 0; i < writes.writes().size(); ++i) {
    const MemoryWrite& w = writes.writes()[i];
    const absl::Span<const uint8_t> bytes = writes.BytesOf(w);
    ev.memory_writes[i].gpa = w.gpa;
    ev.memory_writes[i].bytes.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    shadow_.Write(w.gpa, bytes.data(), bytes.size());
  }
  ev.memory_writes_digest = writes.Digest();

  const int m = ModelIndex(vcpu.id);
  if (m < 0) {
    status_ = absl::FailedPreconditionError(absl::StrFormat(
        "recorder: exit of vCPU %u, which was not in the machine at Start", vcpu.id));
    return;
  }
  ApplyToModel(r, model_[m].regs);

  absl::Status st = writer_->Append(ev);
  if (!st.ok()) {
    status_ = st;
    return;
  }
  ++events_;
}

absl::StatusOr<Outcome> Recorder::HostAccess(Access access, uint32_t index, uint64_t value,
                                             Vcpu& vcpu, GuestMemory& memory, uint64_t host_tsc,
                                             uint64_t host_wall_ns) {
  Exit exit = access == Access::kWrite ? Exit::Wrmsr(0) : Exit::Rdmsr(0);
  exit.host_tsc = host_tsc;
  exit.host_wall_ns = host_wall_ns;
  absl::StatusOr<Outcome> out = controller_.HostAccess(access, index, value, vcpu, memory, exit);
  if (!status_.ok() || closed_) return out;
  ExitEvent& ev = event_;
  const VcpuRegs& r = vcpu.regs;
  ev.vcpu_id = vcpu.id;
  // The register inputs of a host event are not applied on replay; they are recorded anyway
  // (RCX = index, RDX:RAX = value) so the event reads naturally. No instruction length.
  ev.known = static_cast<uint32_t>(kFieldAll) & ~static_cast<uint32_t>(kFieldInstrLength);
  ev.host_initiated = true;
  ev.exit = exit;
  ev.rcx = index;
  ev.rax = access == Access::kWrite ? (value & 0xffffffffull) : 0;
  ev.rdx = access == Access::kWrite ? (value >> 32) : 0;
  CopyMachineState(r, ev);
  Finish(out, vcpu);
  return out;
}

absl::Status Recorder::SaveRestore(Vcpu& vcpu, GuestMemory& memory, uint64_t host_tsc,
                                   uint64_t host_wall_ns) {
  if (save_list_.empty()) save_list_ = KvmSaveRestoreList(controller_);
  saved_.resize(save_list_.size());
  saved_ok_.resize(save_list_.size());
  for (size_t i = 0; i < save_list_.size(); ++i) {
    absl::StatusOr<Outcome> o =
        HostAccess(Access::kRead, save_list_[i], 0, vcpu, memory, host_tsc, host_wall_ns);
    if (!o.ok()) return o.status();
    saved_ok_[i] = o->kind != Outcome::Kind::kGpInjected;
    saved_[i] = o->value;
  }
  for (size_t i = 0; i < save_list_.size(); ++i) {
    if (saved_ok_[i] == 0) continue;
    absl::StatusOr<Outcome> o =
        HostAccess(Access::kWrite, save_list_[i], saved_[i], vcpu, memory, host_tsc, host_wall_ns);
    if (!o.ok()) return o.status();
  }
  return absl::OkStatus();
}

absl::Status Recorder::Flush() {
  if (closed_) return absl::FailedPreconditionError("recorder: Flush after Close");
  RETURN_IF_ERROR(status_);
  return writer_->Flush();
}

uint64_t Recorder::ModelDigest(absl::Span<const Vcpu> vcpus) const {
  std::vector<Vcpu> state = model_;
  for (Vcpu& m : state) {
    for (const Vcpu& v : vcpus) {
      if (v.id == m.id) {
        m.slots = v.slots;
        break;
      }
    }
  }
  return StateDigest(controller_, state, shadow_);
}

absl::Status Recorder::Close(absl::Span<const Vcpu> vcpus) {
  if (closed_) return absl::FailedPreconditionError("recorder: Close called twice");
  closed_ = true;
  RETURN_IF_ERROR(status_);
  return writer_->Close(ModelDigest(vcpus));
}

absl::Status Recorder::CloseWithoutDigest() {
  if (closed_) return absl::FailedPreconditionError("recorder: Close called twice");
  closed_ = true;
  RETURN_IF_ERROR(status_);
  return writer_->Close(0);
}

}  // namespace msrtrace
