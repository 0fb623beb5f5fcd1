// trace.dat import through libtracecmd. The test builds its trace.dat files itself, from the
// documented v6 layout (trace-cmd.dat.v6(5)) and the kvm event formats as Linux 6.1 exports
// them (arch/x86/kvm/trace.h; __print_symbolic tables shortened): Debian's libtracecmd 1.3
// (trace-cmd 3.1.6) ships the writer (tracecmd_output_create ...) in the library but not in
// its public header trace-cmd/trace-cmd.h, so a test cannot use it without declaring private
// API; and recording a real one needs trace-cmd and /dev/kvm, which CI does not have.
#include "importers/trace_dat_reader.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/trace/trace_file.h"
#include "importers/kvm_trace_importer.h"

namespace msrtrace {
namespace importers {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kPage = 4096;

// --- A trace.dat v6 builder ------------------------------------------------------------------

class Bytes {
 public:
  void U8(uint8_t v) { b_.push_back(static_cast<char>(v)); }
  void U16(uint16_t v) { Raw(&v, 2); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }  // Little endian: the file says so (x86 host).
  void Str(absl::string_view s) {
    b_.append(s.data(), s.size());
    b_.push_back('\0');
  }
  void Raw(const void* p, size_t n) { b_.append(static_cast<const char*>(p), n); }
  void Append(absl::string_view s) { b_.append(s.data(), s.size()); }
  void PadTo(size_t align) {
    while (b_.size() % align) b_.push_back('\0');
  }
  void Patch64(size_t at, uint64_t v) { memcpy(&b_[at], &v, 8); }
  size_t size() const { return b_.size(); }
  std::string& str() { return b_; }

