#include "harness/kvm/kvm_adapter.h"

#include <linux/kvm.h>

#include <cstring>
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

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing_util::RegisterMsr;

class KvmAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SlotId slot = controller_.layout().AddVcpuSlot("reg", 0x1111);
    ASSERT_TRUE(controller_.Insert(0x277, std::make_unique<RegisterMsr>(slot)));
    vcpu_ = controller_.CreateVcpu(0);
    memset(&run_, 0, sizeof(run_));
  }
  // A kvm_run as KVM leaves it for a userspace MSR exit.
  void MakeExit(uint32_t reason, uint32_t index, uint64_t data = 0) {
    memset(&run_, 0, sizeof(run_));
    run_.exit_reason = reason;
    run_.msr.index = index;
    run_.msr.data = data;
    run_.msr.reason = KVM_MSR_EXIT_REASON_FILTER;
  }

  Controller controller_;
  SparseMemory memory_{1 << 20};
  Vcpu vcpu_;
  struct kvm_run run_;
};

TEST_F(KvmAdapterTest, RdmsrCompletesDataFromTheHandler) {
  KvmMsrAdapter adapter(controller_, memory_);
  MakeExit(KVM_EXIT_X86_RDMSR, 0x277, 0xdeadbeef);
  absl::StatusOr<Outcome> out = adapter.HandleExit(&run_, vcpu_);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->kind, Outcome::Kind::kRetired);
  EXPECT_EQ(run_.msr.data, 0x1111u);
  EXPECT_EQ(run_.msr.error, 0);
  EXPECT_EQ(adapter.last_reason(), static_cast<uint32_t>(KVM_MSR_EXIT_REASON_FILTER));
}

TEST_F(KvmAdapterTest, WrmsrPassesDataAsEdxEaxToTheHandler) {
  KvmMsrAdapter adapter(controller_, memory_);
  MakeExit(KVM_EXIT_X86_WRMSR, 0x277, 0x0000000500000006ull);
  ASSERT_TRUE(adapter.HandleExit(&run_, vcpu_).ok());
  EXPECT_EQ(run_.msr.error, 0);
  EXPECT_EQ(vcpu_.regs.reg(Gpr::kRax), 6u);
  EXPECT_EQ(vcpu_.regs.reg(Gpr::kRdx), 5u);
  MakeExit(KVM_EXIT_X86_RDMSR, 0x277);
  ASSERT_TRUE(adapter.HandleExit(&run_, vcpu_).ok());
  EXPECT_EQ(run_.msr.data, 0x0000000500000006ull);
}

TEST_F(KvmAdapterTest, HandlerGpSetsErrorOne) {
  KvmMsrAdapter adapter(controller_, memory_);
  MakeExit(KVM_EXIT_X86_WRMSR, 0x277, 1ull << 63);
  absl::StatusOr<Outcome> out = adapter.HandleExit(&run_, vcpu_);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->kind, Outcome::Kind::kGpInjected);
  EXPECT_EQ(run_.msr.error, 1);
  EXPECT_FALSE(vcpu_.regs.pending.valid);  // KVM injects, not the shadow.
}

TEST_F(KvmAdapterTest, UnknownMsrUnderInjectGpSetsErrorOne) {
  KvmMsrAdapter adapter(controller_, memory_);
  MakeExit(KVM_EXIT_X86_RDMSR, 0x12345);
  ASSERT_TRUE(adapter.HandleExit(&run_, vcpu_).ok());
  EXPECT_EQ(run_.msr.error, 1);
}

TEST_F(KvmAdapterTest, UnknownMsrUnderIgnoreReadsZero) {
  controller_.set_unknown_msr_policy(UnknownMsrPolicy::kIgnore);
  KvmMsrAdapter adapter(controller_, memory_);
  MakeExit(KVM_EXIT_X86_RDMSR, 0x12345, 0x77);
  ASSERT_TRUE(adapter.HandleExit(&run_, vcpu_).ok());
  EXPECT_EQ(run_.msr.error, 0);
  EXPECT_EQ(run_.msr.data, 0u);
}

