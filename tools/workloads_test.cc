#include "workloads/workloads.h"

#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "handlers/msr_table.h"
#include "harness/core/test_tmpdir.h"
#include "harness/replay/replay.h"
#include "harness/trace/trace_file.h"
#include "tools/command.h"
#include "workloads/golden_traces.h"

namespace msrtrace::cli {
namespace {

// A path in this process's private temporary directory (removed at exit).
std::string Temp(const std::string& name) { return testing_util::TestTempPath(name); }

std::string Record(RecordOptions o, const std::string& name) {
  o.output = Temp(name);
  std::ostringstream out, err;
  EXPECT_EQ(RunRecord(o, out, err), kExitOk) << err.str();
  return o.output;
}

std::vector<ExitEvent> Events(const std::string& path) {
  std::vector<ExitEvent> out;
  auto r = TraceReader::Open(path);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return out;
  ExitEvent e;
  while (true) {
    auto more = (*r)->Next(&e);
    if (!more.ok() || !*more) break;
    out.push_back(e);
  }
  return out;
}

std::string Bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(WorkloadsTest, RandomRecordsExactlyTheRequestedNumberOfEvents) {
  RecordOptions o;
  o.workload = "random";
  o.events = 777;
  const std::string p = Record(o, "random777.trace");
  EXPECT_EQ(Events(p).size(), 777u);
  unlink(p.c_str());
}

TEST(WorkloadsTest, RecordingIsReproducibleByteForByte) {
  for (const char* w : {"linux-boot", "random"}) {
    RecordOptions o;
    o.workload = w;
    o.events = 500;
    const std::string a = Record(o, std::string(w) + "_a.trace");
    const std::string b = Record(o, std::string(w) + "_b.trace");
    EXPECT_EQ(Bytes(a), Bytes(b)) << w;
    unlink(a.c_str());
    unlink(b.c_str());
  }
}

TEST(WorkloadsTest, SeedChangesTheRandomWorkload) {
  RecordOptions o;
  o.workload = "random";
  o.events = 200;
  const std::string a = Record(o, "seed1.trace");
  o.seed = 2;
  const std::string b = Record(o, "seed2.trace");
  EXPECT_NE(Bytes(a), Bytes(b));
  unlink(a.c_str());
  unlink(b.c_str());
}

TEST(WorkloadsTest, RandomUsesJunkUpperHalvesBothModesAndSeveralVcpus) {
  RecordOptions o;
  o.workload = "random";
  o.events = 3000;
  const std::string p = Record(o, "random_modes.trace");
  bool junk = false, mode64 = false, mode32 = false, long_insn = false;
  std::set<uint32_t> vcpus;
  for (const ExitEvent& e : Events(p)) {
    junk |= (e.rax >> 32) != 0 || (e.rdx >> 32) != 0;
    const bool m64 = (e.efer & kEferLma) != 0 && e.cs_l;
    mode64 |= m64;
    mode32 |= !m64;
    long_insn |= e.exit.instruction_length > 2;
    vcpus.insert(e.vcpu_id);
  }
  EXPECT_TRUE(junk);
  EXPECT_TRUE(mode64);
  EXPECT_TRUE(mode32);
  EXPECT_TRUE(long_insn);
  EXPECT_GT(vcpus.size(), 1u);
  unlink(p.c_str());
}

TEST(WorkloadsTest, LinuxBootIssuesTheKernelsMsrSequence) {
  RecordOptions o;
  o.workload = "linux-boot";
  const std::string p = Record(o, "boot.trace");
  std::set<uint32_t> written, read;
  std::set<uint32_t> vcpus;
  bool ipi_to_other = false;
  for (const ExitEvent& e : Events(p)) {
    (e.exit.reason == kVmxExitWrmsr ? written : read).insert(e.index());
    vcpus.insert(e.vcpu_id);
    if (e.index() == 0x830 && e.exit.reason == kVmxExitWrmsr && (e.rdx & 0xffffffff) != e.vcpu_id) {
      ipi_to_other = true;
    }
  }
  for (uint32_t i : {0x1bu, 0xfeu, 0x2ffu, 0x200u, 0x277u, 0xc0000080u, 0x1a0u, 0x10u}) {
    EXPECT_TRUE(read.count(i)) << std::hex << i;
  }
  for (uint32_t i : {0x277u, 0xc0000080u, 0xc0000081u, 0xc0000082u, 0xc0000083u, 0xc0000084u,
                     0xc0000100u, 0xc0000101u, 0xc0000102u, 0x4b564d00u, 0x4b564d01u, 0x1bu, 0x808u,
                     0x80fu, 0x832u, 0x835u, 0x830u, 0x6e0u, 0x48u}) {
    EXPECT_TRUE(written.count(i)) << std::hex << i;
  }
  EXPECT_EQ(vcpus.size(), 4u);
  EXPECT_TRUE(ipi_to_other);
  unlink(p.c_str());
}

TEST(WorkloadsTest, LinuxBootOnAmdUsesSvmExits) {
  RecordOptions o;
  o.workload = "linux-boot";
  o.profile = "amd-zen3";
  const std::string p = Record(o, "boot_amd.trace");
  const std::vector<ExitEvent> evs = Events(p);
  ASSERT_FALSE(evs.empty());
  for (const ExitEvent& e : evs) {
    EXPECT_EQ(e.exit.vendor, Vendor::kAmdSvm);
    EXPECT_EQ(e.exit.reason, kSvmExitMsr);
  }
  unlink(p.c_str());
}

TEST(WorkloadsTest, EveryWorkloadReplaysClean) {
  for (const workloads::WorkloadDef& w : workloads::Workloads()) {
    RecordOptions o;
    o.workload = w.name;
    o.events = 400;
    const std::string p = Record(o, w.name + ".trace");
    auto r = ReplayFile(p);
    ASSERT_TRUE(r.ok()) << w.name << ": " << r.status();
    EXPECT_TRUE(r->clean()) << w.name << ": " << r->divergences[0].expected << " vs "
                            << r->divergences[0].actual;
    EXPECT_EQ(r->incomplete(), !w.incomplete.empty()) << w.name;
    unlink(p.c_str());
  }
}

TEST(WorkloadsTest, TableSweepCoversEveryReferenceFamily) {
  for (const char* profile : {"intel-icx", "amd-zen3", "intel-minimal"}) {
    RecordOptions o;
    o.workload = "table-sweep";
    o.profile = profile;
    const std::string p = Record(o, std::string("sweep_") + profile + ".trace");
    std::set<uint32_t> seen;
    for (const ExitEvent& e : Events(p)) seen.insert(e.index());
    std::set<std::string> families, covered;
    for (const MsrRow& r : MsrTable(*FindProfile(profile))) {
      families.insert(r.family);
      if (seen.count(r.index) || seen.count(r.last)) covered.insert(r.family);
    }
    EXPECT_EQ(families, covered) << profile;
    unlink(p.c_str());
  }
}

TEST(WorkloadsTest, GoldenTraceTableIsInEnumOrderWithKnownWorkloads) {
  for (int i = 0; i < static_cast<int>(GoldenTrace::kCount); ++i) {
    const GoldenTraceDef& d = kGoldenTraces[i];
    EXPECT_EQ(static_cast<int>(d.id), i) << d.name;
    EXPECT_NE(workloads::FindWorkload(d.workload), nullptr) << d.name;
    EXPECT_NE(FindProfile(d.profile), nullptr) << d.name;
    const bool incomplete_name = std::string(d.name).rfind("incomplete-", 0) == 0;
    EXPECT_EQ(incomplete_name, !workloads::FindWorkload(d.workload)->incomplete.empty()) << d.name;
  }
}

}  // namespace
}  // namespace msrtrace::cli

