#include "importers/kvm_trace_assembler.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace msrtrace {
namespace importers {
namespace {

struct Collected {
  ExitEvent event;
  uint64_t line;
};

class CollectSink : public ExitEventSink {
 public:
  absl::Status OnEvent(const ExitEvent& e, uint64_t line) override {
    events.push_back({e, line});
    return absl::OkStatus();
  }
  std::vector<Collected> events;
};

// Feeds every line of `text` through the parser and the assembler.
std::vector<Collected> Assemble(absl::string_view text, AssemblerStats* stats = nullptr,
                                AssemblerOptions options = {}) {
  CollectSink sink;
  Assembler a(options, &sink);
  uint64_t n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++n;
    ParsedLine p;
    LineError e;
    LineStatus st = ParseLine(line, &p, &e);
    if (st == LineStatus::kLost) {
      EXPECT_TRUE(a.Gap(p.cpu, p.lost).ok());
    }
    if (st != LineStatus::kEvent) continue;
    EXPECT_TRUE(a.Feed(p, n).ok());
  }
  EXPECT_TRUE(a.Finish().ok());
  if (stats != nullptr) *stats = a.stats();
  return sink.events;
}

TEST(KvmTraceAssemblerTest, ExitMsrEntryGivesRipAndInstructionLength) {
  auto ev = Assemble(
      "q-10 [000] d.... 1.0: kvm_exit: vcpu 0 reason MSR_READ rip 0x1000 info1 0x0 info2 0x0 "
      "intr_info 0x0 error_code 0x0\n"
      "q-10 [000] d.... 1.0: kvm_msr: msr_read 1b = 0xfee00900\n"
      "q-10 [000] d.... 1.0: kvm_entry: vcpu 0, rip 0x1002\n");
  ASSERT_EQ(ev.size(), 1u);
  const ExitEvent& e = ev[0].event;
  EXPECT_EQ(ev[0].line, 2u);
  EXPECT_EQ(e.seq, 1u);
  EXPECT_EQ(e.vcpu_id, 0u);
  EXPECT_EQ(e.exit.vendor, Vendor::kIntelVmx);
  EXPECT_EQ(e.exit.reason, kVmxExitRdmsr);
  EXPECT_EQ(e.exit.instruction_length, 2);
  EXPECT_EQ(e.index(), 0x1bu);
  EXPECT_EQ(e.rip, 0x1000u);
  EXPECT_EQ(e.rip_out, 0x1002u);
  EXPECT_EQ(e.kind, RecordedKind::kRetired);
  EXPECT_EQ(e.rax_out, 0xfee00900u);
  EXPECT_EQ(e.rdx_out, 0u);
  EXPECT_EQ(e.known, kFieldRip | kFieldRipOut | kFieldInstrLength | kFieldRaxRdxOut);
}

TEST(KvmTraceAssemblerTest, WriteKnowsInputsButNotOutputs) {
  auto ev = Assemble("q-10 [000] d.... 1.0: kvm_msr: msr_write c0000080 = 0x1234500000d01\n");
  ASSERT_EQ(ev.size(), 1u);
  const ExitEvent& e = ev[0].event;
  EXPECT_EQ(e.rax, 0xd01u);
  EXPECT_EQ(e.rdx, 0x12345u);
  EXPECT_EQ(e.known, kFieldRaxRdxIn);
  EXPECT_EQ(e.exit.reason, kVmxExitWrmsr);
  EXPECT_EQ(e.exit.instruction_length, 0);
}

TEST(KvmTraceAssemblerTest, GpEventHasPendingGpAndNoLength) {
  auto ev = Assemble(
      "q-10 [000] d.... 1.0: kvm_exit: vcpu 0 reason MSR_WRITE rip 0x1000 info1 0x0 info2 0x0 "
      "intr_info 0x0 error_code 0x0\n"
      "q-10 [000] d.... 1.0: kvm_msr: msr_write c0000100 = 0xaaaaaaaaaaaaaaaa (#GP)\n"
      "q-10 [000] d.... 1.0: kvm_inj_exception: #GP (0x0)\n"
      "q-10 [000] d.... 1.0: kvm_entry: vcpu 0, rip 0x1000\n");
  ASSERT_EQ(ev.size(), 1u);
  const ExitEvent& e = ev[0].event;
  EXPECT_EQ(e.kind, RecordedKind::kGpInjected);
  EXPECT_EQ(e.pending_out, PendingException::Gp0());
  EXPECT_EQ(e.known & kFieldInstrLength, 0u);
  EXPECT_EQ(e.known & kFieldPendingOut, kFieldPendingOut);
  EXPECT_EQ(e.rip_out, 0x1000u);
}

TEST(KvmTraceAssemblerTest, InjExceptionGpMarksAccessAsFaulted) {
  auto ev = Assemble(
      "q-10 [000] d.... 1.0: kvm_msr: msr_read 4b564d09 = 0x0\n"
      "q-10 [000] d.... 1.0: kvm_inj_exception: #GP (0x0)\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].event.kind, RecordedKind::kGpInjected);
  EXPECT_EQ(ev[0].event.known & kFieldRaxRdxOut, 0u);
}

TEST(KvmTraceAssemblerTest, InterleavedThreadsSplitIntoPerVcpuStreams) {
  auto ev = Assemble(
      "a-10 [000] d.... 1.0: kvm_exit: vcpu 0 reason MSR_READ rip 0x100 info1 0x0 info2 0x0 "
      "intr_info 0x0 error_code 0x0\n"
      "b-11 [001] d.... 1.0: kvm_exit: vcpu 1 reason MSR_WRITE rip 0x200 info1 0x0 info2 0x0 "
      "intr_info 0x0 error_code 0x0\n"
      "b-11 [001] d.... 1.0: kvm_msr: msr_write 277 = 0x7040600070406\n"
      "a-10 [000] d.... 1.0: kvm_msr: msr_read 277 = 0x7040600070406\n"
      "a-10 [000] d.... 1.0: kvm_entry: vcpu 0, rip 0x103\n"
      "b-11 [001] d.... 1.0: kvm_entry: vcpu 1, rip 0x202\n");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].event.vcpu_id, 0u);
  EXPECT_EQ(ev[0].event.exit.instruction_length, 3);  // Completed first.
  EXPECT_EQ(ev[1].event.vcpu_id, 1u);
  EXPECT_EQ(ev[1].event.exit.reason, kVmxExitWrmsr);
  EXPECT_EQ(ev[1].event.exit.instruction_length, 2);
  EXPECT_LT(ev[0].event.seq, ev[1].event.seq);
}

