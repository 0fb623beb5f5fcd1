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

const char* MsrRouteName(MsrRoute r) {
  switch (r) {
    case MsrRoute::kKernel:
      return "kernel";
    case MsrRoute::kUserspaceInval:
      return "userspace-inval";
    case MsrRoute::kUserspaceUnknown:
      return "userspace-unknown";
    case MsrRoute::kUserspaceFilter:
      return "userspace-filter";
    case MsrRoute::kFilterGp:
      return "filter-gp";
    case MsrRoute::kUnspecified:
      break;
  }
  return "unspecified";
}

absl::optional<MsrRoute> ParseMsrRoute(absl::string_view name) {
  for (MsrRoute r :
       {MsrRoute::kUnspecified, MsrRoute::kKernel, MsrRoute::kUserspaceInval,
        MsrRoute::kUserspaceUnknown, MsrRoute::kUserspaceFilter, MsrRoute::kFilterGp}) {
    if (name == MsrRouteName(r)) return r;
  }
  return absl::nullopt;
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
  if (!prefix_.empty()) name.insert(0, prefix_);
  const auto id = static_cast<SlotId>(vcpu_slots_.size());
  vcpu_index_.emplace(name, static_cast<int>(id));  // The first of duplicate names wins.
  vcpu_slots_.push_back(SlotInfo{std::move(name), reset});
  return id;
}

SlotId StateLayout::AddVmSlot(std::string name, uint64_t reset) {
  if (!prefix_.empty()) name.insert(0, prefix_);
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
    dense_[i] = std::make_unique<uint16_t[]>(kWindows[i].size);  // Value-initialized: none.
  }
}

MsrHandler* Controller::Adopt(std::unique_ptr<MsrHandler> handler) {
  owned_.push_back(std::move(handler));
  return owned_.back().get();
}

uint16_t Controller::DenseId(MsrHandler* handler) {
  for (size_t id = 1; id < dense_handlers_.size(); ++id) {
    if (dense_handlers_[id] == handler) return static_cast<uint16_t>(id);
  }
  if (dense_handlers_.size() > UINT16_MAX) return 0;
  dense_handlers_.push_back(handler);
  return static_cast<uint16_t>(dense_handlers_.size() - 1);
}

uint16_t* Controller::Slot(uint32_t index) {
  for (size_t i = 0; i < kWindows.size(); ++i) {
    const uint32_t off = index - kWindows[i].base;  // Wraps for index < base.
    if (off < kWindows[i].size) return &dense_[i][off];
  }
  return nullptr;
}

MsrHandler* Controller::Find(uint32_t index) const {
  for (size_t i = 0; i < kWindows.size(); ++i) {
    const uint32_t off = index - kWindows[i].base;
    if (off < kWindows[i].size) return dense_handlers_[dense_[i][off]];
  }
  auto it = std::lower_bound(sparse_.begin(), sparse_.end(), index,
                             [](const auto& e, uint32_t i) { return e.first < i; });
  return (it != sparse_.end() && it->first == index) ? it->second : nullptr;
}

bool Controller::Insert(uint32_t index, MsrHandler* handler) {
  return InsertRange(index, index, handler);
}

bool Controller::Insert(uint32_t index, std::unique_ptr<MsrHandler> handler) {
  if (handler == nullptr) return false;
  if ((installing_userspace_ ? FindUserspace(index) : Find(index)) != nullptr) return false;
  return Insert(index, Adopt(std::move(handler)));
}

bool Controller::InsertRange(uint32_t first, uint32_t last, MsrHandler* handler) {
  if (handler == nullptr || first > last) return false;
  if (installing_userspace_) {
    for (uint64_t i = first; i <= last; ++i) {
      if (FindUserspace(static_cast<uint32_t>(i)) != nullptr) return false;
    }
    for (uint64_t i = first; i <= last; ++i) {
      const auto index = static_cast<uint32_t>(i);
      auto it = std::lower_bound(user_handlers_.begin(), user_handlers_.end(), index,
                                 [](const auto& e, uint32_t x) { return e.first < x; });
      user_handlers_.insert(it, {index, handler});
    }
    return true;
  }
  for (uint64_t i = first; i <= last; ++i) {
    if (Find(static_cast<uint32_t>(i)) != nullptr) return false;
  }
  const uint16_t id = DenseId(handler);
  for (uint64_t i = first; i <= last && id == 0; ++i) {
    // More distinct handlers in the windows than ids: nothing registered.
    if (Slot(static_cast<uint32_t>(i)) != nullptr) return false;
  }
  for (uint64_t i = first; i <= last; ++i) {
    const auto index = static_cast<uint32_t>(i);
    if (uint16_t* slot = Slot(index)) {
      *slot = id;
    } else {
      auto it = std::lower_bound(sparse_.begin(), sparse_.end(), index,
                                 [](const auto& e, uint32_t x) { return e.first < x; });
      sparse_.insert(it, {index, handler});
    }
  }
  return true;
}

