#include "harness/kvm/kvm_adapter.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace msrtrace {

KvmMsrAdapter::KvmMsrAdapter(Controller& controller, GuestMemory& memory, KvmAdapterOptions options)
    : controller_(controller), memory_(memory), options_(options) {}

Exit KvmMsrAdapter::ExitFor(const struct kvm_run& run) const {
  const Access access = run.exit_reason == KVM_EXIT_X86_WRMSR ? Access::kWrite : Access::kRead;
  if (options_.vendor == Vendor::kAmdSvm) return Exit::SvmMsr(access, options_.instruction_length);
  return access == Access::kWrite ? Exit::Wrmsr(options_.instruction_length)
                                  : Exit::Rdmsr(options_.instruction_length);
}

absl::StatusOr<Outcome> KvmMsrAdapter::HandleExit(struct kvm_run* run, Vcpu& vcpu) {
  if (!IsMsrExit(*run)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kvm_run exit_reason %u is not KVM_EXIT_X86_RDMSR (%d) or KVM_EXIT_X86_WRMSR (%d)",
        run->exit_reason, KVM_EXIT_X86_RDMSR, KVM_EXIT_X86_WRMSR));
  }
  const Exit exit = ExitFor(*run);
  last_reason_ = run->msr.reason;
  vcpu.regs.reg(Gpr::kRcx) = run->msr.index;
  if (run->exit_reason == KVM_EXIT_X86_WRMSR) {
    // WRMSR input is EDX:EAX (SDM Vol2B WRMSR); upper halves of RAX/RDX are not known here.
    vcpu.regs.reg(Gpr::kRax) = run->msr.data & 0xffffffffull;
    vcpu.regs.reg(Gpr::kRdx) = run->msr.data >> 32;
  }
  vcpu.regs.pending = PendingException();
  absl::StatusOr<Outcome> out =
      hook_ ? hook_(exit, vcpu, memory_) : controller_.Handle(exit, vcpu, memory_);
  vcpu.regs.pending = PendingException();  // KVM injects from run->msr.error.
  if (!out.ok()) return out;
  ++exits_;
  switch (out->kind) {
    case Outcome::Kind::kGpInjected:
      run->msr.error = 1;
      break;
    case Outcome::Kind::kRetired:
    case Outcome::Kind::kIgnored:
      run->msr.error = 0;
      if (run->exit_reason == KVM_EXIT_X86_RDMSR) {
        run->msr.data = out->kind == Outcome::Kind::kRetired ? out->value : 0;
      }
      break;
    case Outcome::Kind::kUnspecified:
      return absl::InternalError("controller returned an unspecified outcome");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<KvmMsrFilter>> ToKvmMsrFilter(const MsrFilter& model) {
  absl::Status st = model.Validate();
  if (!st.ok()) return st;
  auto f = std::make_unique<KvmMsrFilter>();
  f->model = model;
  f->filter.flags = model.default_deny ? KVM_MSR_FILTER_DEFAULT_DENY : KVM_MSR_FILTER_DEFAULT_ALLOW;
  f->bitmaps.resize(model.ranges.size());
  for (size_t r = 0; r < model.ranges.size(); ++r) {
    const MsrFilterRange& m = model.ranges[r];
    // KVM copies BITS_TO_LONGS(nmsrs) longs from the bitmap pointer: pad to whole longs.
    std::vector<uint8_t>& bm = f->bitmaps[r];
    bm.assign((uint64_t{m.nmsrs} + 63) / 64 * 8, 0);
    std::copy(m.bitmap.begin(), m.bitmap.begin() + std::min(m.bitmap.size(), bm.size()),
              bm.begin());
    struct kvm_msr_filter_range& range = f->filter.ranges[r];
    range.flags = m.flags;
    range.nmsrs = m.nmsrs;
    range.base = m.base;
    range.bitmap = bm.data();
  }
  return f;
}

MsrFilter FromKvmMsrFilter(const struct kvm_msr_filter& filter) {
  MsrFilter m;
  m.default_deny = (filter.flags & KVM_MSR_FILTER_DEFAULT_DENY) != 0;
  for (const struct kvm_msr_filter_range& r : filter.ranges) {
    if (r.nmsrs == 0) continue;
    MsrFilterRange range;
    range.flags = r.flags;
    range.base = r.base;
    range.nmsrs = r.nmsrs;
    if (r.bitmap != nullptr) range.bitmap.assign(r.bitmap, r.bitmap + (r.nmsrs + 7) / 8);
    m.ranges.push_back(std::move(range));
  }
  return m;
}

absl::StatusOr<std::unique_ptr<KvmMsrFilter>> BuildMsrFilter(absl::Span<const uint32_t> indices) {
  MsrFilter model;
  std::vector<uint32_t> not_filterable;
  absl::Status st = DenyListFilter(indices, &model, &not_filterable);
  if (!st.ok()) return st;
  absl::StatusOr<std::unique_ptr<KvmMsrFilter>> f = ToKvmMsrFilter(model);
  if (f.ok()) (*f)->not_filterable = std::move(not_filterable);
  return f;
}

bool KvmMsrFilterDenies(const struct kvm_msr_filter& filter, uint32_t index, uint32_t flag) {
  return !FromKvmMsrFilter(filter).Allows(
      index, flag == KVM_MSR_FILTER_WRITE ? Access::kWrite : Access::kRead);
}

}  // namespace msrtrace
