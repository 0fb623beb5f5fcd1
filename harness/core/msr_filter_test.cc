// KVM's MSR routing rules as tests: the filter (Linux arch/x86/kvm/x86.c kvm_msr_allowed,
// kvm_vm_ioctl_set_msr_filter, kvm_add_msr_filter; Documentation/virt/kvm/api.rst
// KVM_X86_SET_MSR_FILTER) and the userspace exits (x86.c kvm_msr_reason, kvm_msr_user_space,
// kvm_emulate_rdmsr/wrmsr, kvm_do_msr_access; api.rst KVM_CAP_X86_USER_SPACE_MSR), on a
// Controller with one in-kernel and one userspace handler.
#include "harness/core/msr_filter.h"

#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/core/controller.h"
#include "harness/core/guest_memory.h"
#include "harness/core/msr_handler.h"
#include "harness/core/test_handlers.h"

namespace msrtrace {
namespace {

using ::testing::HasSubstr;

MsrFilterRange Range(uint32_t flags, uint32_t base, uint32_t nmsrs, uint8_t fill) {
  MsrFilterRange r;
  r.flags = flags;
  r.base = base;
  r.nmsrs = nmsrs;
  r.bitmap.assign((nmsrs + 7) / 8, fill);
  return r;
}

constexpr uint32_t kRw = kMsrFilterRead | kMsrFilterWrite;

// api.rst: "If no filter is installed ... MSR handling stays identical" (commit 1a155254ff93).
TEST(MsrFilterTest, NoFilterAllowsEverything) {
  MsrFilter f;
  EXPECT_TRUE(f.is_allow_all());
  EXPECT_TRUE(f.Allows(0x10, Access::kRead));
  EXPECT_TRUE(f.Allows(0xc0000080, Access::kWrite));
}

// kvm_msr_allowed: the bitmap bit decides; 1 = allow, 0 = deny.
TEST(MsrFilterTest, BitmapBitDecidesInsideRange) {
  MsrFilter f;
  f.ranges.push_back(Range(kRw, 0x270, 16, 0xff));
  f.ranges[0].bitmap[0] = 0xfe;  // Deny 0x270 only.
  EXPECT_FALSE(f.Allows(0x270, Access::kRead));
  EXPECT_FALSE(f.Allows(0x270, Access::kWrite));
  EXPECT_TRUE(f.Allows(0x271, Access::kRead));
  EXPECT_TRUE(f.Allows(0x27f, Access::kWrite));
}

// kvm_msr_allowed: outside every range, the default decides (KVM_MSR_FILTER_DEFAULT_DENY).
TEST(MsrFilterTest, DefaultDenyAppliesOutsideRanges) {
  MsrFilter f;
  f.default_deny = true;
  f.ranges.push_back(Range(kRw, 0x270, 8, 0xff));
  EXPECT_TRUE(f.Allows(0x271, Access::kRead));
  EXPECT_FALSE(f.Allows(0x10, Access::kRead));
  EXPECT_FALSE(f.Allows(0x278, Access::kWrite));  // One past the range.
}

// kvm_msr_allowed: a range only applies to the access types in its flags.
TEST(MsrFilterTest, RangeAppliesOnlyToItsAccessType) {
  MsrFilter f;
  f.ranges.push_back(Range(kMsrFilterWrite, 0x277, 1, 0x00));  // Deny writes of PAT.
  EXPECT_TRUE(f.Allows(0x277, Access::kRead));
  EXPECT_FALSE(f.Allows(0x277, Access::kWrite));
}

// kvm_msr_allowed: "the first range ... wins" (api.rst: ranges are checked in order).
TEST(MsrFilterTest, FirstMatchingRangeWins) {
  MsrFilter f;
  f.ranges.push_back(Range(kRw, 0x277, 1, 0x01));   // Allows PAT.
  f.ranges.push_back(Range(kRw, 0x270, 16, 0x00));  // Denies 0x270-0x27f.
  EXPECT_TRUE(f.Allows(0x277, Access::kRead));
  EXPECT_FALSE(f.Allows(0x276, Access::kRead));
  // A first range without the access's flag does not stop the search.
  MsrFilter g;
  g.ranges.push_back(Range(kMsrFilterRead, 0x277, 1, 0x01));
  g.ranges.push_back(Range(kMsrFilterWrite, 0x277, 1, 0x00));
  EXPECT_TRUE(g.Allows(0x277, Access::kRead));
  EXPECT_FALSE(g.Allows(0x277, Access::kWrite));
}

// kvm_msr_allowed: "x2APIC MSRs do not support filtering" — 0x800-0x8ff are allowed even when
// a range denies them or the default is deny (commit 043248b3280c).
TEST(MsrFilterTest, X2ApicRangeIsNeverFiltered) {
  MsrFilter f;
  f.default_deny = true;
  f.ranges.push_back(Range(kRw, 0x7f0, 0x120, 0x00));  // Covers 0x7f0-0x90f, all denied.
  EXPECT_TRUE(f.Allows(0x800, Access::kRead));
  EXPECT_TRUE(f.Allows(0x830, Access::kWrite));
  EXPECT_TRUE(f.Allows(0x8ff, Access::kWrite));
  EXPECT_FALSE(f.Allows(0x7ff, Access::kRead));
  EXPECT_FALSE(f.Allows(0x900, Access::kRead));
}

// kvm_msr_allowed computes `u32 end = start + nmsrs`: a range wrapping past 2^32 matches
// nothing, so the default applies.
TEST(MsrFilterTest, RangeWrappingPast32BitsMatchesNothing) {
  MsrFilter f;
  f.ranges.push_back(Range(kRw, 0xfffffff0, 0x20, 0x00));
  EXPECT_TRUE(f.Allows(0xfffffff8, Access::kRead));
}

// kvm_vm_ioctl_set_msr_filter: "empty && !default_allow" is EINVAL; unused slots (nmsrs 0) do
// not count as ranges.
TEST(MsrFilterTest, DefaultDenyWithoutRangesIsRejected) {
  MsrFilter f;
  f.default_deny = true;
  EXPECT_THAT(f.Validate().message(), HasSubstr("default deny"));
  f.ranges.push_back(Range(kRw, 0x10, 0, 0));
  EXPECT_FALSE(f.Validate().ok());
  f.ranges.push_back(Range(kRw, 0x10, 1, 0));
  EXPECT_TRUE(f.Validate().ok());
}

// kvm_add_msr_filter: range flags must be non-zero and within READ|WRITE; the bitmap at most
// KVM_MSR_FILTER_MAX_BITMAP_SIZE (0x600) bytes counted in longs; KVM_MSR_FILTER_MAX_RANGES 16.
TEST(MsrFilterTest, SetFilterArgumentChecks) {
  MsrFilter f;
  f.ranges.push_back(Range(0, 0x10, 1, 0));
  EXPECT_THAT(f.Validate().message(), HasSubstr("flags"));
  f.ranges[0] = Range(4, 0x10, 1, 0);
  EXPECT_THAT(f.Validate().message(), HasSubstr("flags"));
  f.ranges[0] = Range(kRw, 0, kMsrFilterMaxRangeMsrs, 0xff);
  EXPECT_TRUE(f.Validate().ok());
  f.ranges[0] = Range(kRw, 0, kMsrFilterMaxRangeMsrs + 1, 0xff);
  EXPECT_THAT(f.Validate().message(), HasSubstr("at most"));
  f.ranges.assign(17, Range(kRw, 0x10, 1, 0xff));
  EXPECT_THAT(f.Validate().message(), HasSubstr("17 ranges"));
  MsrRouting r;
  r.user_space_msr_mask = 8;  // kvm_vm_ioctl_enable_cap: bits outside the three reasons.
  EXPECT_FALSE(r.Validate().ok());
}

TEST(MsrFilterTest, DenyListFilterDeniesExactlyTheIndices) {
  MsrFilter f;
  std::vector<uint32_t> x2apic;
  ASSERT_TRUE(DenyListFilter({0x277, 0x10, 0x830, 0xc0000080, 0x277}, &f, &x2apic).ok());
  ASSERT_TRUE(f.Validate().ok());
  EXPECT_EQ(x2apic, std::vector<uint32_t>{0x830});
  EXPECT_FALSE(f.Allows(0x10, Access::kRead));
  EXPECT_FALSE(f.Allows(0x277, Access::kWrite));
  EXPECT_FALSE(f.Allows(0xc0000080, Access::kRead));
  EXPECT_TRUE(f.Allows(0x11, Access::kRead));
  EXPECT_TRUE(f.Allows(0x276, Access::kRead));
}

TEST(MsrFilterTest, ExitReasonsText) {
  EXPECT_EQ(MsrExitReasonsText(0), "none");
  EXPECT_EQ(MsrExitReasonsText(7), "inval|unknown|filter");
  uint32_t m = 0;
  ASSERT_TRUE(ParseMsrExitReasons("filter,inval", &m));
  EXPECT_EQ(m, kMsrExitReasonFilter | kMsrExitReasonInval);
  EXPECT_FALSE(ParseMsrExitReasons("bogus", &m));
}

// --- Routing on a controller -------------------------------------------------------------

constexpr uint32_t kKernelMsr = 0x277;   // In-kernel and userspace handlers.
constexpr uint32_t kUserOnlyMsr = 0x35;  // Userspace handler only.
constexpr uint32_t kNobodyMsr = 0x36;    // No handler.
constexpr uint32_t kX2ApicMsr = 0x808;   // In-kernel only.

class RoutingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const SlotId k = ctl_.layout().AddVcpuSlot("pat", 0x0007040600070406ull);
    ASSERT_TRUE(ctl_.Insert(kKernelMsr, std::make_unique<testing_util::RegisterMsr>(k)));
    ASSERT_TRUE(ctl_.Insert(kX2ApicMsr, std::make_unique<testing_util::RegisterMsr>(k)));
    ctl_.BeginUserspaceInstall();
    const SlotId u = ctl_.layout().AddVcpuSlot("pat", 0x1234);  // Stored as "user:pat".
    MsrHandler* user = ctl_.Adopt(std::make_unique<testing_util::RegisterMsr>(u));
    ASSERT_TRUE(ctl_.Insert(kKernelMsr, user));
    ASSERT_TRUE(ctl_.Insert(kUserOnlyMsr, user));
    ctl_.EndUserspaceInstall();
    vcpu_ = ctl_.CreateVcpu(0);
  }
  Outcome Access(uint32_t index, bool write, uint64_t value = 0) {
    vcpu_.regs.reg(Gpr::kRcx) = index;
    vcpu_.regs.reg(Gpr::kRax) = value & 0xffffffffull;
    vcpu_.regs.reg(Gpr::kRdx) = value >> 32;
    vcpu_.regs.pending = PendingException();
    absl::StatusOr<Outcome> o = ctl_.Handle(write ? Exit::Wrmsr() : Exit::Rdmsr(), vcpu_, mem_);
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? *o : Outcome();
  }
  void Route(uint32_t mask, MsrFilter filter = {}) {
    MsrRouting r;
    r.user_space_msr_mask = mask;
    r.filter = std::move(filter);
    ASSERT_TRUE(r.Validate().ok());
    ctl_.set_routing(r);
  }
  MsrFilter Deny(uint32_t index) {
    MsrFilter f;
    EXPECT_TRUE(DenyListFilter({index}, &f).ok());
    return f;
  }

