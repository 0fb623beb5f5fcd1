#include "harness/core/controller.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "harness/core/enum_names.h"
#include "harness/core/status_macros.h"

namespace msrtrace {
namespace {

constexpr absl::string_view kExitNotHandledPayload = "msrtrace.dev/exit-not-handled";

}  // namespace

const char* VendorName(Vendor v) {
  switch (v) {
    case Vendor::kIntelVmx:
      return "intel-vmx";
    case Vendor::kAmdSvm:
      return "amd-svm";
    case Vendor::kUnspecified:
      break;
  }
  return "unspecified";
}

const char* GprName(Gpr gpr) {
  static constexpr const char* kNames[kNumGprs] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp",
                                                   "rsi", "rdi", "r8",  "r9",  "r10", "r11",
                                                   "r12", "r13", "r14", "r15"};
  return kNames[static_cast<int>(gpr) & 15];
}

absl::optional<Access> MsrAccessOf(const Exit& exit) {
  switch (exit.vendor) {
    case Vendor::kIntelVmx:
      if (exit.reason == kVmxExitRdmsr) return Access::kRead;
      if (exit.reason == kVmxExitWrmsr) return Access::kWrite;
      return absl::nullopt;
    case Vendor::kAmdSvm:
      if (exit.reason != kSvmExitMsr) return absl::nullopt;
      if (exit.info1 == 0) return Access::kRead;
      if (exit.info1 == 1) return Access::kWrite;
      return absl::nullopt;
    case Vendor::kUnspecified:
      break;
  }
  return absl::nullopt;
}

// "gp" is an alias the flag parser accepts.
constexpr EnumName<UnknownMsrPolicy> kUnknownMsrPolicyNames[] = {
    {UnknownMsrPolicy::kInjectGp, "inject-gp"},
    {UnknownMsrPolicy::kIgnore, "ignore"},
    {UnknownMsrPolicy::kFail, "fail"},
    {UnknownMsrPolicy::kInjectGp, "gp"},
};

const char* UnknownMsrPolicyName(UnknownMsrPolicy p) {
  return NameOf(kUnknownMsrPolicyNames, p, "unspecified");
}

absl::optional<UnknownMsrPolicy> ParseUnknownMsrPolicy(absl::string_view name) {
  return ValueOf(kUnknownMsrPolicyNames, name);
}

const char* OutcomeKindName(Outcome::Kind k) {
  switch (k) {
    case Outcome::Kind::kRetired:
      return "retired";
    case Outcome::Kind::kGpInjected:
      return "gp";
    case Outcome::Kind::kIgnored:
      return "ignored";
    case Outcome::Kind::kUnspecified:
      break;
  }
  return "unspecified";
}

absl::Status ExitNotHandledError(const Exit& exit) {
  absl::Status s =
      absl::UnimplementedError(absl::StrFormat("exit not handled: vendor %s reason %u info1 %#x",
                                               VendorName(exit.vendor), exit.reason, exit.info1));
  s.SetPayload(kExitNotHandledPayload, absl::Cord("1"));
  return s;
}

bool IsExitNotHandled(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnimplemented &&
         status.GetPayload(kExitNotHandledPayload).has_value();
}

SlotId StateLayout::AddVcpuSlot(std::string name, uint64_t reset) {
  const auto id = static_cast<SlotId>(vcpu_slots_.size());
  vcpu_index_.emplace(name, static_cast<int>(id));  // The first of duplicate names wins.
  vcpu_slots_.push_back(SlotInfo{std::move(name), reset});
  return id;
}

SlotId StateLayout::AddVmSlot(std::string name, uint64_t reset) {
  const auto id = static_cast<SlotId>(vm_slots_.size());
  vm_index_.emplace(name, static_cast<int>(id));
  vm_slots_.push_back(SlotInfo{std::move(name), reset});
  return id;
}

int StateLayout::FindVcpuSlot(absl::string_view name) const {
  auto it = vcpu_index_.find(name);
  return it == vcpu_index_.end() ? -1 : it->second;
}

int StateLayout::FindVmSlot(absl::string_view name) const {
  auto it = vm_index_.find(name);
  return it == vm_index_.end() ? -1 : it->second;
}

Controller::Controller(ControllerOptions options) : options_(options) {
  for (size_t i = 0; i < kWindows.size(); ++i) {
    dense_[i] = std::make_unique<MsrHandler*[]>(kWindows[i].size);  // Value-initialized.
  }
}

MsrHandler* Controller::Adopt(std::unique_ptr<MsrHandler> handler) {
  owned_.push_back(std::move(handler));
  return owned_.back().get();
}

