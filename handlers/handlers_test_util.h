// Test fixture for the reference handler families: a real Controller with the reference set
// installed for a CPU profile, one vCPU in 64-bit mode with paging, and helpers that drive
// RDMSR/WRMSR exits through Controller::Handle (RCX/RAX/RDX) and check fault atomicity with
// StateDigest.
#ifndef MSRTRACE_HANDLERS_HANDLERS_TEST_UTIL_H_
#define MSRTRACE_HANDLERS_HANDLERS_TEST_UTIL_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"
#include "harness/core/controller.h"
#include "harness/core/snapshot.h"

namespace msrtrace {
namespace testing_util {

class ReferenceTest : public ::testing::Test {
 protected:
  void SetUp() override { Boot("intel-icx"); }

  void Boot(const char* profile_name) {
    const CpuProfile* p = FindProfile(profile_name);
    ASSERT_NE(p, nullptr) << profile_name;
    Boot(*p);
  }
  void Boot(const CpuProfile& profile) {
    profile_ = profile;
    ctl_ = std::make_unique<Controller>();
    absl::Status s = InstallReferenceHandlers(*ctl_, profile_);
    ASSERT_TRUE(s.ok()) << s;
    vcpus_.clear();
    vcpus_.push_back(ctl_->CreateVcpu(0));
    Vcpu& v = vcpus_[0];
    v.regs.cr0 = kCr0Pe | kCr0Pg;
    v.regs.cr4 = kCr4Pae;
    v.regs.efer = kEferSce | kEferLme | kEferLma | kEferNxe;
    v.regs.cs_l = true;
    v.regs.rip = 0x1000;
  }

  Vcpu& vcpu() { return vcpus_[0]; }

  // One guest RDMSR/WRMSR through Controller::Handle. Upper halves of RCX/RAX/RDX hold junk.
  absl::StatusOr<Outcome> Exec(Access access, uint32_t index, uint64_t value = 0) {
    VcpuRegs& r = vcpu().regs;
    r.reg(Gpr::kRcx) = 0xdead000000000000ull | index;
    if (access == Access::kWrite) {
      r.reg(Gpr::kRax) = 0xbeef000000000000ull | (value & 0xffffffffull);
      r.reg(Gpr::kRdx) = 0xbeef000000000000ull | (value >> 32);
    }
    return ctl_->Handle(access == Access::kRead ? Exit::Rdmsr() : Exit::Wrmsr(), vcpu(), mem_);
  }

  // RDMSR that must retire; returns the value.
  uint64_t Read(uint32_t index) {
    const uint64_t rip = vcpu().regs.rip;
    absl::StatusOr<Outcome> o = Exec(Access::kRead, index);
    EXPECT_TRUE(o.ok()) << o.status();
    if (!o.ok()) return 0;
    EXPECT_EQ(o->kind, Outcome::Kind::kRetired) << absl::StrFormat("rdmsr %#x", index);
    EXPECT_EQ(vcpu().regs.rip, rip + 2);
    const uint64_t v = (vcpu().regs.reg(Gpr::kRdx) << 32) | vcpu().regs.reg(Gpr::kRax);
    EXPECT_EQ(v, o->value);
    return o->value;
  }

  // WRMSR that must retire.
  void Write(uint32_t index, uint64_t value) {
    absl::StatusOr<Outcome> o = Exec(Access::kWrite, index, value);
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(o->kind, Outcome::Kind::kRetired)
        << absl::StrFormat("wrmsr %#x <- %#x", index, value);
  }

  // Runs the access and succeeds when it injected #GP(0) with the whole state (registers, RIP,
  // slots, handler state, memory) unchanged apart from the pending exception. `unknown` tells
  // whether the handler said "unsupported" (KVM_MSR_RET_UNSUPPORTED) rather than #GP (1).
  ::testing::AssertionResult Faults(Access access, uint32_t index, uint64_t value = 0,
                                    bool unknown = false) {
    // Put the argument registers in place first, so the digest compares only the effects.
    VcpuRegs& r = vcpu().regs;
    r.reg(Gpr::kRcx) = 0xdead000000000000ull | index;
    r.reg(Gpr::kRax) = 0xbeef000000000000ull | (value & 0xffffffffull);
    r.reg(Gpr::kRdx) = 0xbeef000000000000ull | (value >> 32);
    const PendingException before_pending = r.pending;
    const uint64_t before = StateDigest(*ctl_, vcpus_, mem_);
    absl::StatusOr<Outcome> o = Exec(access, index, value);
    const char* what = AccessName(access);
    if (!o.ok()) {
      return ::testing::AssertionFailure()
             << what << " " << absl::StrFormat("%#x", index) << ": error " << o.status();
    }
    if (o->kind != Outcome::Kind::kGpInjected) {
      return ::testing::AssertionFailure()
             << absl::StrFormat("%s %#x <- %#x: not #GP (value %#x)", what, index, value, o->value);
    }
    if (r.pending != PendingException::Gp0()) {
      return ::testing::AssertionFailure() << "no #GP(0) pending";
    }
    if (o->unknown_msr != unknown) {
      return ::testing::AssertionFailure() << absl::StrFormat("%s %#x: unknown_msr = %d, want %d",
                                                              what, index, o->unknown_msr, unknown);
    }
    r.pending = before_pending;
    const uint64_t after = StateDigest(*ctl_, vcpus_, mem_);
    if (after != before) {
      return ::testing::AssertionFailure()
             << absl::StrFormat("%s %#x: state changed on #GP", what, index);
    }
    return ::testing::AssertionSuccess();
  }
  ::testing::AssertionResult WriteFaults(uint32_t index, uint64_t value) {
    return Faults(Access::kWrite, index, value, /*unknown=*/false);
  }
  ::testing::AssertionResult ReadFaults(uint32_t index) {
    return Faults(Access::kRead, index, 0, /*unknown=*/false);
  }
  // KVM_MSR_RET_UNSUPPORTED: #GP under the default unknown-MSR policy.
  ::testing::AssertionResult WriteUnsupported(uint32_t index, uint64_t value) {
    return Faults(Access::kWrite, index, value, /*unknown=*/true);
  }
  ::testing::AssertionResult ReadUnsupported(uint32_t index) {
    return Faults(Access::kRead, index, 0, /*unknown=*/true);
  }

  absl::StatusOr<uint64_t> HostRead(uint32_t index) { return ctl_->HostRead(index, vcpu(), mem_); }
  absl::Status HostWrite(uint32_t index, uint64_t value) {
    return ctl_->HostWrite(index, value, vcpu(), mem_);
  }

  CpuProfile profile_;
  std::unique_ptr<Controller> ctl_;
  std::vector<Vcpu> vcpus_;
  SparseMemory mem_;
};

}  // namespace testing_util
}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_HANDLERS_TEST_UTIL_H_