TEST_F(KvmAdapterTest, UnknownMsrUnderFailIsAnErrorAndLeavesRunUntouched) {
  controller_.set_unknown_msr_policy(UnknownMsrPolicy::kFail);
  KvmMsrAdapter adapter(controller_, memory_);
  MakeExit(KVM_EXIT_X86_RDMSR, 0x12345, 0x77);
  EXPECT_FALSE(adapter.HandleExit(&run_, vcpu_).ok());
  EXPECT_EQ(run_.msr.error, 0);
  EXPECT_EQ(run_.msr.data, 0x77u);
}

TEST_F(KvmAdapterTest, NonMsrExitIsRejected) {
  KvmMsrAdapter adapter(controller_, memory_);
  MakeExit(KVM_EXIT_HLT, 0);
  absl::StatusOr<Outcome> out = adapter.HandleExit(&run_, vcpu_);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("exit_reason 5"));
}

TEST_F(KvmAdapterTest, SvmVendorPresentsSvmMsrExits) {
  KvmAdapterOptions opt;
  opt.vendor = Vendor::kAmdSvm;
  KvmMsrAdapter adapter(controller_, memory_, opt);
  MakeExit(KVM_EXIT_X86_WRMSR, 0x277, 1);
  Exit e = adapter.ExitFor(run_);
  EXPECT_EQ(e.vendor, Vendor::kAmdSvm);
  EXPECT_EQ(e.reason, kSvmExitMsr);
  EXPECT_EQ(e.info1, 1u);
  ASSERT_TRUE(adapter.HandleExit(&run_, vcpu_).ok());
}

TEST_F(KvmAdapterTest, HookSeesEveryExitWithItsInputs) {
  KvmMsrAdapter adapter(controller_, memory_);
  std::vector<uint32_t> seen;
  adapter.set_handle_hook([&](const Exit& e, Vcpu& v, GuestMemory& m) {
    seen.push_back(static_cast<uint32_t>(v.regs.reg(Gpr::kRcx)));
    EXPECT_EQ(e.reason, seen.size() == 1 ? kVmxExitWrmsr : kVmxExitRdmsr);
    return controller_.Handle(e, v, m);
  });
  MakeExit(KVM_EXIT_X86_WRMSR, 0x277, 9);
  ASSERT_TRUE(adapter.HandleExit(&run_, vcpu_).ok());
  MakeExit(KVM_EXIT_X86_RDMSR, 0x277);
  ASSERT_TRUE(adapter.HandleExit(&run_, vcpu_).ok());
  EXPECT_EQ(run_.msr.data, 9u);
  EXPECT_THAT(seen, ElementsAre(0x277u, 0x277u));
  EXPECT_EQ(adapter.exits_handled(), 2u);
}

// --- The filter ---------------------------------------------------------------------------

TEST(KvmMsrFilterTest, DeniesGivenIndicesAndAllowsTheRest) {
  std::vector<uint32_t> idx = {0x277, 0x1b, 0xc0000080, 0x1b};
  absl::StatusOr<std::unique_ptr<KvmMsrFilter>> f = BuildMsrFilter(idx);
  ASSERT_TRUE(f.ok()) << f.status();
  const struct kvm_msr_filter& k = (*f)->filter;
  EXPECT_EQ(k.flags, static_cast<uint32_t>(KVM_MSR_FILTER_DEFAULT_ALLOW));
  for (uint32_t i : {0x277u, 0x1bu, 0xc0000080u}) {
    EXPECT_TRUE(KvmMsrFilterDenies(k, i, KVM_MSR_FILTER_READ)) << std::hex << i;
    EXPECT_TRUE(KvmMsrFilterDenies(k, i, KVM_MSR_FILTER_WRITE)) << std::hex << i;
  }
  for (uint32_t i : {0x1au, 0x1cu, 0x276u, 0x10u, 0xc0000081u}) {
    EXPECT_FALSE(KvmMsrFilterDenies(k, i, KVM_MSR_FILTER_READ)) << std::hex << i;
  }
  // Two ranges: the low indices share one, 0xc0000080 has its own.
  EXPECT_EQ(k.ranges[0].base, 0x1bu);
  EXPECT_EQ(k.ranges[0].nmsrs, 0x277u - 0x1bu + 1);
  EXPECT_EQ(k.ranges[1].base, 0xc0000080u);
  EXPECT_EQ(k.ranges[2].nmsrs, 0u);
  EXPECT_EQ(k.ranges[0].flags, static_cast<uint32_t>(KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE));
}