  Controller ctl_;
  SparseMemory mem_{1 << 20};
  Vcpu vcpu_;
};

TEST_F(RoutingTest, UserspaceSlotsArePrefixed) {
  EXPECT_GE(ctl_.layout().FindVcpuSlot("pat"), 0);
  EXPECT_GE(ctl_.layout().FindVcpuSlot("user:pat"), 0);
  EXPECT_EQ(ctl_.FindUserspace(kNobodyMsr), nullptr);
}

// Without KVM_CAP_X86_USER_SPACE_MSR and without a filter, everything is in-kernel.
TEST_F(RoutingTest, DefaultRoutingIsKernel) {
  Outcome o = Access(kKernelMsr, false);
  EXPECT_EQ(o.route, MsrRoute::kKernel);
  EXPECT_EQ(o.value, 0x0007040600070406ull);
  o = Access(kUserOnlyMsr, false);
  EXPECT_EQ(o.kind, Outcome::Kind::kGpInjected);
  EXPECT_EQ(o.route, MsrRoute::kKernel);
  EXPECT_TRUE(o.unknown_msr);
}

// kvm_emulate_rdmsr: a denied access fails with KVM_MSR_RET_FILTERED; with the FILTER reason
// enabled it exits to userspace (kvm_msr_reason -> KVM_MSR_EXIT_REASON_FILTER), whose answer
// completes the instruction (complete_fast_rdmsr).
TEST_F(RoutingTest, FilteredAccessExitsWithReasonFilter) {
  Route(kMsrExitReasonFilter, Deny(kKernelMsr));
  Outcome o = Access(kKernelMsr, false);
  EXPECT_EQ(o.kind, Outcome::Kind::kRetired);
  EXPECT_EQ(o.route, MsrRoute::kUserspaceFilter);
  EXPECT_EQ(o.value, 0x1234u);
  EXPECT_EQ(vcpu_.regs.reg(Gpr::kRax), 0x1234u);
  // A userspace #GP (run->msr.error = 1) is injected without skipping the instruction.
  o = Access(kKernelMsr, true, 1ull << 63);
  EXPECT_EQ(o.kind, Outcome::Kind::kGpInjected);
  EXPECT_EQ(o.route, MsrRoute::kUserspaceFilter);
}