TEST(KvmTraceAssemblerTest, OldExitFormatTakesVcpuFromEntry) {
  auto ev = Assemble(
      "a-10 [000] d... 1.0: kvm_exit: reason MSR_READ rip 0x100 info 0 0\n"
      "a-10 [000] d... 1.0: kvm_msr: msr_read 1b = 0xfee00900\n"
      "a-10 [000] d... 1.0: kvm_entry: vcpu 5\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].event.vcpu_id, 5u);
  EXPECT_EQ(ev[0].event.known & kFieldRipOut, 0u);
  EXPECT_EQ(ev[0].event.known & kFieldInstrLength, 0u);
}

TEST(KvmTraceAssemblerTest, ThreadsWithoutVcpuIdsGetOneVcpuEach) {
  AssemblerStats stats;
  auto ev = Assemble(
      "a 10 [000] 1.0: kvm:kvm_msr: msr_read 1b = 0x1\n"
      "b 11 [000] 1.0: kvm:kvm_msr: msr_read 1b = 0x2\n"
      "a 10 [000] 1.0: kvm:kvm_msr: msr_read 1b = 0x3\n",
      &stats);
  ASSERT_EQ(ev.size(), 3u);
  for (const Collected& c : ev) {
    // Thread a (values 1 and 3) is vCPU 0, thread b (value 2) vCPU 1.
    EXPECT_EQ(c.event.vcpu_id, c.event.rax_out == 2 ? 1u : 0u) << c.event.rax_out;
  }
  EXPECT_EQ(stats.vcpu_from_thread, 2u);
}

TEST(KvmTraceAssemblerTest, SvmExitGivesSvmExitCodeAndInfo1) {
  auto ev = Assemble(
      "a-10 [000] d.... 1.0: kvm_exit: vcpu 0 reason msr rip 0x100 info1 0x0000000000000001 "
      "info2 0x0 intr_info 0x0 error_code 0x0\n"
      "a-10 [000] d.... 1.0: kvm_msr: msr_write c0000080 = 0xd01\n"
      "a-10 [000] d.... 1.0: kvm_entry: vcpu 0, rip 0x102\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].event.exit.vendor, Vendor::kAmdSvm);
  EXPECT_EQ(ev[0].event.exit.reason, kSvmExitMsr);
  EXPECT_EQ(ev[0].event.exit.info1, 1u);
  EXPECT_EQ(ev[0].event.exit.instruction_length, 2);
}

TEST(KvmTraceAssemblerTest, DefaultVendorAppliesWithoutKvmExit) {
  AssemblerOptions opt;
  opt.default_vendor = Vendor::kAmdSvm;
  auto ev = Assemble("a-10 [000] d.... 1.0: kvm_msr: msr_read 10 = 0x5\n", nullptr, opt);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].event.exit.vendor, Vendor::kAmdSvm);
  EXPECT_EQ(ev[0].event.exit.info1, 0u);
}