namespace msrtrace::cli {
namespace {

// Every GoldenTrace has its committed file, and it replays as its name says.
TEST(GoldenCorpusTest, EveryGoldenTraceReplaysAsNamed) {
  const char* src = getenv("MSRTRACE_SOURCE_DIR");
  if (src == nullptr) GTEST_SKIP() << "MSRTRACE_SOURCE_DIR not set (run through ctest)";
  for (int i = 0; i < static_cast<int>(GoldenTrace::kCount); ++i) {
    const GoldenTraceDef& d = GoldenTraceOf(static_cast<GoldenTrace>(i));
    const std::string path = std::string(src) + "/corpus/golden/" + d.name + ".trace";
    auto r = ReplayFile(path);
    ASSERT_TRUE(r.ok()) << d.name << ": " << r.status();
    EXPECT_TRUE(r->clean()) << d.name;
    EXPECT_EQ(r->incomplete(), std::string(d.name).rfind("incomplete-", 0) == 0) << d.name;
    EXPECT_EQ(r->header.cpu_profile, d.profile) << d.name;
    EXPECT_EQ(r->header.vcpu_count, d.vcpus) << d.name;
  }
}

}  // namespace
}  // namespace msrtrace::cli

namespace msrtrace::cli {
namespace {

// docs/workloads.md: a Linux boot on every built-in profile touches only MSRs the reference set
// handles the way a booting kernel expects: every exit retires (no #GP, nothing unhandled), and
// the recording replays clean.
TEST(WorkloadsTest, LinuxBootRetiresEveryExitOnEveryProfile) {
  for (const CpuProfile& prof : BuiltinProfiles()) {
    RecordOptions o;
    o.workload = "linux-boot";
    o.profile = prof.name;
    const std::string p = Record(o, "boot-" + prof.name + ".trace");
    const std::vector<ExitEvent> events = Events(p);
    EXPECT_GT(events.size(), 100u) << prof.name;
    for (const ExitEvent& e : events) {
      EXPECT_EQ(e.kind, RecordedKind::kRetired)
          << prof.name << ": msr " << std::hex << e.index() << " " << RecordedKindName(e.kind);
    }
    ReplayCommandOptions r;
    r.paths = {p};
    std::ostringstream out, err;
    EXPECT_EQ(RunReplay(r, out, err), kExitOk) << prof.name << ": " << out.str() << err.str();
    unlink(p.c_str());
  }
}

}  // namespace
}  // namespace msrtrace::cli