// kvm_msr_user_space returns 0 when the reason is not in user_space_msr_mask: a filtered
// access then gets #GP(0) from the kernel (complete_emulated_msr with r != 0).
TEST_F(RoutingTest, FilteredAccessWithoutFilterReasonIsGp) {
  Route(kMsrExitReasonInval | kMsrExitReasonUnknown, Deny(kKernelMsr));
  const uint64_t before = vcpu_.slots[0];
  Outcome o = Access(kKernelMsr, true, 6);
  EXPECT_EQ(o.kind, Outcome::Kind::kGpInjected);
  EXPECT_EQ(o.route, MsrRoute::kFilterGp);
  EXPECT_EQ(vcpu_.slots[0], before);  // No handler ran.
  EXPECT_EQ(vcpu_.regs.pending, PendingException::Gp0());
}

// The filter does not cover x2APIC MSRs: the in-kernel handler runs even when denied.
TEST_F(RoutingTest, X2ApicAccessIgnoresFilter) {
  MsrFilter f;
  f.default_deny = true;
  f.ranges.push_back(Range(kRw, 0x800, 0x100, 0x00));
  Route(kMsrExitReasonFilter, f);
  Outcome o = Access(kX2ApicMsr, false);
  EXPECT_EQ(o.kind, Outcome::Kind::kRetired);
  EXPECT_EQ(o.route, MsrRoute::kKernel);
}