TEST(KvmMsrFilterTest, RangesNeverExceedTheKvmBitmapSize) {
  std::vector<uint32_t> idx = {0x0, kKvmMsrFilterMaxBits - 1, kKvmMsrFilterMaxBits};
  absl::StatusOr<std::unique_ptr<KvmMsrFilter>> f = BuildMsrFilter(idx);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->filter.ranges[0].nmsrs, kKvmMsrFilterMaxBits);
  EXPECT_EQ((*f)->filter.ranges[1].base, kKvmMsrFilterMaxBits);
  for (uint32_t i : idx) EXPECT_TRUE(KvmMsrFilterDenies((*f)->filter, i, KVM_MSR_FILTER_READ));
}

TEST(KvmMsrFilterTest, X2ApicIndicesAreReportedNotFiltered) {
  std::vector<uint32_t> idx = {0x802, 0x830, 0x1b};
  absl::StatusOr<std::unique_ptr<KvmMsrFilter>> f = BuildMsrFilter(idx);
  ASSERT_TRUE(f.ok());
  EXPECT_THAT((*f)->not_filterable, ElementsAre(0x802u, 0x830u));
  EXPECT_EQ((*f)->filter.ranges[0].base, 0x1bu);
  EXPECT_EQ((*f)->filter.ranges[0].nmsrs, 1u);
}

TEST(KvmMsrFilterTest, MoreThanSixteenRangesIsAnError) {
  std::vector<uint32_t> idx;
  for (uint32_t i = 0; i < 17; ++i) idx.push_back(i * 0x100000);
  absl::StatusOr<std::unique_ptr<KvmMsrFilter>> f = BuildMsrFilter(idx);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(KvmMsrFilterTest, NoFilterableIndexIsAnError) {
  std::vector<uint32_t> idx = {0x800};
  EXPECT_EQ(BuildMsrFilter(idx).status().code(), absl::StatusCode::kInvalidArgument);
}

// The ioctl argument and replay use one model: what BuildMsrFilter installs is its `model`,
// the conversion back gives the same model, and the raw-struct rule (KvmMsrFilterDenies)
// agrees with MsrFilter::Allows for every index around the ranges.
TEST(KvmMsrFilterTest, IoctlArgumentAndReplayModelAgree) {
  auto f = BuildMsrFilter({0x10, 0x277, 0x3a, 0xc0000080, 0x4b564d01});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(FromKvmMsrFilter((*f)->filter), (*f)->model);
  for (uint32_t base : {0x0u, 0x270u, 0xc0000000u, 0x4b564d00u}) {
    for (uint32_t i = base; i < base + 0x100; ++i) {
      EXPECT_EQ(KvmMsrFilterDenies((*f)->filter, i, KVM_MSR_FILTER_READ),
                !(*f)->model.Allows(i, Access::kRead))
          << std::hex << i;
    }
  }
  // A hand-made model with DEFAULT_DENY and a write-only range converts faithfully.
  MsrFilter m;
  m.default_deny = true;
  MsrFilterRange r;
  r.flags = kMsrFilterWrite;
  r.base = 0x277;
  r.nmsrs = 1;
  r.bitmap = {1};
  m.ranges.push_back(r);
  auto k = ToKvmMsrFilter(m);
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ((*k)->filter.flags, static_cast<uint32_t>(KVM_MSR_FILTER_DEFAULT_DENY));
  EXPECT_EQ((*k)->filter.ranges[0].flags, static_cast<uint32_t>(KVM_MSR_FILTER_WRITE));
  EXPECT_FALSE(KvmMsrFilterDenies((*k)->filter, 0x277, KVM_MSR_FILTER_WRITE));
  EXPECT_TRUE(KvmMsrFilterDenies((*k)->filter, 0x277, KVM_MSR_FILTER_READ));
  EXPECT_EQ(FromKvmMsrFilter((*k)->filter), m);
  // KVM rejects what the model rejects.
  m.ranges.clear();
  EXPECT_EQ(ToKvmMsrFilter(m).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace msrtrace