void Controller::BeginUserspaceInstall() {
  installing_userspace_ = true;
  layout_.set_name_prefix("user:");
}

void Controller::EndUserspaceInstall() {
  installing_userspace_ = false;
  layout_.set_name_prefix("");
}

MsrHandler* Controller::FindUserspace(uint32_t index) const {
  auto it = std::lower_bound(user_handlers_.begin(), user_handlers_.end(), index,
                             [](const auto& e, uint32_t i) { return e.first < i; });
  return (it != user_handlers_.end() && it->first == index) ? it->second : nullptr;
}

void Controller::set_routing(const MsrRouting& routing) {
  routing_ = routing;
  routing_active_ = routing_.active();
}

MsrHandler* Controller::Replace(uint32_t index, MsrHandler* handler) {
  MsrHandler* old = Find(index);
  if (handler == nullptr || old == nullptr) return nullptr;
  if (uint16_t* slot = Slot(index)) {
    const uint16_t id = DenseId(handler);
    if (id == 0) return nullptr;
    *slot = id;
  } else {
    auto it = std::lower_bound(sparse_.begin(), sparse_.end(), index,
                               [](const auto& e, uint32_t x) { return e.first < x; });
    it->second = handler;
  }
  return old;
}

std::vector<uint32_t> Controller::RegisteredIndices() const {
  std::vector<uint32_t> out;
  for (size_t w = 0; w < kWindows.size(); ++w) {
    for (uint32_t off = 0; off < kWindows[w].size; ++off) {
      if (dense_[w][off] != 0) out.push_back(kWindows[w].base + off);
    }
  }
  for (const auto& e : sparse_) out.push_back(e.first);
  std::sort(out.begin(), out.end());
  return out;
}