MsrHandler** Controller::Slot(uint32_t index) {
  for (size_t i = 0; i < kWindows.size(); ++i) {
    const uint32_t off = index - kWindows[i].base;  // Wraps for index < base.
    if (off < kWindows[i].size) return &dense_[i][off];
  }
  return nullptr;
}

MsrHandler* Controller::Find(uint32_t index) const {
  for (size_t i = 0; i < kWindows.size(); ++i) {
    const uint32_t off = index - kWindows[i].base;
    if (off < kWindows[i].size) return dense_[i][off];
  }
  auto it = std::lower_bound(sparse_.begin(), sparse_.end(), index,
                             [](const auto& e, uint32_t i) { return e.first < i; });
  return (it != sparse_.end() && it->first == index) ? it->second : nullptr;
}

bool Controller::Insert(uint32_t index, MsrHandler* handler) {
  return InsertRange(index, index, handler);
}

bool Controller::Insert(uint32_t index, std::unique_ptr<MsrHandler> handler) {
  if (handler == nullptr || Find(index) != nullptr) return false;
  return Insert(index, Adopt(std::move(handler)));
}

bool Controller::InsertRange(uint32_t first, uint32_t last, MsrHandler* handler) {
  if (handler == nullptr || first > last) return false;
  for (uint64_t i = first; i <= last; ++i) {
    if (Find(static_cast<uint32_t>(i)) != nullptr) return false;
  }
  for (uint64_t i = first; i <= last; ++i) {
    const auto index = static_cast<uint32_t>(i);
    if (MsrHandler** slot = Slot(index)) {
      *slot = handler;
    } else {
      auto it = std::lower_bound(sparse_.begin(), sparse_.end(), index,
                                 [](const auto& e, uint32_t x) { return e.first < x; });
      sparse_.insert(it, {index, handler});
    }
  }
  return true;
}

std::vector<uint32_t> Controller::RegisteredIndices() const {
  std::vector<uint32_t> out;
  for (size_t w = 0; w < kWindows.size(); ++w) {
    for (uint32_t off = 0; off < kWindows[w].size; ++off) {
      if (dense_[w][off] != nullptr) out.push_back(kWindows[w].base + off);
    }
  }
  for (const auto& e : sparse_) out.push_back(e.first);
  std::sort(out.begin(), out.end());
  return out;
}

std::string Controller::MsrName(uint32_t index) const {
  if (const MsrHandler* h = Find(index)) {
    absl::string_view name = h->MsrName(index);
    if (!name.empty()) return static_cast<std::string>(name);
  }
  return absl::StrFormat("MSR_%#x", index);
}

Vcpu Controller::CreateVcpu(uint32_t id) {
  const auto& vm = layout_.vm_slots();
  for (size_t i = vm_slots_.size(); i < vm.size(); ++i) vm_slots_.push_back(vm[i].reset);
  Vcpu vcpu;
  vcpu.id = id;
  vcpu.slots.reserve(layout_.vcpu_slots().size());
  for (const SlotInfo& s : layout_.vcpu_slots()) vcpu.slots.push_back(s.reset);
  for (const auto& h : owned_) h->OnVcpuReset(vcpu);
  return vcpu;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::Status Controller::Dispatch(
    Access access, uint32_t index, uint64_t value, const Exit& exit, Vcpu& vcpu,
    GuestMemory& memory, bool host_initiated, Outcome& out) {
  if (ABSL_PREDICT_FALSE(vcpu.slots.size() != layout_.vcpu_slots().size() ||
                         vm_slots_.size() != layout_.vm_slots().size())) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "vCPU %u has %u state slots, the controller's layout has %u (vCPU created before "
        "every handler was installed?)",
        vcpu.id, vcpu.slots.size(), layout_.vcpu_slots().size()));
  }
  out.access = access;
  out.index = index;
  out.value = access == Access::kWrite ? value : 0;
  out.unknown_msr = false;

  MsrResult result = MsrResult::Unsupported();
  if (MsrHandler* handler = Find(index)) {
    ExitContext ctx(exit, vcpu, vm_slots_, memory, writes_, host_initiated);
    absl::StatusOr<MsrResult> r =
        access == Access::kRead ? handler->Read(index, ctx) : handler->Write(index, value, ctx);
    if (ABSL_PREDICT_FALSE(!r.ok())) {
      return absl::Status(r.status().code(),
                          absl::StrCat(AccessName(access), " ", MsrName(index), " (vCPU ", vcpu.id,
                                       "): ", r.status().message()));
    }
    result = *r;
  }
  switch (result.kind) {
    case MsrResult::Kind::kOk:
      out.kind = Outcome::Kind::kRetired;
      if (access == Access::kRead) out.value = result.value;
      return absl::OkStatus();
    case MsrResult::Kind::kGp:
      out.kind = Outcome::Kind::kGpInjected;
      return absl::OkStatus();
    case MsrResult::Kind::kUnsupported:
      break;
  }
  out.unknown_msr = true;
  switch (options_.unknown_msr_policy) {
    case UnknownMsrPolicy::kIgnore:
      out.kind = Outcome::Kind::kIgnored;
      return absl::OkStatus();
    case UnknownMsrPolicy::kFail:
      return absl::NotFoundError(absl::StrFormat("unhandled %s: %#x data %#x (vCPU %u)",
                                                 AccessName(access), index, value, vcpu.id));
    case UnknownMsrPolicy::kInjectGp:
    case UnknownMsrPolicy::kUnspecified:
      break;
  }
  out.kind = Outcome::Kind::kGpInjected;
  return absl::OkStatus();
}