TEST(KvmTraceAssemblerTest, DirectionMismatchDropsExitInformation) {
  AssemblerStats stats;
  auto ev = Assemble(
      "a-10 [000] d.... 1.0: kvm_exit: vcpu 0 reason MSR_READ rip 0x100 info1 0x0 info2 0x0 "
      "intr_info 0x0 error_code 0x0\n"
      "a-10 [000] d.... 1.0: kvm_msr: msr_write 1b = 0x1\n"
      "a-10 [000] d.... 1.0: kvm_entry: vcpu 0, rip 0x102\n",
      &stats);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(stats.access_mismatch, 1u);
  EXPECT_EQ(ev[0].event.known & kFieldRip, 0u);
}

TEST(KvmTraceAssemblerTest, MsrExitWithoutKvmMsrIsCounted) {
  AssemblerStats stats;
  auto ev = Assemble(
      "a-10 [000] d.... 1.0: kvm_exit: vcpu 0 reason MSR_READ rip 0x100 info1 0x0 info2 0x0 "
      "intr_info 0x0 error_code 0x0\n"
      "a-10 [000] d.... 1.0: kvm_entry: vcpu 0, rip 0x102\n",
      &stats);
  EXPECT_TRUE(ev.empty());
  EXPECT_EQ(stats.msr_exits_without_kvm_msr, 1u);
}