 private:
  std::string b_;
};

constexpr char kCommon[] =
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n";

enum EventId : uint16_t {
  kMsrId = 1301,
  kExitId = 1302,
  kEntryId = 1303,
  kInjId = 1304,
  kPioId = 1305
};

std::string Format(absl::string_view name, int id, absl::string_view fields,
                   absl::string_view print) {
  return absl::StrCat("name: ", name, "\nID: ", id, "\nformat:\n", kCommon, fields,
                      "\nprint fmt: ", print, "\n");
}

// Event formats as /sys/kernel/tracing/events/kvm/*/format prints them on Linux 6.1.
std::vector<std::string> KvmFormats(bool msr_without_ecx = false) {
  return {
      Format("kvm_msr", kMsrId,
             absl::StrCat("\tfield:unsigned int write;\toffset:8;\tsize:4;\tsigned:0;\n",
                          msr_without_ecx ? "\tfield:u32 msr;\toffset:12;\tsize:4;\tsigned:0;\n"
                                          : "\tfield:u32 ecx;\toffset:12;\tsize:4;\tsigned:0;\n",
                          "\tfield:u64 data;\toffset:16;\tsize:8;\tsigned:0;\n"
                          "\tfield:u8 exception;\toffset:24;\tsize:1;\tsigned:0;\n"),
             "\"msr_%s %x = 0x%llx%s\", REC->write ? \"write\" : \"read\", REC->ecx, REC->data, "
             "REC->exception ? \" (#GP)\" : \"\""),
      Format("kvm_exit", kExitId,
             "\tfield:unsigned int exit_reason;\toffset:8;\tsize:4;\tsigned:0;\n"
             "\tfield:unsigned long guest_rip;\toffset:16;\tsize:8;\tsigned:0;\n"
             "\tfield:u32 isa;\toffset:24;\tsize:4;\tsigned:0;\n"
             "\tfield:u64 info1;\toffset:32;\tsize:8;\tsigned:0;\n"
             "\tfield:u64 info2;\toffset:40;\tsize:8;\tsigned:0;\n"
             "\tfield:u32 intr_info;\toffset:48;\tsize:4;\tsigned:0;\n"
             "\tfield:u32 error_code;\toffset:52;\tsize:4;\tsigned:0;\n"
             "\tfield:unsigned int vcpu_id;\toffset:56;\tsize:4;\tsigned:0;\n",
             "\"vcpu %u reason %s%s%s rip 0x%lx info1 0x%016llx info2 0x%016llx intr_info "
             "0x%08x error_code 0x%08x\", REC->vcpu_id, (REC->isa == 1) ? "
             "__print_symbolic(REC->exit_reason & 0xffff, { 1, \"EXTERNAL_INTERRUPT\" }, { 12, "
             "\"HLT\" }, { 30, \"IO_INSTRUCTION\" }, { 31, \"MSR_READ\" }, { 32, \"MSR_WRITE\" "
             "}) : __print_symbolic(REC->exit_reason, { 0x078, \"hlt\" }, { 0x07b, \"io\" }, { "
             "0x07c, \"msr\" }), (REC->isa == 1 && REC->exit_reason & ~0xffff) ? \" \" : \"\", "
             "(REC->isa == 1) ? __print_flags(REC->exit_reason & ~0xffff, \"|\", { 0x80000000, "
             "\"FAILED_VMENTRY\" }) : \"\", REC->guest_rip, REC->info1, REC->info2, "
             "REC->intr_info, REC->error_code"),
      Format("kvm_entry", kEntryId,
             "\tfield:unsigned int vcpu_id;\toffset:8;\tsize:4;\tsigned:0;\n"
             "\tfield:unsigned long rip;\toffset:16;\tsize:8;\tsigned:0;\n",
             "\"vcpu %u, rip 0x%lx\", REC->vcpu_id, REC->rip"),
      Format("kvm_inj_exception", kInjId,
             "\tfield:u8 exception;\toffset:8;\tsize:1;\tsigned:0;\n"
             "\tfield:bool has_error;\toffset:9;\tsize:1;\tsigned:0;\n"
             "\tfield:u32 error_code;\toffset:12;\tsize:4;\tsigned:0;\n",
             "\"%s (0x%x)\", __print_symbolic(REC->exception, { 6, \"#UD\" }, { 13, \"#GP\" }, "
             "{ 14, \"#PF\" }), REC->has_error ? REC->error_code : 0"),
      Format("kvm_pio", kPioId,
             "\tfield:unsigned int rw;\toffset:8;\tsize:4;\tsigned:0;\n"
             "\tfield:unsigned int port;\toffset:12;\tsize:4;\tsigned:0;\n"
             "\tfield:unsigned int size;\toffset:16;\tsize:4;\tsigned:0;\n"
             "\tfield:unsigned int count;\toffset:20;\tsize:4;\tsigned:0;\n"
             "\tfield:unsigned int val;\toffset:24;\tsize:4;\tsigned:0;\n",
             "\"pio_%s at 0x%x size %d count %d val 0x%x \", REC->rw ? \"write\" : \"read\", "
             "REC->port, REC->size, REC->count, REC->val"),
  };
}

// One ring-buffer event: the raw record (common fields + payload at the format's offsets).
struct Rec {
  uint64_t ts;
  std::string data;
};

Rec Make(uint64_t ts, uint16_t id, int32_t pid, size_t size) {
  Rec r{ts, std::string(size, '\0')};
  memcpy(&r.data[0], &id, 2);
  memcpy(&r.data[4], &pid, 4);
  return r;
}
template <typename T>
void Put(Rec& r, size_t off, T v) {
  memcpy(&r.data[off], &v, sizeof(v));
}
Rec Msr(uint64_t ts, int pid, bool write, uint32_t ecx, uint64_t data, bool gp) {
  Rec r = Make(ts, kMsrId, pid, 28);
  Put<uint32_t>(r, 8, write);
  Put<uint32_t>(r, 12, ecx);
  Put<uint64_t>(r, 16, data);
  Put<uint8_t>(r, 24, gp);
  return r;
}
Rec ExitRec(uint64_t ts, int pid, uint32_t vcpu, uint32_t reason, uint64_t rip, uint32_t isa = 1,
            uint64_t info1 = 0) {
  Rec r = Make(ts, kExitId, pid, 60);
  Put<uint32_t>(r, 8, reason);
  Put<uint64_t>(r, 16, rip);
  Put<uint32_t>(r, 24, isa);
  Put<uint64_t>(r, 32, info1);
  Put<uint32_t>(r, 56, vcpu);
  return r;
}
Rec Entry(uint64_t ts, int pid, uint32_t vcpu, uint64_t rip) {
  Rec r = Make(ts, kEntryId, pid, 24);
  Put<uint32_t>(r, 8, vcpu);
  Put<uint64_t>(r, 16, rip);
  return r;
}
Rec Inj(uint64_t ts, int pid, uint8_t vector) {
  Rec r = Make(ts, kInjId, pid, 16);
  Put<uint8_t>(r, 8, vector);
  Put<uint8_t>(r, 9, 1);
  return r;
}
Rec Pio(uint64_t ts, int pid) {
  Rec r = Make(ts, kPioId, pid, 28);
  Put<uint32_t>(r, 12, 0x70);
  Put<uint32_t>(r, 16, 1);
  Put<uint32_t>(r, 20, 1);
  return r;
}

// One ring-buffer page (header_page: u64 timestamp, local_t commit, data). `missed`: 0 none,
// > 0 a stored count (RB_MISSED_EVENTS | RB_MISSED_STORED), < 0 unknown (RB_MISSED_EVENTS).
std::string Page(const std::vector<Rec>& recs, int64_t missed = 0) {
  Bytes data;
  uint64_t prev = recs.empty() ? 0 : recs.front().ts;
  for (const Rec& r : recs) {
    const uint32_t type_len = static_cast<uint32_t>(r.data.size() / 4);  // <= 28: inline len.
    const uint32_t delta = static_cast<uint32_t>(r.ts - prev);
    data.U32(type_len | (delta << 5));
    data.Append(r.data);
    prev = r.ts;
  }
  uint64_t commit = data.size();
  if (missed != 0) commit |= 1ull << 31;
  if (missed > 0) {
    commit |= 1ull << 30;
    data.U64(static_cast<uint64_t>(missed));
  }
  Bytes page;
  page.U64(recs.empty() ? 0 : recs.front().ts);
  page.U64(commit);
  page.Append(data.str());
  page.PadTo(kPage);
  return page.str();
}

struct Cpu {
  std::vector<std::string> pages;
};

std::string BuildTraceDat(const std::vector<Cpu>& top, const std::vector<Cpu>& instance,
                          const std::vector<std::string>& formats) {
  Bytes f;
  f.Append(absl::string_view("\x17\x08\x44tracing", 10));
  f.Str("6");
  f.U8(0);  // Little endian.
  f.U8(8);  // Long size.
  f.U32(kPage);
  const std::string header_page =
      "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
      "\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n"
      "\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n"
      "\tfield: char data;\toffset:16;\tsize:4080;\tsigned:1;\n";
  const std::string header_event =
      "# compressed entry header\n\ttype_len    :    5 bits\n\ttime_delta  :   27 bits\n"
      "\tarray       :   32 bits\n\n\tpadding     : type == 29\n\ttime_extend : type == 30\n"
      "\ttime_stamp : type == 31\n\tdata max type_len  == 28\n";
  f.Str("header_page");
  f.U64(header_page.size());
  f.Append(header_page);
  f.Str("header_event");
  f.U64(header_event.size());
  f.Append(header_event);
  f.U32(0);  // ftrace event formats.
  f.U32(1);  // Event systems.
  f.Str("kvm");
  f.U32(static_cast<uint32_t>(formats.size()));
  for (const std::string& fmt : formats) {
    f.U64(fmt.size());
    f.Append(fmt);
  }
  f.U32(0);  // kallsyms.
  f.U32(0);  // trace_printk formats.
  const std::string cmdlines = "100 CPU 0/KVM\n101 CPU 1/KVM\n200 CPU 0/KVM\n";
  f.U64(cmdlines.size());
  f.Append(cmdlines);
  f.U32(static_cast<uint32_t>(top.size()));
  f.Append(absl::string_view("options  \0", 10));
  size_t instance_offset_at = 0;
  if (!instance.empty()) {
    f.U16(3);  // TRACECMD_OPTION_BUFFER: u64 offset of the instance's data, name.
    f.U32(8 + 4);
    instance_offset_at = f.size();
    f.U64(0);
    f.Str("vm2");
  }
  f.U16(0);  // End of options.
  auto cpu_data = [&f](const std::vector<Cpu>& cpus) {
    f.Append(absl::string_view("flyrecord\0", 10));
    const size_t table = f.size();
    for (size_t i = 0; i < cpus.size(); ++i) {
      f.U64(0);
      f.U64(0);
    }
    for (size_t i = 0; i < cpus.size(); ++i) {
      f.PadTo(kPage);
      const size_t start = f.size();
      for (const std::string& p : cpus[i].pages) f.Append(p);
      f.Patch64(table + 16 * i, cpus[i].pages.empty() ? 0 : start);
      f.Patch64(table + 16 * i + 8, f.size() - start);
    }
  };
  cpu_data(top);
  if (!instance.empty()) {
    f.Patch64(instance_offset_at, f.size());
    cpu_data(instance);
  }
  return f.str();
}

// --- Fixtures ------------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "trace_dat_test_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (char* d = mkdtemp(buf.data())) path_ = d;
  }
  ~TempDir() {
    for (const std::string& f : files_) remove(f.c_str());
    if (!path_.empty()) rmdir(path_.c_str());
  }
  std::string Write(absl::string_view name, const std::string& bytes) {
    files_.push_back(absl::StrCat(path_, "/", name));
    FILE* f = fopen(files_.back().c_str(), "wb");
    if (f != nullptr) {
      fwrite(bytes.data(), 1, bytes.size(), f);
      fclose(f);
    }
    return files_.back();
  }
  std::string Path(absl::string_view name) {
    files_.push_back(absl::StrCat(path_, "/", name));
    return files_.back();
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

constexpr uint64_t kT0 = 5000000000ull;  // 5 s.

// vCPU 0 (pid 100) on CPU 0: RDMSR 0x1b (2 bytes), then WRMSR 0x277; vCPU 1 (pid 101) on CPU 1:
// WRMSR 0x48 faulting (#GP injected) and a port I/O exit; instance "vm2", vCPU 2 (pid 200):
// SVM RDMSR 0x10 (EXITINFO1 0). `missed` marks CPU 0's second page as having lost events.
std::string Capture(int64_t missed = 0) {
  Cpu cpu0, cpu1, vm2;
  cpu0.pages.push_back(Page({
      ExitRec(kT0 + 1000, 100, 0, 31, 0xffffffff81000000),
      Msr(kT0 + 1100, 100, false, 0x1b, 0xfee00900, false),
      Entry(kT0 + 1200, 100, 0, 0xffffffff81000002),
  }));
  cpu0.pages.push_back(Page(
      {
          ExitRec(kT0 + 5000, 100, 0, 32, 0xffffffff81000100),
          Msr(kT0 + 5100, 100, true, 0x277, 0x0007040600070406, false),
          Entry(kT0 + 5200, 100, 0, 0xffffffff81000102),
      },
      missed));
  cpu1.pages.push_back(Page({
      ExitRec(kT0 + 2000, 101, 1, 32, 0x3000),
      Msr(kT0 + 2100, 101, true, 0x48, 0x8000000000000000, true),
      Inj(kT0 + 2150, 101, 13),
      Entry(kT0 + 2200, 101, 1, 0x3000),
      Pio(kT0 + 2300, 101),
  }));
  vm2.pages.push_back(Page({
      ExitRec(kT0 + 3000, 200, 2, 0x7c, 0x4000, 2, 0),
      Msr(kT0 + 3100, 200, false, 0x10, 0x123456789, false),
      Entry(kT0 + 3200, 200, 2, 0x4002),
  }));
  return BuildTraceDat({cpu0, cpu1}, {Cpu(), vm2}, KvmFormats());
}

std::vector<ExitEvent> ReadEvents(const std::string& path) {
  std::vector<ExitEvent> out;
  absl::StatusOr<std::unique_ptr<TraceReader>> r = TraceReader::Open(path);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return out;
  ExitEvent e;
  while (true) {
    absl::StatusOr<bool> more = (*r)->Next(&e);
    if (!more.ok() || !*more) break;
    out.push_back(e);
  }
  return out;
}

TEST(TraceDatTest, MagicIsDetected) {
  EXPECT_TRUE(HasTraceDatMagic(absl::string_view("\x17\x08\x44tracing6", 11)));
  EXPECT_FALSE(HasTraceDatMagic("tracing"));
  EXPECT_FALSE(HasTraceDatMagic(absl::string_view("\x17\x08\x44tracin", 9)));
}

TEST(TraceDatTest, ImportsPerCpuBuffersAndInstancesWithLengthsAndGp) {
  if (!TraceDatSupported()) GTEST_SKIP() << "built without libtracecmd";
  TempDir dir;
  // Named .txt on purpose: detection is by content.
  std::string path = dir.Write("capture.txt", Capture());
  ImportConfig config;
  config.inputs = {path};
  absl::StatusOr<ImportSummary> s = ImportCapture(config);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->rendering, Rendering::kTraceDat);
  EXPECT_EQ(s->bad_lines, 0u);
  EXPECT_EQ(s->events, 4u);
  EXPECT_EQ(s->other_events, 1u);  // kvm_pio.
  ASSERT_EQ(s->per_vcpu.size(), 3u);
  EXPECT_EQ(s->per_vcpu[0].reads, 1u);
  EXPECT_EQ(s->per_vcpu[0].writes, 1u);
  EXPECT_EQ(s->per_vcpu[1].faults, 1u);
  EXPECT_EQ(s->per_vcpu[2].reads, 1u);  // From the "vm2" instance.
  EXPECT_EQ(s->assembler.instr_length_known, 3u);
  EXPECT_EQ(s->assembler.gaps, 0u);
}

TEST(TraceDatTest, RoundTripTraceDatAndItsReportTextImportToTheSameTrace) {
  if (!TraceDatSupported()) GTEST_SKIP() << "built without libtracecmd";
  TempDir dir;
  std::string dat = dir.Write("capture.dat", Capture(/*missed=*/17));
  std::string text;
  ASSERT_TRUE(RenderTraceDatText(dat, &text).ok());
  EXPECT_THAT(text, HasSubstr("CPU:0 [17 EVENTS DROPPED]"));
  EXPECT_THAT(text, HasSubstr("kvm_msr: msr_write 48 = 0x8000000000000000 (#GP)"));
  EXPECT_THAT(text, HasSubstr("kvm_exit: vcpu 0 reason MSR_READ rip 0xffffffff81000000 info1"));
  std::string txt = dir.Write("capture.report.txt", text);

  ImportConfig config;
  config.inputs = {dat};
  config.output = dir.Path("from_dat.trace");
  absl::StatusOr<ImportSummary> a = ImportCapture(config);
  ASSERT_TRUE(a.ok()) << a.status();
  config.inputs = {txt};
  config.output = dir.Path("from_text.trace");
  absl::StatusOr<ImportSummary> b = ImportCapture(config);
  ASSERT_TRUE(b.ok()) << b.status() << "\n" << text;
  EXPECT_EQ(b->bad_lines, 0u) << text;
  EXPECT_EQ(a->events, b->events);
  EXPECT_EQ(a->assembler.gaps, 1u);
  EXPECT_EQ(b->assembler.gaps, 1u);

  std::vector<ExitEvent> ea = ReadEvents(dir.Path("from_dat.trace"));
  std::vector<ExitEvent> eb = ReadEvents(dir.Path("from_text.trace"));
  ASSERT_EQ(ea.size(), 4u);
  ASSERT_EQ(ea.size(), eb.size());
  for (size_t i = 0; i < ea.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(ea[i].seq, eb[i].seq);
    EXPECT_EQ(ea[i].vcpu_id, eb[i].vcpu_id);
    EXPECT_EQ(ea[i].known, eb[i].known);
    EXPECT_EQ(ea[i].exit.vendor, eb[i].exit.vendor);
    EXPECT_EQ(ea[i].exit.instruction_length, eb[i].exit.instruction_length);
    EXPECT_EQ(ea[i].rcx, eb[i].rcx);
    EXPECT_EQ(ea[i].rax, eb[i].rax);
    EXPECT_EQ(ea[i].rdx, eb[i].rdx);
    EXPECT_EQ(ea[i].rip, eb[i].rip);
    EXPECT_EQ(ea[i].kind, eb[i].kind);
    EXPECT_EQ(ea[i].rax_out, eb[i].rax_out);
    EXPECT_EQ(ea[i].rdx_out, eb[i].rdx_out);
    EXPECT_EQ(ea[i].rip_out, eb[i].rip_out);
    EXPECT_EQ(ea[i].lost_before, eb[i].lost_before);
  }
  // The lost events were on CPU 0, which ran only vCPU 0: its next event carries the count.
  bool found = false;
  for (const ExitEvent& e : ea) {
    if (e.lost_before != 0) {
      EXPECT_EQ(e.vcpu_id, 0u);
      EXPECT_EQ(e.lost_before, 17u);
      EXPECT_EQ(e.rcx, 0x277u);
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(TraceDatTest, UnknownLostCountIsUnknownOnTheEvent) {
  if (!TraceDatSupported()) GTEST_SKIP() << "built without libtracecmd";
  TempDir dir;
  ImportConfig config;
  config.inputs = {dir.Write("c.dat", Capture(/*missed=*/-1))};
  config.output = dir.Path("c.trace");
  absl::StatusOr<ImportSummary> s = ImportCapture(config);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->assembler.gaps_unknown, 1u);
  EXPECT_THAT(FormatSummaryText(*s), HasSubstr("CPU 0 lost an unknown number of events"));
  bool found = false;
  for (const ExitEvent& e : ReadEvents(config.output)) {
    if (e.lost_before == UINT64_MAX) found = true;
  }
  EXPECT_TRUE(found);
}

TEST(TraceDatTest, FieldsAreLookedUpByNameFromTheFormatInTheFile) {
  if (!TraceDatSupported()) GTEST_SKIP() << "built without libtracecmd";
  TempDir dir;
  Cpu cpu0;
  cpu0.pages.push_back(Page({Msr(kT0, 100, false, 0x1b, 1, false)}));
  ImportConfig config;
  config.inputs = {dir.Write("noecx.dat", BuildTraceDat({cpu0}, {}, KvmFormats(true)))};
  absl::StatusOr<ImportSummary> s = ImportCapture(config);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("the kvm:kvm_msr format stored in the trace.dat has no field 'ecx'"));
}

TEST(TraceDatTest, CorruptHeaderAndStdinAreClearErrors) {
  TempDir dir;
  std::string dat = Capture();
  ImportConfig config;
  config.inputs = {dir.Write("cut.dat", dat.substr(0, 300))};
  absl::StatusOr<ImportSummary> s = ImportCapture(config);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("cut.dat: "));
  // Not a file: a buffer holding a trace.dat is refused with a message, not parsed as text.
  s = ImportFromBuffer(dat, ImportConfig(), "<stdin>");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(
      std::string(s.status().message()),
      HasSubstr("<stdin>: a trace-cmd trace.dat (binary) can only be imported from a file"));
}

}  // namespace
}  // namespace importers
}  // namespace msrtrace
