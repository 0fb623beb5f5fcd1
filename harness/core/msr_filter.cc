#include "harness/core/msr_filter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace msrtrace {

bool MsrFilter::Allows(uint32_t index, Access access) const {
  if (IsX2ApicMsr(index)) return true;
  const uint32_t type = access == Access::kRead ? kMsrFilterRead : kMsrFilterWrite;
  for (const MsrFilterRange& r : ranges) {
    if (r.nmsrs == 0) continue;  // An unused slot: KVM does not install it.
    // KVM computes the end in 32 bits (u32 end = start + nmsrs), so a range that wraps past
    // 0xffffffff matches nothing; the model keeps that.
    const uint32_t end = r.base + r.nmsrs;
    if (index >= r.base && index < end && (r.flags & type) != 0) {
      const uint32_t bit = index - r.base;
      return bit / 8 < r.bitmap.size() && ((r.bitmap[bit / 8] >> (bit % 8)) & 1) != 0;
    }
  }
  return !default_deny;
}

absl::Status MsrFilter::Validate(const std::string& where) const {
  if (ranges.size() > kMsrFilterMaxRanges) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %u ranges; KVM allows at most %u", where,
                                                      ranges.size(), kMsrFilterMaxRanges));
  }
  bool empty = true;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const MsrFilterRange& r = ranges[i];
    if (r.nmsrs == 0) continue;
    empty = false;
    if (r.flags == 0 || (r.flags & ~(kMsrFilterRead | kMsrFilterWrite)) != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: range %u has flags %#x; KVM requires READ (1), WRITE (2) or both",
                          where, i, r.flags));
    }
    // kvm_add_msr_filter: BITS_TO_LONGS(nmsrs) * sizeof(long) <= 0x600.
    const uint64_t longs_bytes = (uint64_t{r.nmsrs} + 63) / 64 * 8;
    if (longs_bytes > kMsrFilterMaxBitmapBytes) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: range %u covers %u MSRs; KVM allows at most %u per range", where, i,
                          r.nmsrs, kMsrFilterMaxRangeMsrs));
    }
    if (r.bitmap.size() < (uint64_t{r.nmsrs} + 7) / 8) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: range %u has a %u-byte bitmap for %u MSRs (needs %u)", where, i,
                          r.bitmap.size(), r.nmsrs, (uint64_t{r.nmsrs} + 7) / 8));
    }
  }
  if (empty && default_deny) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": default deny with no non-empty range (KVM rejects it with EINVAL)"));
  }
  return absl::OkStatus();
}

absl::Status MsrRouting::Validate() const {
  if ((user_space_msr_mask & ~kMsrExitReasonValidMask) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("user_space_msr_reasons %#x has bits outside INVAL|UNKNOWN|FILTER (7)",
                        user_space_msr_mask));
  }
  return filter.Validate();
}

absl::Status DenyListFilter(absl::Span<const uint32_t> indices, MsrFilter* filter,
                            std::vector<uint32_t>* not_filterable) {
  std::vector<uint32_t> sorted;
  std::vector<uint32_t> x2apic;
  sorted.reserve(indices.size());
  for (uint32_t i : indices) (IsX2ApicMsr(i) ? x2apic : sorted).push_back(i);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::sort(x2apic.begin(), x2apic.end());
  x2apic.erase(std::unique(x2apic.begin(), x2apic.end()), x2apic.end());
  if (not_filterable != nullptr) *not_filterable = std::move(x2apic);
  if (sorted.empty()) return absl::InvalidArgumentError("no filterable MSR index to deny");

  std::vector<std::pair<uint32_t, uint32_t>> spans;  // [base, last]
  for (uint32_t i : sorted) {
    if (!spans.empty() && uint64_t{i} - spans.back().first < kMsrFilterMaxRangeMsrs) {
      spans.back().second = i;
    } else {
      spans.emplace_back(i, i);
    }
  }
  if (spans.size() > kMsrFilterMaxRanges) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the MSR indices need ", spans.size(), " filter ranges; KVM allows ", kMsrFilterMaxRanges));
  }
  MsrFilter f;
  f.ranges.resize(spans.size());
  size_t k = 0;
  for (size_t r = 0; r < spans.size(); ++r) {
    MsrFilterRange& range = f.ranges[r];
    range.flags = kMsrFilterRead | kMsrFilterWrite;
    range.base = spans[r].first;
    range.nmsrs = spans[r].second - range.base + 1;
    range.bitmap.assign((range.nmsrs + 7) / 8, 0xff);  // 1 = allow.
    for (; k < sorted.size() && sorted[k] <= spans[r].second; ++k) {
      const uint32_t bit = sorted[k] - range.base;
      range.bitmap[bit / 8] &= static_cast<uint8_t>(~(1u << (bit % 8)));  // 0 = deny.
    }
  }
  *filter = std::move(f);
  return absl::OkStatus();
}

std::string MsrExitReasonsText(uint32_t mask) {
  std::string s;
  auto add = [&](uint32_t bit, const char* name) {
    if ((mask & bit) == 0) return;
    if (!s.empty()) s.push_back('|');
    s.append(name);
  };
  add(kMsrExitReasonInval, "inval");
  add(kMsrExitReasonUnknown, "unknown");
  add(kMsrExitReasonFilter, "filter");
  if ((mask & ~kMsrExitReasonValidMask) != 0) {
    if (!s.empty()) s.push_back('|');
    absl::StrAppendFormat(&s, "%#x", mask & ~kMsrExitReasonValidMask);
  }
  return s.empty() ? "none" : s;
}

bool ParseMsrExitReasons(const std::string& text, uint32_t* mask) {
  uint32_t m = 0;
  if (text != "none" && !text.empty()) {
    for (absl::string_view part : absl::StrSplit(text, absl::ByAnyChar("|,"))) {
      if (part == "inval") {
        m |= kMsrExitReasonInval;
      } else if (part == "unknown") {
        m |= kMsrExitReasonUnknown;
      } else if (part == "filter") {
        m |= kMsrExitReasonFilter;
      } else {
        return false;
      }
    }
  }
  *mask = m;
  return true;
}

}  // namespace msrtrace