TEST(KvmTraceAssemblerTest, EntryRipFarAwayGivesNoInstructionLength) {
  auto ev = Assemble(
      "a-10 [000] d.... 1.0: kvm_exit: vcpu 0 reason MSR_READ rip 0x100 info1 0x0 info2 0x0 "
      "intr_info 0x0 error_code 0x0\n"
      "a-10 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\n"
      "a-10 [000] d.... 1.0: kvm_entry: vcpu 0, rip 0x5000\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].event.known & kFieldInstrLength, 0u);
  EXPECT_EQ(ev[0].event.rip_out, 0x5000u);
}

TEST(KvmTraceAssemblerTest, VolatileFlagComesFromTheSet) {
  VolatileMsrSet set = VolatileMsrSet::Builtin();
  AssemblerOptions opt;
  opt.volatile_msrs = &set;
  auto ev = Assemble(
      "a-10 [000] d.... 1.0: kvm_msr: msr_read 10 = 0x5\n"
      "a-10 [000] d.... 1.0: kvm_msr: msr_read 277 = 0x5\n",
      nullptr, opt);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(ev[0].event.volatile_value);
  EXPECT_FALSE(ev[1].event.volatile_value);
}

TEST(KvmTraceAssemblerTest, VolatileSetHandlesOverlappingRanges) {
  VolatileMsrSet s;
  s.Add(0x100, 0x200);
  s.Add(0x150, 0x160);
  EXPECT_TRUE(s.Contains(0x1f0));
  EXPECT_TRUE(s.Contains(0x155));
  EXPECT_FALSE(s.Contains(0x201));
  EXPECT_FALSE(s.Contains(0xff));
}

TEST(KvmTraceAssemblerGapTest, GapMarksThreadsSeenOnTheCpuAndTheFirstOneAfter) {
  AssemblerStats stats;
  auto ev = Assemble(
      "q-10 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\n"  // Thread 10 on CPU 0.
      "q-10 [000] d.... 1.0: kvm_entry: vcpu 0, rip 0x12\n"
      "q-11 [001] d.... 1.0: kvm_msr: msr_read 1b = 0x2\n"  // Thread 11 on CPU 1.
      "q-11 [001] d.... 1.0: kvm_entry: vcpu 1, rip 0x22\n"
      "CPU:0 [LOST 9 EVENTS]\n"
      "q-11 [000] d.... 2.0: kvm_msr: msr_read 1b = 0x2\n"  // First thread on CPU 0 after it.
      "q-10 [002] d.... 2.0: kvm_msr: msr_read 1b = 0x1\n"  // Thread 10, migrated.
      "q-10 [002] d.... 2.0: kvm_msr: msr_read 1b = 0x1\n",
      &stats);
  ASSERT_EQ(ev.size(), 5u);
  std::vector<uint64_t> lost_vcpu0, lost_vcpu1;
  for (size_t i = 2; i < ev.size(); ++i) {
    (ev[i].event.vcpu_id == 0 ? lost_vcpu0 : lost_vcpu1).push_back(ev[i].event.lost_before);
  }
  // Thread 10, the only one seen on CPU 0 before the marker: its next event carries the count;
  // the one after it does not.
  EXPECT_EQ(lost_vcpu0, (std::vector<uint64_t>{9, 0}));
  // Thread 11, the first on CPU 0 after the marker: a gap of unknown size (the CPU also ran
  // thread 10).
  EXPECT_EQ(lost_vcpu1, (std::vector<uint64_t>{UINT64_MAX}));
  EXPECT_EQ(stats.gaps, 1u);
  EXPECT_EQ(stats.events_lost, 9u);
  EXPECT_EQ(stats.events_after_gap, 2u);
}

TEST(KvmTraceAssemblerGapTest, ManyMarkersOnABusyCpuStayCheap) {
  // 2000 threads on CPU 0, then 20000 markers: each marker only visits the threads seen on
  // the CPU since the previous one (a quadratic walk would take minutes here).
  std::string text;
  for (int t = 0; t < 2000; ++t) {
    absl::StrAppend(&text, "q-", t + 1, " [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\n");
  }
  for (int i = 0; i < 20000; ++i) absl::StrAppend(&text, "CPU:0 [LOST 1 EVENTS]\n");
  absl::StrAppend(&text, "q-1 [000] d.... 2.0: kvm_msr: msr_read 1b = 0x1\n");
  AssemblerStats stats;
  auto ev = Assemble(text, &stats);
  ASSERT_EQ(ev.size(), 2001u);
  EXPECT_EQ(stats.gaps, 20000u);
  EXPECT_EQ(ev.back().event.lost_before, UINT64_MAX);
}

}  // namespace
}  // namespace importers
}  // namespace msrtrace