// kvm_msr_reason: KVM_MSR_RET_UNSUPPORTED -> KVM_MSR_EXIT_REASON_UNKNOWN.
TEST_F(RoutingTest, UnknownMsrExitsWithReasonUnknown) {
  Route(kMsrExitReasonUnknown);
  Outcome o = Access(kUserOnlyMsr, true, 0x55);
  EXPECT_EQ(o.kind, Outcome::Kind::kRetired);
  EXPECT_EQ(o.route, MsrRoute::kUserspaceUnknown);
  EXPECT_EQ(Access(kUserOnlyMsr, false).value, 0x55u);
  // A userspace set that does not implement it either: the unknown-MSR policy (#GP).
  o = Access(kNobodyMsr, false);
  EXPECT_EQ(o.kind, Outcome::Kind::kGpInjected);
  EXPECT_EQ(o.route, MsrRoute::kUserspaceUnknown);
  EXPECT_TRUE(o.unknown_msr);
}

// kvm_do_msr_access: under ignore_msrs an unsupported access succeeds in the kernel before
// kvm_msr_user_space is consulted, so it never exits with UNKNOWN.
TEST_F(RoutingTest, IgnoreMsrsWinsOverUnknownExit) {
  ctl_.set_unknown_msr_policy(UnknownMsrPolicy::kIgnore);
  Route(kMsrExitReasonUnknown);
  Outcome o = Access(kUserOnlyMsr, false);
  EXPECT_EQ(o.kind, Outcome::Kind::kIgnored);
  EXPECT_EQ(o.route, MsrRoute::kKernel);
}

// kvm_msr_reason: any other failure (the in-kernel #GP) -> KVM_MSR_EXIT_REASON_INVAL, and only
// when INVAL is enabled.
TEST_F(RoutingTest, InKernelGpExitsWithReasonInval) {
  Route(kMsrExitReasonUnknown | kMsrExitReasonFilter);
  Outcome o = Access(kKernelMsr, true, 1ull << 63);
  EXPECT_EQ(o.kind, Outcome::Kind::kGpInjected);
  EXPECT_EQ(o.route, MsrRoute::kKernel);
  Route(kMsrExitReasonInval);
  o = Access(kKernelMsr, true, 1ull << 63);
  EXPECT_EQ(o.route, MsrRoute::kUserspaceInval);
  EXPECT_EQ(o.kind, Outcome::Kind::kGpInjected);  // The userspace handler refuses it too.
}

// kvm_msr_user_space applies to x2APIC faults too (only the filter excludes the range).
TEST_F(RoutingTest, X2ApicFaultCanExitWithReasonInval) {
  Route(kMsrExitReasonInval);
  Outcome o = Access(kX2ApicMsr, true, 1ull << 63);
  EXPECT_EQ(o.route, MsrRoute::kUserspaceInval);
  EXPECT_EQ(o.kind, Outcome::Kind::kGpInjected);  // No userspace handler: policy #GP.
  EXPECT_TRUE(o.unknown_msr);
}

// Host-initiated accesses (KVM_GET/SET_MSRS, do_get_msr/do_set_msr) never consult the filter.
TEST_F(RoutingTest, HostAccessIsNotFiltered) {
  Route(kMsrExitReasonFilter, Deny(kKernelMsr));
  ASSERT_TRUE(ctl_.HostWrite(kKernelMsr, 0x06, vcpu_, mem_).ok());
  absl::StatusOr<uint64_t> v = ctl_.HostRead(kKernelMsr, vcpu_, mem_);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 0x06u);
}

TEST_F(RoutingTest, RouteNamesRoundTrip) {
  for (MsrRoute r : {MsrRoute::kKernel, MsrRoute::kUserspaceInval, MsrRoute::kUserspaceUnknown,
                     MsrRoute::kUserspaceFilter, MsrRoute::kFilterGp}) {
    EXPECT_EQ(ParseMsrRoute(MsrRouteName(r)), r);
  }
}

}  // namespace
}  // namespace msrtrace
