#include "importers/kvm_trace_parser.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace msrtrace {
namespace importers {
namespace {

using ::testing::HasSubstr;

ParsedLine MustParse(absl::string_view line) {
  ParsedLine p;
  LineError e;
  LineStatus st = ParseLine(line, &p, &e);
  EXPECT_EQ(st, LineStatus::kEvent) << line << "\n  error: " << e.what << " at " << e.column;
  return p;
}

LineError MustFail(absl::string_view line) {
  ParsedLine p;
  LineError e;
  EXPECT_EQ(ParseLine(line, &p, &e), LineStatus::kBad) << line;
  return e;
}

// --- Renderings -------------------------------------------------------------------------

TEST(KvmTraceParserTest, FtraceNewFiveColumnFlagsKvmMsrRead) {
  ParsedLine p = MustParse(
      " qemu-system-x86-8397    [002] .....  1404.389509: kvm_msr: msr_read c0000080 = 0xd01");
  EXPECT_EQ(p.rendering, Rendering::kFtraceNew);
  EXPECT_EQ(p.type, EventType::kMsr);
  EXPECT_EQ(p.comm, "qemu-system-x86");
  EXPECT_EQ(p.tid, 8397u);
  EXPECT_EQ(p.cpu, 2u);
  EXPECT_EQ(p.timestamp_ns, 1404389509000ull);
  EXPECT_FALSE(p.write);
  EXPECT_EQ(p.index, 0xc0000080u);
  EXPECT_EQ(p.data, 0xd01u);
  EXPECT_FALSE(p.gp);
}

TEST(KvmTraceParserTest, FtraceOldFourColumnFlagsKvmMsrWrite) {
  ParsedLine p = MustParse(
      "        qemu-kvm-1234  [000] d...   100.000001: kvm_msr: msr_write 1b = 0xfee00900");
  EXPECT_EQ(p.rendering, Rendering::kFtraceOld);
  EXPECT_TRUE(p.write);
  EXPECT_EQ(p.index, 0x1bu);
  EXPECT_EQ(p.data, 0xfee00900u);
}

TEST(KvmTraceParserTest, FtraceCommWithSpacesAndDashes) {
  ParsedLine p =
      MustParse("       CPU 0/KVM-12345   [007] d.... 5000.123456: kvm_msr: msr_read 10 = 0x12345");
  EXPECT_EQ(p.comm, "CPU 0/KVM");
  EXPECT_EQ(p.tid, 12345u);
  EXPECT_EQ(p.cpu, 7u);
}

TEST(KvmTraceParserTest, TraceCmdReportPaddedEventName) {
  ParsedLine p = MustParse(
      "     qemu-kvm-4711  [001]  2345.678901: kvm_msr:              msr_write 6e0 = 0x1234");
  EXPECT_EQ(p.rendering, Rendering::kTraceCmd);
  EXPECT_EQ(p.type, EventType::kMsr);
  EXPECT_EQ(p.index, 0x6e0u);
}

TEST(KvmTraceParserTest, TraceCmdUnknownCommIsAccepted) {
  ParsedLine p =
      MustParse("          <...>-4711  [001]  2345.678901: kvm_msr:  msr_read 1b = 0xfee00900");
  EXPECT_EQ(p.comm, "<...>");
  EXPECT_EQ(p.tid, 4711u);
}

TEST(KvmTraceParserTest, PerfScriptSystemPrefixAndCommWithSpaces) {
  ParsedLine p = MustParse(
      "CPU 0/KVM 1821753 [015] 4831258.258053: kvm:kvm_msr: msr_write 6e0 = 0x2b3c3ef0bd8a4");
  EXPECT_EQ(p.rendering, Rendering::kPerfScript);
  EXPECT_EQ(p.comm, "CPU 0/KVM");
  EXPECT_EQ(p.tid, 1821753u);
  EXPECT_EQ(p.cpu, 15u);
  EXPECT_EQ(p.event_name, "kvm_msr");
  EXPECT_EQ(p.data, 0x2b3c3ef0bd8a4u);
}

TEST(KvmTraceParserTest, PerfScriptOtherSystemIsOtherEvent) {
  ParsedLine p = MustParse(
      "qemu 10 [001] 1.000000: sched:sched_switch: prev_comm=qemu prev_pid=10 ==> next=x");
  EXPECT_EQ(p.type, EventType::kOther);
}

TEST(KvmTraceParserTest, TrailingCarriageReturnIgnored) {
  ParsedLine p = MustParse("qemu-1 [000] .... 1.0: kvm_msr: msr_read 1b = 0x0\r");
  EXPECT_EQ(p.index, 0x1bu);
}

// --- kvm_msr ------------------------------------------------------------------------------

TEST(KvmTraceParserTest, KvmMsrGpSuffixSetsGp) {
  ParsedLine p = MustParse("qemu-1 [000] ..... 1.0: kvm_msr: msr_write c0000100 = 0xaaaa (#GP)");
  EXPECT_TRUE(p.gp);
  EXPECT_TRUE(p.write);
  EXPECT_EQ(p.data, 0xaaaau);
}

TEST(KvmTraceParserTest, KvmMsrFullWidthValue) {
  ParsedLine p = MustParse("qemu-1 [000] ..... 1.0: kvm_msr: msr_read 277 = 0xffffffffffffffff");
  EXPECT_EQ(p.data, ~0ull);
}

// --- kvm_exit in every era ------------------------------------------------------------------

TEST(KvmTraceParserTest, KvmExitRecentVmxFormat) {
  ParsedLine p = MustParse(
      "qemu-1 [000] d.... 1.0: kvm_exit: vcpu 3 reason MSR_WRITE rip 0xffffffff81072a4c "
      "info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 "
      "error_code 0x00000000");
  EXPECT_EQ(p.type, EventType::kExit);
  EXPECT_TRUE(p.has_vcpu);
  EXPECT_EQ(p.vcpu, 3u);
  EXPECT_TRUE(p.msr_exit);
  EXPECT_EQ(p.vendor, Vendor::kIntelVmx);
  EXPECT_EQ(p.reason, kVmxExitWrmsr);
  EXPECT_TRUE(p.has_access);
  EXPECT_EQ(p.access, Access::kWrite);
  EXPECT_EQ(p.rip, 0xffffffff81072a4cull);
}

TEST(KvmTraceParserTest, KvmExitOldFormatWithoutVcpu) {
  ParsedLine p =
      MustParse("qemu-1 [000] d... 1.0: kvm_exit: reason MSR_READ rip 0xffffffff8105a1b2 info 0 0");
  EXPECT_FALSE(p.has_vcpu);
  EXPECT_EQ(p.access, Access::kRead);
  EXPECT_EQ(p.reason, kVmxExitRdmsr);
  EXPECT_TRUE(p.has_info1);
  EXPECT_EQ(p.info1, 0u);
}

TEST(KvmTraceParserTest, KvmExit2019FormatWithVcpuAndInfo) {
  ParsedLine p =
      MustParse("qemu-1 [000] d... 1.0: kvm_exit: vcpu 1 reason MSR_READ rip 0x1000 info 0 0");
  EXPECT_EQ(p.vcpu, 1u);
  EXPECT_EQ(p.rip, 0x1000u);
}

TEST(KvmTraceParserTest, KvmExitSvmKernelNameTakesDirectionFromInfo1) {
  ParsedLine p = MustParse(
      "qemu-1 [000] d.... 1.0: kvm_exit: vcpu 0 reason msr rip 0xffffffff81001234 "
      "info1 0x0000000000000001 info2 0x0000000000000000 intr_info 0x00000000 "
      "error_code 0x00000000");
  EXPECT_EQ(p.vendor, Vendor::kAmdSvm);
  EXPECT_EQ(p.reason, kSvmExitMsr);
  EXPECT_TRUE(p.has_access);
  EXPECT_EQ(p.access, Access::kWrite);
}

TEST(KvmTraceParserTest, KvmExitTraceCmdPluginSvmName) {
  ParsedLine p = MustParse(
      "qemu-1 [000] 1.0: kvm_exit:             reason EXIT_MSR rip 0xffffffff81001234 info 0 0");
  EXPECT_EQ(p.vendor, Vendor::kAmdSvm);
  EXPECT_EQ(p.access, Access::kRead);
}

TEST(KvmTraceParserTest, KvmExitTraceCmdPluginWithFunctionName) {
  ParsedLine p = MustParse(
      "qemu-1 [000] 1.0: kvm_exit: reason MSR_WRITE rip 0x402919 native_write_msr+0x4 info 0 0");
  EXPECT_EQ(p.rip, 0x402919u);
  EXPECT_TRUE(p.has_info1);
}

TEST(KvmTraceParserTest, KvmExitUnknownReasonIsNotMsrExit) {
  ParsedLine p = MustParse("qemu-1 [000] 1.0: kvm_exit: reason UNKNOWN (77) rip 0x402919 info 0 0");
  EXPECT_FALSE(p.msr_exit);
  EXPECT_EQ(p.reason, 77u);
}

TEST(KvmTraceParserTest, KvmExitNonMsrReason) {
  ParsedLine p = MustParse(
      "qemu-1 [000] d.... 1.0: kvm_exit: vcpu 0 reason HLT rip 0x10 info1 "
      "0x0 info2 0x0 intr_info 0x0 error_code 0x0");
  EXPECT_EQ(p.type, EventType::kExit);
  EXPECT_FALSE(p.msr_exit);
}

TEST(KvmTraceParserTest, KvmExitReasonFlagsAreSkipped) {
  ParsedLine p = MustParse(
      "qemu-1 [000] d.... 1.0: kvm_exit: vcpu 0 reason MSR_READ FAILED_VMENTRY rip 0x10 info1 "
      "0x0 info2 0x0 intr_info 0x0 error_code 0x0");
  EXPECT_TRUE(p.msr_exit);
  EXPECT_EQ(p.rip, 0x10u);
}

// --- kvm_entry and kvm_inj_exception ----------------------------------------------------------

TEST(KvmTraceParserTest, KvmEntryOldFormatVcpuOnly) {
  ParsedLine p = MustParse("qemu-1 [000] d... 1.0: kvm_entry: vcpu 2");
  EXPECT_EQ(p.type, EventType::kEntry);
  EXPECT_EQ(p.vcpu, 2u);
  EXPECT_FALSE(p.has_rip);
}

TEST(KvmTraceParserTest, KvmEntryKernelFormatWithRip) {
  ParsedLine p = MustParse("qemu-1 [000] d.... 1.0: kvm_entry: vcpu 2, rip 0xffffffff81072a4e");
  EXPECT_EQ(p.vcpu, 2u);
  EXPECT_TRUE(p.has_rip);
  EXPECT_EQ(p.rip, 0xffffffff81072a4eull);
}

TEST(KvmTraceParserTest, KvmEntryImmediateExitSuffix) {
  ParsedLine p = MustParse("qemu-1 [000] d.... 1.0: kvm_entry: vcpu 0, rip 0x12[immediate exit]");
  EXPECT_EQ(p.rip, 0x12u);
}

TEST(KvmTraceParserTest, KvmEntryTraceCmdPluginFormat) {
  ParsedLine p = MustParse("qemu-1 [000] 1.0: kvm_entry:             vcpu 1 rip 0x402921");
  EXPECT_EQ(p.vcpu, 1u);
  EXPECT_EQ(p.rip, 0x402921u);
}

TEST(KvmTraceParserTest, KvmInjExceptionGp) {
  ParsedLine p = MustParse("qemu-1 [000] d.... 1.0: kvm_inj_exception: #GP (0x0)");
  EXPECT_EQ(p.type, EventType::kInjException);
  EXPECT_EQ(p.vector, 13);
}

// --- Skipped and other lines ------------------------------------------------------------------

TEST(KvmTraceParserTest, HeaderCommentAndBlankLinesAreSkipped) {
  ParsedLine p;
  LineError e;
  for (absl::string_view line :
       {"# tracer: nop", "#", "", "   ", "cpus=4", "version = 6", "CPU 3 is empty",
        "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION"}) {
    EXPECT_EQ(ParseLine(line, &p, &e), LineStatus::kSkip) << line;
  }
}

TEST(KvmTraceParserTest, OtherKvmEventIsOtherNotBad) {
  ParsedLine p = MustParse("qemu-1 [000] d.... 1.0: kvm_pio: pio_read at 0x70 size 1 count 1");
  EXPECT_EQ(p.type, EventType::kOther);
  EXPECT_EQ(p.event_name, "kvm_pio");
}

// --- Malformed lines ------------------------------------------------------------------------

TEST(KvmTraceParserTest, NotATraceLineIsBad) {
  EXPECT_THAT(MustFail("hello world").what, HasSubstr("not a trace line"));
}

TEST(KvmTraceParserTest, BadTaskColumnIsBad) {
  EXPECT_THAT(MustFail("qemu [000] d.... 1.0: kvm_msr: msr_read 1b = 0x0").what,
              HasSubstr("task column"));
}

TEST(KvmTraceParserTest, BadFlagsColumnIsBad) {
  EXPECT_THAT(MustFail("qemu-1 [000] d......... 1.0: kvm_msr: msr_read 1b = 0x0").what,
              HasSubstr("flags"));
}

TEST(KvmTraceParserTest, BadTimestampIsBad) {
  EXPECT_THAT(MustFail("qemu-1 [000] d.... 1.x: kvm_msr: msr_read 1b = 0x0").what,
              HasSubstr("timestamp"));
}

TEST(KvmTraceParserTest, TruncatedKvmMsrIsBadWithColumn) {
  LineError e = MustFail("qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b =");
  EXPECT_THAT(e.what, HasSubstr("' = 0x'"));
  EXPECT_EQ(e.column, 44u);  // Where " =" starts.
}

TEST(KvmTraceParserTest, KvmMsrIndexWiderThan32BitsIsBad) {
  EXPECT_THAT(MustFail("qemu-1 [000] d.... 1.0: kvm_msr: msr_read 100000000 = 0x0").what,
              HasSubstr("index"));
}

TEST(KvmTraceParserTest, KvmMsrValueWiderThan64BitsIsBad) {
  EXPECT_THAT(MustFail("qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1ffffffffffffffff").what,
              HasSubstr("data"));
}

TEST(KvmTraceParserTest, KvmMsrTrailingTextIsToleratedAndMarked) {
  ParsedLine p = MustParse("qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x5   <-- here");
  EXPECT_EQ(p.data, 0x5u);
  EXPECT_TRUE(p.shapes & kShapeTrailingText);
}

TEST(KvmTraceParserTest, KvmMsrTextGluedToTheValueIsBad) {
  EXPECT_THAT(MustFail("qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x0junk").what,
              HasSubstr("unexpected text"));
}

TEST(KvmTraceParserTest, KvmExitWithoutRipIsBad) {
  EXPECT_THAT(MustFail("qemu-1 [000] d.... 1.0: kvm_exit: vcpu 0 reason MSR_READ").what,
              HasSubstr("rip"));
}

TEST(KvmTraceParserTest, KvmEntryHugeVcpuIdIsBad) {
  EXPECT_THAT(MustFail("qemu-1 [000] d.... 1.0: kvm_entry: vcpu 99999999, rip 0x0").what,
              HasSubstr("vcpu"));
}

TEST(KvmTraceParserTest, ParsePayloadWorksWithoutPrefix) {
  ParsedLine p;
  LineError e;
  ASSERT_TRUE(ParsePayload("kvm_msr", "msr_read 1b = 0xfee00900", &p, &e));
  EXPECT_EQ(p.data, 0xfee00900u);
  EXPECT_FALSE(ParsePayload("kvm_msr", "msr_peek 1b = 0x1", &p, &e));
}

// --- Tolerated shapes (docs/import.md "Accepted line shapes") ------------------------------

TEST(KvmTraceParserShapesTest, FlagsColumnOfAnyWidthOneToEight) {
  for (absl::string_view flags : {"d", "dN", "d.h", "d.h2.", "dNh21.", "d.h21.3", "dNh21.3f"}) {
    std::string line =
        absl::StrCat("qemu-7 [001] ", flags, " 5.000001: kvm_msr: msr_read 1b = 0x9");
    ParsedLine p = MustParse(line);
    EXPECT_EQ(p.flags_width, flags.size()) << line;
    EXPECT_EQ(p.tid, 7u);
    EXPECT_EQ(p.cpu, 1u);
    EXPECT_EQ(p.data, 0x9u);
    if (flags.size() == 5) {
      EXPECT_EQ(p.rendering, Rendering::kFtraceNew);
      EXPECT_EQ(p.shapes & kShapeFlagsWidth, 0);
    } else {
      EXPECT_EQ(p.rendering, Rendering::kFtraceFlags) << line;
      EXPECT_TRUE(p.shapes & kShapeFlagsWidth) << line;
    }
  }
}

TEST(KvmTraceParserShapesTest, NoCpuColumnWithAndWithoutFlags) {
  ParsedLine p = MustParse("qemu-system-x86-31 d.... 12.5: kvm_msr: msr_write 277 = 0x7");
  EXPECT_FALSE(p.has_cpu);
  EXPECT_TRUE(p.shapes & kShapeNoCpuColumn);
  EXPECT_EQ(p.tid, 31u);
  EXPECT_EQ(p.flags_width, 5);
  EXPECT_TRUE(p.write);
  ParsedLine q = MustParse("qemu-system-x86-31   12.5: kvm_msr: msr_write 277 = 0x7");
  EXPECT_FALSE(q.has_cpu);
  EXPECT_EQ(q.tid, 31u);
  EXPECT_EQ(q.comm, "qemu-system-x86");
  EXPECT_EQ(q.flags_width, 0);
}

TEST(KvmTraceParserShapesTest, UnknownCommAndCommWithSpacesAndBrackets) {
  ParsedLine p = MustParse("  <...>-30517 [000]  7251.441102: kvm_msr: msr_read c0000080 = 0xd01");
  EXPECT_EQ(p.comm, "<...>");
  EXPECT_TRUE(p.shapes & kShapeUnknownComm);
  EXPECT_EQ(p.tid, 30517u);
  ParsedLine q =
      MustParse("CPU 0/KVM [vm-a] (x)-4242 [003] d.... 9.1: kvm_entry: vcpu 2, rip 0xfff0");
  EXPECT_EQ(q.comm, "CPU 0/KVM [vm-a] (x)");
  EXPECT_TRUE(q.shapes & kShapeSpacedComm);
  EXPECT_EQ(q.tid, 4242u);
  EXPECT_EQ(q.cpu, 3u);
  EXPECT_EQ(q.vcpu, 2u);
}

TEST(KvmTraceParserShapesTest, TgidColumn) {
  ParsedLine p = MustParse("qemu-12  (   10) [002] d.... 3.5: kvm_msr: msr_read 1b = 0x1");
  EXPECT_TRUE(p.shapes & kShapeTgid);
  EXPECT_EQ(p.tid, 12u);
  EXPECT_EQ(p.cpu, 2u);
}

TEST(KvmTraceParserShapesTest, BareTracepointLines) {
  ParsedLine p = MustParse("kvm_msr: msr_read 1a0 = 0x1800");
  EXPECT_EQ(p.rendering, Rendering::kBare);
  EXPECT_TRUE(p.shapes & kShapeBare);
  EXPECT_EQ(p.tid, kBareThread);
  EXPECT_FALSE(p.has_cpu);
  EXPECT_EQ(p.index, 0x1a0u);
  EXPECT_EQ(p.data, 0x1800u);
  ParsedLine q = MustParse("  kvm:kvm_entry: vcpu 3, rip 0xffffffff81000010");
  EXPECT_EQ(q.type, EventType::kEntry);
  EXPECT_EQ(q.vcpu, 3u);
  ParsedLine r = MustParse("kvm_exit:   reason MSR_WRITE rip 0x1000 info 0 0");
  EXPECT_EQ(r.type, EventType::kExit);
  EXPECT_TRUE(r.msr_exit);
  ParsedLine other = MustParse("sched_switch: prev_comm=a prev_pid=1");
  EXPECT_EQ(other.type, EventType::kOther);
}

TEST(KvmTraceParserShapesTest, TrailingTextAfterCompleteEventsIsMarked) {
  for (absl::string_view line :
       {"kvm_msr: msr_write 1b = 0xfee00900 (#GP)  # the write that faults",
        "q-1 [000] 1.0: kvm_exit: vcpu 0 reason MSR_READ rip 0x10 info 0 0 <- first",
        // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one line split for width.
        "q-1 [000] 1.0: kvm_exit: vcpu 0 reason MSR_READ rip 0x10 info1 0x0 info2 0x0 intr_info "
        "0x00000000 error_code 0x00000000 (seen twice)",
        "q-1 [000] 1.0: kvm_entry: vcpu 0, rip 0x12 see above",
        "q-1 [000] 1.0: kvm_entry: vcpu 0 (old kernel)"}) {
    ParsedLine p = MustParse(line);
    EXPECT_TRUE(p.shapes & kShapeTrailingText) << line;
  }
  EXPECT_TRUE(MustParse("kvm_msr: msr_write 1b = 0x1 (#GP) note").gp);
}

TEST(KvmTraceParserShapesTest, CutLinesAreBad) {
  for (absl::string_view line : {
           "q-1 [000] 1.0: kvm_entry: vcpu 0,",
           "q-1 [000] 1.0: kvm_entry: vcpu 0, ri",
           "q-1 [000] 1.0: kvm_entry: vcpu 0, rip 0x",
           "q-1 [000] 1.0: kvm_entry: vcpu 0 ri",
           "q-1 [000] 1.0: kvm_entry: vcp",
           "kvm_entry: vcpu 0,",
           "kvm_msr: msr_write 1b = 0x1 (#G",
           "kvm_msr: msr_read 1b =",
           "kvm_exit: vcpu 0 reason MSR_READ rip 0x10",
           "kvm_exit: vcpu 0 reason MSR_READ rip 0x10 inf",
           "kvm_exit: vcpu 0 reason MSR_READ rip 0x10 info 0",
           "kvm_exit: vcpu 0 reason MSR_READ rip 0x10 info1 0x0 info2",
           "kvm_exit: vcpu 0 reason MSR_READ rip 0x10 info1 0x0 info2 0x0 intr_in",
           "kvm_exit: vcpu 0 reason MSR_READ rip 0x10 info1 0x0 info2 0x0 intr_info 0x0 error_",
           "kvm_inj_exception: #G",
       }) {
    ParsedLine p;
    LineError e;
    EXPECT_EQ(ParseLine(line, &p, &e), LineStatus::kBad) << line;
  }
}

TEST(KvmTraceParserShapesTest, LostEventsMarkersAreGapsNotBadLines) {
  struct Case {
    absl::string_view line;
    uint32_t cpu;
    uint64_t lost;
  } cases[] = {
      {"CPU:3 [LOST 1234 EVENTS]", 3, 1234},
      {"CPU:0 [LOST EVENTS]", 0, UINT64_MAX},
      {"CPU:12 [57 EVENTS DROPPED]", 12, 57},
      {"  CPU:1 [EVENTS DROPPED]", 1, UINT64_MAX},
  };
  for (const Case& c : cases) {
    ParsedLine p;
    LineError e;
    ASSERT_EQ(ParseLine(c.line, &p, &e), LineStatus::kLost) << c.line;
    EXPECT_EQ(p.cpu, c.cpu);
    EXPECT_EQ(p.lost, c.lost);
  }
}

}  // namespace
}  // namespace importers
}  // namespace msrtrace
