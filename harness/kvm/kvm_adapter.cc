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

absl::StatusOr<std::unique_ptr<KvmMsrFilter>> BuildMsrFilter(absl::Span<const uint32_t> indices) {
  auto f = std::make_unique<KvmMsrFilter>();
  std::vector<uint32_t> sorted;
  sorted.reserve(indices.size());
  for (uint32_t i : indices) {
    // x2APIC MSRs are never filtered (msrs.c kvm_msr_allowed: "x2APIC MSRs do not support
    // filtering").
    if (i >= 0x800 && i <= 0x8ff) {
      f->not_filterable.push_back(i);
    } else {
      sorted.push_back(i);
    }
  }
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::sort(f->not_filterable.begin(), f->not_filterable.end());
  f->not_filterable.erase(std::unique(f->not_filterable.begin(), f->not_filterable.end()),
                          f->not_filterable.end());
  if (sorted.empty()) return absl::InvalidArgumentError("no filterable MSR index to deny");

  // Greedy: each range starts at its first index and spans at most kKvmMsrFilterMaxBits.
  std::vector<std::pair<uint32_t, uint32_t>> spans;  // [base, last]
  for (uint32_t i : sorted) {
    if (!spans.empty() && uint64_t{i} - spans.back().first < kKvmMsrFilterMaxBits) {
      spans.back().second = i;
    } else {
      spans.push_back({i, i});
    }
  }
  if (spans.size() > KVM_MSR_FILTER_MAX_RANGES) {
    return absl::ResourceExhaustedError(absl::StrCat("the MSR indices need ", spans.size(),
                                                     " filter ranges; KVM allows ",
                                                     KVM_MSR_FILTER_MAX_RANGES));
  }
  f->filter.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
  f->bitmaps.resize(spans.size());
  size_t k = 0;
  for (size_t r = 0; r < spans.size(); ++r) {
    const uint32_t base = spans[r].first;
    const uint32_t nmsrs = spans[r].second - base + 1;
    std::vector<uint8_t>& bm = f->bitmaps[r];
    bm.assign((nmsrs + 7) / 8, 0xff);  // 1 = allow.
    for (; k < sorted.size() && sorted[k] <= spans[r].second; ++k) {
      const uint32_t bit = sorted[k] - base;
      bm[bit / 8] &= static_cast<uint8_t>(~(1u << (bit % 8)));  // 0 = deny.
    }
    struct kvm_msr_filter_range& range = f->filter.ranges[r];
    range.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;
    range.nmsrs = nmsrs;
    range.base = base;
    range.bitmap = bm.data();
  }
  return f;
}

bool KvmMsrFilterDenies(const struct kvm_msr_filter& filter, uint32_t index, uint32_t flag) {
  if (index >= 0x800 && index <= 0x8ff) return false;
  for (const struct kvm_msr_filter_range& r : filter.ranges) {
    if (r.nmsrs == 0 || (r.flags & flag) == 0) continue;
    if (index >= r.base && uint64_t{index} < uint64_t{r.base} + r.nmsrs) {
      const uint32_t bit = index - r.base;
      return ((r.bitmap[bit / 8] >> (bit % 8)) & 1) == 0;
    }
  }
  return (filter.flags & KVM_MSR_FILTER_DEFAULT_DENY) != 0;
}

}  // namespace msrtrace