namespace msrtrace::cli {
namespace {

// docs/workloads.md windows-boot: on the hyperv profile every enlightenment access retires, the
// hypercall and TSC pages are written to guest memory, and the recording replays clean.
TEST(WorkloadsTest, WindowsBootRetiresEveryExitAndReplaysClean) {
  RecordOptions o;
  o.workload = "windows-boot";
  o.profile = "hyperv";
  const std::string p = Record(o, "windows-boot.trace");
  const std::vector<ExitEvent> events = Events(p);
  EXPECT_GT(events.size(), 50u);
  size_t hv = 0;
  size_t with_memory = 0;
  for (const ExitEvent& e : events) {
    EXPECT_EQ(e.kind, RecordedKind::kRetired)
        << "msr " << std::hex << e.index() << " " << RecordedKindName(e.kind);
    if (e.index() >= 0x40000000 && e.index() <= 0x400001ff) ++hv;
    if (!e.memory_writes.empty()) ++with_memory;
  }
  EXPECT_GT(hv, 40u);
  EXPECT_GE(with_memory, 3u);  // Hypercall page, TSC page, VP assist pages.
  ReplayCommandOptions r;
  r.paths = {p};
  std::ostringstream out, err;
  EXPECT_EQ(RunReplay(r, out, err), kExitOk) << out.str() << err.str();
  unlink(p.c_str());
}

}  // namespace
}  // namespace msrtrace::cli