std::string Controller::MsrName(uint32_t index) const {
  for (const MsrHandler* h : {Find(index), FindUserspace(index)}) {
    if (h == nullptr) continue;
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

ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::Status Controller::RunHandler(
    MsrHandler* handler, Access access, uint32_t index, uint64_t value, const Exit& exit,
    Vcpu& vcpu, GuestMemory& memory, bool host_initiated, MsrResult& result) {
  if (handler == nullptr) {
    result = MsrResult::Unsupported();
    return absl::OkStatus();
  }
  ExitContext ctx(exit, vcpu, vm_slots_, memory, writes_, host_initiated, state_journal_);
  absl::StatusOr<MsrResult> r =
      access == Access::kRead ? handler->Read(index, ctx) : handler->Write(index, value, ctx);
  if (ABSL_PREDICT_FALSE(!r.ok())) {
    return absl::Status(r.status().code(),
                        absl::StrCat(AccessName(access), " ", MsrName(index), " (vCPU ", vcpu.id,
                                     "): ", r.status().message()));
  }
  // Field by field, not a copy of the StatusOr: a wide load of fields just stored one by one
  // stalls store-to-load forwarding on every exit.
  result.kind = r->kind;
  result.value = r->value;
  return absl::OkStatus();
}

namespace {

// Records a handler's answer in `out`: retired (with the value read) or #GP. False when the
// handler does not support the access, which the caller's unknown-MSR rules then decide.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool ReflectResult(const MsrResult& r, Access access,
                                                       Outcome& out) {
  switch (r.kind) {
    case MsrResult::Kind::kOk:
      out.kind = Outcome::Kind::kRetired;
      if (access == Access::kRead) out.value = r.value;
      return true;
    case MsrResult::Kind::kGp:
      out.kind = Outcome::Kind::kGpInjected;
      return true;
    case MsrResult::Kind::kUnsupported:
      break;
  }
  return false;
}

}  // namespace

absl::Status Controller::ApplyUnknownPolicy(Access access, uint32_t index, uint64_t value,
                                            const Vcpu& vcpu, Outcome& out) const {
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

ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::Status Controller::Dispatch(
    Access access, uint32_t index, uint64_t value, const Exit& exit, Vcpu& vcpu,
    GuestMemory& memory, bool host_initiated, Outcome& out, bool defer_unknown) {
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
  out.route = MsrRoute::kKernel;
  if (ABSL_PREDICT_FALSE(dispatch_trace_ != nullptr) && !host_initiated) {
    dispatch_trace_->index = index;
    ++dispatch_trace_->count;
  }

  MsrResult r;
  absl::Status st =
      RunHandler(Find(index), access, index, value, exit, vcpu, memory, host_initiated, r);
  if (ABSL_PREDICT_FALSE(!st.ok())) return st;
  if (ReflectResult(r, access, out)) return absl::OkStatus();
  if (defer_unknown && options_.unknown_msr_policy != UnknownMsrPolicy::kIgnore) {
    // kvm_do_msr_access turns an unsupported access into a success under ignore_msrs before
    // the userspace decision; every other policy is decided by the router.
    out.unknown_msr = true;
    out.kind = Outcome::Kind::kUnspecified;
    return absl::OkStatus();
  }
  return ApplyUnknownPolicy(access, index, value, vcpu, out);
}

absl::Status Controller::Route(Access access, uint32_t index, uint64_t value, const Exit& exit,
                               Vcpu& vcpu, GuestMemory& memory, Outcome& out) {
  // kvm_emulate_rdmsr/wrmsr: kvm_get/set_msr_with_filter, then kvm_msr_user_space with the
  // reason kvm_msr_reason gives for the failure (harness/core/msr_filter.h).
  uint32_t reason = 0;
  MsrRoute route = MsrRoute::kKernel;
  if (!routing_.filter.Allows(index, access)) {
    out.access = access;
    out.index = index;
    out.value = access == Access::kWrite ? value : 0;
    out.unknown_msr = false;
    reason = kMsrExitReasonFilter;
    route = MsrRoute::kUserspaceFilter;
    if ((routing_.user_space_msr_mask & reason) == 0) {
      out.kind = Outcome::Kind::kGpInjected;
      out.route = MsrRoute::kFilterGp;
      return absl::OkStatus();
    }
  } else {
    absl::Status st = Dispatch(access, index, value, exit, vcpu, memory,
                               /*host_initiated=*/false, out, /*defer_unknown=*/true);
    if (ABSL_PREDICT_FALSE(!st.ok())) return st;
    if (out.kind == Outcome::Kind::kRetired || out.kind == Outcome::Kind::kIgnored) {
      return absl::OkStatus();
    }
    const bool unknown = out.kind == Outcome::Kind::kUnspecified;
    reason = unknown ? kMsrExitReasonUnknown : kMsrExitReasonInval;
    route = unknown ? MsrRoute::kUserspaceUnknown : MsrRoute::kUserspaceInval;
    if ((routing_.user_space_msr_mask & reason) == 0) {
      if (unknown) return ApplyUnknownPolicy(access, index, value, vcpu, out);
      return absl::OkStatus();  // The in-kernel #GP.
    }
  }
  // The userspace exit: the userspace handler set answers (run->msr.data / run->msr.error).
  out.route = route;
  out.unknown_msr = false;
  out.value = access == Access::kWrite ? value : 0;
  MsrResult r;
  absl::Status st = RunHandler(FindUserspace(index), access, index, value, exit, vcpu, memory,
                               /*host_initiated=*/false, r);
  if (ABSL_PREDICT_FALSE(!st.ok())) return st;
  if (ReflectResult(r, access, out)) return absl::OkStatus();
  return ApplyUnknownPolicy(access, index, value, vcpu, out);
}

absl::StatusOr<Outcome> Controller::Handle(const Exit& exit, Vcpu& vcpu, GuestMemory& memory) {
  // Every return returns `result` (built in the caller's storage, never copied).
  absl::StatusOr<Outcome> result(absl::in_place);
  Outcome& out = *result;
  writes_.Clear();
  const absl::optional<Access> access = MsrAccessOf(exit);
  if (!access.has_value()) {
    result = ExitNotHandledError(exit);
    return result;
  }

  VcpuRegs& regs = vcpu.regs;
  const auto index = static_cast<uint32_t>(regs.reg(Gpr::kRcx));  // ECX; RCX[63:32] ignored.
  const uint64_t value = (regs.reg(Gpr::kRdx) << 32) | (regs.reg(Gpr::kRax) & 0xffffffffull);
  // The instruction executes in the mode it was fetched in: a WRMSR that changes EFER affects
  // the next instruction, not this one's RIP (harness/replay/exit_check.h states the same rule).
  const bool in_64bit_mode = regs.in_64bit_mode();
  absl::Status st =
      ABSL_PREDICT_FALSE(routing_active_)
          ? Route(*access, index, *access == Access::kWrite ? value : 0, exit, vcpu, memory, out)
          : Dispatch(*access, index, *access == Access::kWrite ? value : 0, exit, vcpu, memory,
                     /*host_initiated=*/false, out);
  if (ABSL_PREDICT_FALSE(!st.ok())) {
    result = std::move(st);
    return result;
  }

  if (out.kind == Outcome::Kind::kGpInjected) {
    regs.pending = PendingException::Gp0();
    return result;
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
  return result;
}

absl::StatusOr<Outcome> Controller::HostAccess(Access access, uint32_t index, uint64_t value,
                                               Vcpu& vcpu, GuestMemory& memory, const Exit& exit) {
  writes_.Clear();
  Outcome out;
  absl::Status st =
      Dispatch(access, index, access == Access::kWrite ? value : 0, exit, vcpu, memory,
               /*host_initiated=*/true, out, /*defer_unknown=*/true);
  if (!st.ok()) return st;
  if (out.kind == Outcome::Kind::kUnspecified) out.kind = Outcome::Kind::kGpInjected;  // Refused.
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