absl::StatusOr<Outcome> Controller::Handle(const Exit& exit, Vcpu& vcpu, GuestMemory& memory) {
  writes_.Clear();
  const absl::optional<Access> access = MsrAccessOf(exit);
  if (!access.has_value()) return ExitNotHandledError(exit);

  VcpuRegs& regs = vcpu.regs;
  const auto index = static_cast<uint32_t>(regs.reg(Gpr::kRcx));  // ECX; RCX[63:32] ignored.
  const uint64_t value = (regs.reg(Gpr::kRdx) << 32) | (regs.reg(Gpr::kRax) & 0xffffffffull);
  // The instruction executes in the mode it was fetched in: a WRMSR that changes EFER affects
  // the next instruction, not this one's RIP (harness/replay/exit_check.h states the same rule).
  const bool in_64bit_mode = regs.in_64bit_mode();
  Outcome out;
  absl::Status st = Dispatch(*access, index, *access == Access::kWrite ? value : 0, exit, vcpu,
                             memory, /*host_initiated=*/false, out);
  if (ABSL_PREDICT_FALSE(!st.ok())) return st;

  if (out.kind == Outcome::Kind::kGpInjected) {
    regs.pending = PendingException::Gp0();
    return out;
  }
  // Retired or ignored: the instruction completes.
  if (*access == Access::kRead) {
    regs.reg(Gpr::kRax) = out.value & 0xffffffffull;
    regs.reg(Gpr::kRdx) = out.value >> 32;
  }
  uint64_t rip = regs.rip + exit.instruction_length;
  if (!in_64bit_mode) rip &= 0xffffffffull;
  regs.rip = rip;
  regs.interruptibility &= ~(kBlockingBySti | kBlockingByMovSs);
  if ((regs.rflags & kRflagsTf) != 0) regs.pending = PendingException::SingleStep();
  return out;
}

absl::StatusOr<uint64_t> Controller::HostRead(uint32_t index, Vcpu& vcpu, GuestMemory& memory,
                                              uint64_t host_tsc, uint64_t host_wall_ns) {
  writes_.Clear();
  Exit exit = Exit::Rdmsr();
  exit.host_tsc = host_tsc;
  exit.host_wall_ns = host_wall_ns;
  Outcome out;
  RETURN_IF_ERROR(
      Dispatch(Access::kRead, index, 0, exit, vcpu, memory, /*host_initiated=*/true, out));
  if (out.unknown_msr) {
    return absl::NotFoundError(absl::StrFormat("no handler implements MSR %#x", index));
  }
  if (out.kind != Outcome::Kind::kRetired) {
    return absl::InvalidArgumentError(absl::StrFormat("host read of %s refused", MsrName(index)));
  }
  return out.value;
}

absl::Status Controller::HostWrite(uint32_t index, uint64_t value, Vcpu& vcpu, GuestMemory& memory,
                                   uint64_t host_tsc, uint64_t host_wall_ns) {
  writes_.Clear();
  Exit exit = Exit::Wrmsr();
  exit.host_tsc = host_tsc;
  exit.host_wall_ns = host_wall_ns;
  Outcome out;
  RETURN_IF_ERROR(
      Dispatch(Access::kWrite, index, value, exit, vcpu, memory, /*host_initiated=*/true, out));
  if (out.unknown_msr) {
    return absl::NotFoundError(absl::StrFormat("no handler implements MSR %#x", index));
  }
  if (out.kind != Outcome::Kind::kRetired) {
    return absl::InvalidArgumentError(
        absl::StrFormat("host write of %#x to %s refused", value, MsrName(index)));
  }
  return absl::OkStatus();
}

}  // namespace msrtrace
