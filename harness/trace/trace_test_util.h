// Test helpers for the trace format tests: sample values with every field set, and field-by-field
// comparisons (the plain types have no operator==). Header-only; tests only.
#ifndef MSRTRACE_HARNESS_TRACE_TEST_UTIL_H_
#define MSRTRACE_HARNESS_TRACE_TEST_UTIL_H_

#include <cstdint>
#include <string>

#include "gtest/gtest.h"
#include "harness/core/snapshot.h"
#include "harness/trace/trace_types.h"

namespace msrtrace {
namespace testing_util {

inline TraceHeader SampleHeader() {
  TraceHeader h;
  h.producer = "trace test";
  h.cpu_profile = "intel-icx";
  h.unknown_msr_policy = UnknownMsrPolicy::kIgnore;
  h.vcpu_count = 2;
  h.handler_set = "reference";
  h.creation_time_ns = 1700000000123456789;
  h.labels = {{"host", "lab-3"}, {"kernel", "6.1.0"}, {"host", "again"}};
  return h;
}

// Two vCPUs with two slots each, two VM-wide slots, two handler states and `pages` pages.
inline Snapshot SampleSnapshot(int pages = 2) {
  Snapshot s;
  s.vcpu_slot_names = {"TSC_OFFSET", "APIC_BASE"};
  s.vm_slot_names = {"KVM_CLOCK", "HV_GUEST_OS_ID"};
  for (uint32_t id = 0; id < 2; ++id) {
    Vcpu v;
    v.id = id * 7;
    for (int i = 0; i < kNumGprs; ++i) v.regs.gpr[i] = 0x1000 * (id + 1) + i;
    v.regs.rip = 0xffffffff81000000ull + id;
    v.regs.rflags = 0x202;
    v.regs.cr0 = 0x80050033;
    v.regs.cr4 = 0x3706f0;
    v.regs.efer = 0xd01;
    v.regs.cs_l = true;
    v.regs.interruptibility = id;
    if (id == 1) v.regs.pending = PendingException::Gp0();
    v.slots = {0xdead0000 + id, 0xfee00900};
    s.vcpus.push_back(v);
  }
  s.vm_slots = {0x123, 0x8100000000000000ull};
  s.handler_states = {"state-a", std::string("\0\1\2binary", 9)};
  for (int p = 0; p < pages; ++p) {
    uint8_t page[kPageSize];
    for (size_t i = 0; i < kPageSize; ++i) page[i] = static_cast<uint8_t>(i * (p + 3));
    s.memory.SetPage(0x10000 + p * kPageSize * 3, absl::MakeConstSpan(page, kPageSize));
  }
  return s;
}

// An event with every field set to a non-default value; `seq` varies the values.
inline ExitEvent SampleEvent(uint64_t seq) {
  ExitEvent e;
  e.seq = seq;
  e.vcpu_id = 7;
  e.known = kFieldAll;
  e.volatile_value = (seq % 2) == 1;
  e.exit = Exit::Wrmsr(3);
  e.exit.info1 = 0x55;
  e.exit.host_tsc = 0x1234567890 + seq;
  e.exit.host_wall_ns = 1700000000000000000ull + seq;
  e.rcx = 0xc0000080;
  e.rax = 0xd01 + seq;
  e.rdx = 0x1;
  e.rip = 0xffffffff81001000ull + seq;
  e.rflags = 0x246;
  e.cr0 = 0x80050033;
  e.cr4 = 0x3706f0;
  e.efer = 0xd01;
  e.cs_l = true;
  e.interruptibility = kBlockingBySti;
  e.kind = RecordedKind::kGpInjected;
  e.rax_out = 0x11 + seq;
  e.rdx_out = 0x22;
  e.rip_out = e.rip + 3;
  e.pending_out = PendingException{true, 14, true, 0x6, 0xcafe};
  e.memory_writes = {{0x3000, "abcdefgh"}, {0x5008, std::string(40, 'z')}};
  e.memory_writes_digest = 0xfeedfacecafebeefull;
  e.error = "handler said no";
  return e;
}

inline void ExpectHeaderEq(const TraceHeader& a, const TraceHeader& b) {
  EXPECT_EQ(a.format_major, b.format_major);
  EXPECT_EQ(a.format_minor, b.format_minor);
  EXPECT_EQ(a.producer, b.producer);
  EXPECT_EQ(a.cpu_profile, b.cpu_profile);
  EXPECT_EQ(a.unknown_msr_policy, b.unknown_msr_policy);
  EXPECT_EQ(a.vcpu_count, b.vcpu_count);
  EXPECT_EQ(a.handler_set, b.handler_set);
  EXPECT_EQ(a.creation_time_ns, b.creation_time_ns);
  EXPECT_EQ(a.labels, b.labels);
}

inline void ExpectSnapshotEq(const Snapshot& a, const Snapshot& b) {
  EXPECT_EQ(a.vcpu_slot_names, b.vcpu_slot_names);
  EXPECT_EQ(a.vm_slot_names, b.vm_slot_names);
  ASSERT_EQ(a.vcpus.size(), b.vcpus.size());
  for (size_t i = 0; i < a.vcpus.size(); ++i) {
    EXPECT_EQ(a.vcpus[i].id, b.vcpus[i].id) << "vcpu " << i;
    EXPECT_EQ(a.vcpus[i].regs, b.vcpus[i].regs) << "vcpu " << i;
    EXPECT_EQ(a.vcpus[i].slots, b.vcpus[i].slots) << "vcpu " << i;
  }
  EXPECT_EQ(a.vm_slots, b.vm_slots);
  EXPECT_EQ(a.handler_states, b.handler_states);
  EXPECT_EQ(a.memory.size(), b.memory.size());
  ASSERT_EQ(a.memory.PageAddresses(), b.memory.PageAddresses());
  for (uint64_t gpa : a.memory.PageAddresses()) {
    EXPECT_EQ(0, memcmp(a.memory.Page(gpa), b.memory.Page(gpa), kPageSize)) << "gpa " << gpa;
  }
  EXPECT_EQ(StateDigest(a), StateDigest(b));
}

inline void ExpectEventEq(const ExitEvent& a, const ExitEvent& b) {
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.vcpu_id, b.vcpu_id);
  EXPECT_EQ(a.known, b.known);
  EXPECT_EQ(a.volatile_value, b.volatile_value);
  EXPECT_EQ(a.exit.vendor, b.exit.vendor);
  EXPECT_EQ(a.exit.reason, b.exit.reason);
  EXPECT_EQ(a.exit.info1, b.exit.info1);
  EXPECT_EQ(a.exit.instruction_length, b.exit.instruction_length);
  EXPECT_EQ(a.exit.host_tsc, b.exit.host_tsc);
  EXPECT_EQ(a.exit.host_wall_ns, b.exit.host_wall_ns);
  EXPECT_EQ(a.rcx, b.rcx);
  EXPECT_EQ(a.rax, b.rax);
  EXPECT_EQ(a.rdx, b.rdx);
  EXPECT_EQ(a.rip, b.rip);
  EXPECT_EQ(a.rflags, b.rflags);
  EXPECT_EQ(a.cr0, b.cr0);
  EXPECT_EQ(a.cr4, b.cr4);
  EXPECT_EQ(a.efer, b.efer);
  EXPECT_EQ(a.cs_l, b.cs_l);
  EXPECT_EQ(a.interruptibility, b.interruptibility);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.rax_out, b.rax_out);
  EXPECT_EQ(a.rdx_out, b.rdx_out);
  EXPECT_EQ(a.rip_out, b.rip_out);
  EXPECT_EQ(a.pending_out, b.pending_out);
  ASSERT_EQ(a.memory_writes.size(), b.memory_writes.size());
  for (size_t i = 0; i < a.memory_writes.size(); ++i) {
    EXPECT_EQ(a.memory_writes[i].gpa, b.memory_writes[i].gpa);
    EXPECT_EQ(a.memory_writes[i].bytes, b.memory_writes[i].bytes);
  }
  EXPECT_EQ(a.memory_writes_digest, b.memory_writes_digest);
  EXPECT_EQ(a.error, b.error);
}

}  // namespace testing_util
}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_TRACE_TEST_UTIL_H_
