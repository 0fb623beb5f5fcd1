// The reliability torture suite (issue 9), in the style of leveldb's log_test: traces are cut at
// every byte, every length and checksum bit is flipped, writers are killed, disks fill up and
// outputs are unwritable. Every case asserts the exact end (exit code or TraceEnd), the number
// of events and the message. docs/trace-format.md ("Torn, corrupt and truncated input") is the
// contract these tests check.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/core/test_tmpdir.h"
#include "harness/core/utf8.h"
#include "harness/trace/trace_file.h"
#include "tools/command.h"
#include "tools/import_cmd.h"
#include "tools/output.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MSRTRACE_TEST_UNDER_ASAN 1
#endif
#endif

namespace msrtrace::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Temp(const std::string& name) { return testing_util::TestTempPath(name); }

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void Spit(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

struct Result {
  int code;
  std::string out, err;
};

template <typename Options, typename F>
Result Call(F f, const Options& o) {
  std::ostringstream out, err;
  const int code = f(o, out, err);
  return {code, out.str(), err.str()};
}

// A recording of the random workload on one vCPU (recorded once per process).
std::string Recorded(uint64_t events, bool gzip = false) {
  std::string path = Temp(absl::StrCat("random_", events, gzip ? ".trace.gz" : ".trace"));
  if (access(path.c_str(), F_OK) == 0) return path;
  RecordOptions o;
  o.workload = "random";
  o.events = events;
  o.vcpus = 1;
  o.output = path;
  const Result r = Call(RunRecord, o);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  return path;
}

// Record boundaries of a plain trace, parsed from the framing alone (docs/trace-format.md), and
// the type of each record.
struct Layout {
  std::vector<size_t> starts;  // Record starts, then the end of the last complete record.
  std::vector<uint8_t> types;
};
Layout Walk(const std::string& b) {
  Layout l;
  size_t p = 16;
  l.starts.push_back(p);
  while (p + 9 <= b.size()) {
    uint32_t len = 0;
    for (int i = 0; i < 4; ++i) {
      len |= static_cast<uint32_t>(static_cast<uint8_t>(b[p + i])) << (8 * i);
    }
    if (p + 9 + len > b.size()) break;
    l.types.push_back(static_cast<uint8_t>(b[p + 8]));
    p += 9 + len;
    l.starts.push_back(p);
  }
  return l;
}
constexpr uint8_t kEventType = 4;
constexpr uint8_t kTrailerType = 5;
// Index (in Layout::starts) of the first event record.
size_t FirstEvent(const Layout& l) {
  size_t i = 0;
  while (i < l.types.size() && l.types[i] != kEventType && l.types[i] != kTrailerType) ++i;
  return i;
}

struct Read {
  absl::Status open, next;
  uint64_t events = 0;
  TraceEnd end = TraceEnd::kComplete;
  std::vector<CorruptRegion> skipped;
};
Read ReadAll(std::string bytes, bool skip_corrupt = false) {
  Read r;
  TraceReaderOptions o;
  o.skip_corrupt = skip_corrupt;
  auto reader = TraceReader::FromBytes(std::move(bytes), "t.trace", o);
  r.open = reader.status();
  if (!reader.ok()) return r;
  ExitEvent e;
  for (;;) {
    absl::StatusOr<bool> more = (*reader)->Next(&e);
    if (!more.ok()) {
      r.next = more.status();
      break;
    }
    if (!*more) {
      r.end = (*reader)->end();
      break;
    }
    ++r.events;
  }
  r.skipped = (*reader)->skipped();
  return r;
}

// --- Truncation ---------------------------------------------------------------------------

TEST(ReliabilityTest, EveryByteTruncationOfAPlainTrace) {
  const std::string bytes = Slurp(Recorded(20));
  const Layout l = Walk(bytes);
  const size_t first = FirstEvent(l);
  ASSERT_EQ(l.types.size() - first, 21u);  // 20 events and the trailer.
  const size_t snapshot_end = l.starts[first];
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at byte ", cut));
    const Read r = ReadAll(bytes.substr(0, cut));
    if (cut == 0) {
      EXPECT_EQ(r.open.message(), "t.trace: empty file, not a trace");
      continue;
    }
    if (cut < snapshot_end) {
      EXPECT_EQ(r.open.code(), absl::StatusCode::kDataLoss) << r.open;
      EXPECT_THAT(std::string(r.open.message()), StartsWith("t.trace: byte "));
      continue;
    }
    ASSERT_TRUE(r.open.ok()) << r.open;
    ASSERT_TRUE(r.next.ok()) << r.next;
    uint64_t complete = 0;
    for (size_t i = first; i < first + 20; ++i) complete += l.starts[i + 1] <= cut ? 1 : 0;
    EXPECT_EQ(r.events, complete);
    const bool boundary = std::find(l.starts.begin(), l.starts.end(), cut) != l.starts.end();
    EXPECT_EQ(r.end, cut == bytes.size() ? TraceEnd::kComplete
                     : boundary          ? TraceEnd::kNoTrailer
                                         : TraceEnd::kTornTail);
  }
}

// The uncompressed bytes zlib can recover from a prefix of a gzip file: the oracle for what a
// reader of a cut gzip trace may return.
std::string InflatePrefix(const std::string& gz) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char buf[4096];
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    const int r = inflate(&zs, Z_SYNC_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (r != Z_OK || (zs.avail_in == 0 && zs.avail_out != 0)) break;
  }
  inflateEnd(&zs);
  return out;
}

// Item 1: a gzip trace missing the last 1-9 bytes (its gzip trailer) replayed as clean.
TEST(ReliabilityTest, EveryByteTruncationOfAGzipTrace) {
  const std::string gz = Slurp(Recorded(20, /*gzip=*/true));
  const std::string plain = InflatePrefix(gz);
  const Layout full = Walk(plain);
  const size_t first = FirstEvent(full);
  ASSERT_EQ(full.types.size() - first, 21u);
  for (size_t cut = 1; cut < gz.size(); ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at compressed byte ", cut));
    const Read r = ReadAll(gz.substr(0, cut));
    const std::string prefix = InflatePrefix(gz.substr(0, cut));
    if (cut == 1) {
      EXPECT_EQ(r.open.code(), absl::StatusCode::kInvalidArgument);  // Not even the gzip magic.
      continue;
    }
    if (prefix.size() < full.starts[first]) {
      EXPECT_EQ(r.open.code(), absl::StatusCode::kDataLoss) << r.open;
      continue;
    }
    ASSERT_TRUE(r.open.ok()) << r.open;
    ASSERT_TRUE(r.next.ok()) << r.next;
    uint64_t complete = 0;
    for (size_t i = first; i < first + 20; ++i) {
      complete += full.starts[i + 1] <= prefix.size() ? 1 : 0;
    }
    EXPECT_EQ(r.events, complete);
    EXPECT_EQ(r.end, TraceEnd::kTornTail);  // Never kComplete: the gzip stream is cut.
  }
  // Through the CLI: the trailer-less gzip file is incomplete (exit 3), not clean.
  for (size_t missing = 1; missing <= 9; ++missing) {
    const std::string cut = Temp(absl::StrCat("gz_missing_", missing, ".trace.gz"));
    Spit(cut, gz.substr(0, gz.size() - missing));
    ReplayCommandOptions o;
    o.paths = {cut};
    const Result r = Call(RunReplay, o);
    EXPECT_EQ(r.code, kExitIncomplete) << missing << " bytes missing\n" << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("incomplete (torn-tail)"));
    EXPECT_THAT(r.out, HasSubstr("events 20 "));
  }
}

// --- Bit flips ----------------------------------------------------------------------------

// A recording's header and events over a one-vCPU snapshot without slots or pages: the same
// framing with a small snapshot, so that the thousands of reads below stay fast under ASan.
std::string SmallTrace(uint64_t events) {
  std::string path = Temp(absl::StrCat("small_", events, ".trace"));
  if (access(path.c_str(), F_OK) == 0) return path;
  auto source = TraceReader::Open(Recorded(events));
  EXPECT_TRUE(source.ok()) << source.status();
  if (!source.ok()) return path;
  Snapshot s;
  s.vcpus.push_back((*source)->snapshot().vcpus[0]);
  s.vcpus[0].slots.clear();
  auto w = TraceWriter::Create(path, (*source)->header(), s);
  EXPECT_TRUE(w.ok()) << w.status();
  ExitEvent e;
  while (*(*source)->Next(&e)) EXPECT_TRUE((*w)->Append(e).ok());
  EXPECT_TRUE((*w)->Close(0).ok());
  return path;
}

// Item 2: a flipped length bit was reported as a torn tail (exit 3) and everything after it
// was dropped silently. Every length and checksum bit of every record after the snapshot.
TEST(ReliabilityTest, FlipOfEveryLengthAndChecksumBit) {
  const std::string bytes = Slurp(SmallTrace(12));
  const Layout l = Walk(bytes);
  const size_t first = FirstEvent(l);
  const size_t records = l.types.size();
  const uint64_t n = records - first - 1;  // Events; the last record is the trailer.
  ASSERT_GE(n, 12u);
  uint64_t lost_silently = 0;
  for (size_t rec = first; rec < records; ++rec) {
    const size_t at = l.starts[rec];
    const uint64_t events_before = rec - first;
    const bool trailer = rec + 1 == records;
    for (int field = 0; field < 2; ++field) {  // 0: length, 1: checksum.
      for (int bit = 0; bit < 32; ++bit) {
        SCOPED_TRACE(absl::StrCat(field == 0 ? "length" : "checksum", " bit ", bit, " of record ",
                                  rec, " at byte ", at));
        std::string bad = bytes;
        bad[at + 4 * field + bit / 8] ^= static_cast<char>(1 << (bit % 8));
        const Read r = ReadAll(bad);
        ASSERT_TRUE(r.open.ok()) << r.open;
        if (trailer) {
          // Nothing intact follows the last record: a torn tail after every event.
          ASSERT_TRUE(r.next.ok()) << r.next;
          EXPECT_EQ(r.end, TraceEnd::kTornTail);
          EXPECT_EQ(r.events, n);
          continue;
        }
        EXPECT_EQ(r.events, events_before);
        ASSERT_EQ(r.next.code(), absl::StatusCode::kDataLoss) << r.next;
        const uint64_t intact = records - rec - 1;
        EXPECT_THAT(std::string(r.next.message()),
                    StartsWith(absl::StrFormat("t.trace: byte %u (record %u): ", at, rec)));
        EXPECT_THAT(
            std::string(r.next.message()),
            HasSubstr(absl::StrFormat(
                "; corrupt, not a torn tail: %u intact record%s follow%s from byte %u", intact,
                intact == 1 ? "" : "s", intact == 1 ? "s" : "", l.starts[rec + 1])));
        if (!r.next.ok() || r.end != TraceEnd::kComplete) {
          // Reported; not silent.
        } else {
          lost_silently += n - r.events;
        }
        // --skip-corrupt: every other event, and the damage named.
        const Read s = ReadAll(bad, /*skip_corrupt=*/true);
        ASSERT_TRUE(s.next.ok()) << s.next;
        EXPECT_EQ(s.events, n - 1);
        EXPECT_EQ(s.end, TraceEnd::kComplete);
        ASSERT_EQ(s.skipped.size(), 1u);
        EXPECT_EQ(s.skipped[0].offset, at);
        EXPECT_EQ(s.skipped[0].record, rec);
        EXPECT_EQ(s.skipped[0].bytes, l.starts[rec + 1] - at);
      }
    }
  }
  EXPECT_EQ(lost_silently, 0u);
}

TEST(ReliabilityTest, CorruptTraceExitsTwoAndSkipCorruptExitsThreeNamingEachRecord) {
  std::string bytes = Slurp(Recorded(12));
  const Layout l = Walk(bytes);
  const size_t rec = FirstEvent(l) + 3;
  const size_t events = l.types.size() - FirstEvent(l) - 1;
  bytes[l.starts[rec] + 1] ^= 0x04;  // A length bit of the fourth event.
  const std::string path = Temp("flipped.trace");
  Spit(path, bytes);
  ReplayCommandOptions o;
  o.paths = {path};
  Result r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitBadInput) << r.out;
  EXPECT_THAT(r.err,
              HasSubstr(absl::StrFormat("%s: byte %u (record %u): ", path, l.starts[rec], rec)));
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("corrupt, not a torn tail: ", events - 3,
                                            " intact records follow")));

  o.skip_corrupt = true;
  r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitIncomplete) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(": incomplete (1 corrupt regions skipped)"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrFormat("skipped: %s: byte %u (record %u)", path,
                                               l.starts[rec], rec)));
  EXPECT_THAT(r.err, HasSubstr("skipped"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("events ", events - 1, " ")));
  o.format = Format::kJson;
  r = Call(RunReplay, o);
  EXPECT_THAT(r.out, HasSubstr(absl::StrFormat("\"skipped\":[{\"offset\":\"%u\",\"record\":\"%u\"",
                                               l.starts[rec], rec)));
}

// --- Writers: killed, out of space, short writes, unwritable ------------------------------

// Item 7: killing `record -o existing.trace` destroyed the previous good trace.
TEST(ReliabilityTest, KilledWriterLeavesTheOldFileAndAReadableTemporary) {
  const std::string good = Slurp(Recorded(20));
  for (bool atomic : {true, false}) {
    SCOPED_TRACE(atomic ? "atomic" : "in place");
    const std::string dir = Temp(atomic ? "killed_atomic" : "killed_in_place");
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
    const std::string path = dir + "/x.trace";
    Spit(path, good);
    auto source = TraceReader::Open(Recorded(20));
    ASSERT_TRUE(source.ok());
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      TraceWriterOptions wo;
      wo.atomic = atomic;
      wo.flush_every = 1;
      auto w = TraceWriter::Create(path, (*source)->header(), (*source)->snapshot(), wo);
      if (!w.ok()) _exit(1);
      ExitEvent e;
      for (int i = 0; i < 10 && *(*source)->Next(&e); ++i) {
        if (!(*w)->Append(e).ok()) _exit(1);
      }
      (void)!write(ready[1], "r", 1);
      for (;;) pause();
    }
    close(ready[1]);
    char c = 0;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    std::string written = path;
    if (atomic) {
      EXPECT_EQ(Slurp(path), good);  // Untouched.
      std::vector<std::string> temps;
      DIR* d = opendir(dir.c_str());
      while (const dirent* e = readdir(d)) {
        if (std::string(e->d_name).rfind("x.trace.tmp-", 0) == 0) temps.push_back(e->d_name);
      }
      closedir(d);
      ASSERT_EQ(temps.size(), 1u);
      written = dir + "/" + temps[0];
    }
    // Every flushed event is readable, ending without a trailer.
    const Read r = ReadAll(Slurp(written));
    ASSERT_TRUE(r.open.ok()) << r.open;
    ASSERT_TRUE(r.next.ok()) << r.next;
    EXPECT_EQ(r.events, 10u);
    EXPECT_EQ(r.end, TraceEnd::kNoTrailer);
  }
}

// Item 7: a failed import -o existing.trace left a 281-byte stub (the writer failed after the
// header). A writer that fails or is dropped leaves the old file and no temporary file.
TEST(ReliabilityTest, FailedWriterKeepsTheExistingFile) {
  const std::string good = Slurp(Recorded(20));
  const std::string dir = Temp("failed_writer");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  const std::string path = dir + "/x.trace";
  Spit(path, good);
  auto source = TraceReader::Open(Recorded(20));
  ASSERT_TRUE(source.ok());
  Snapshot huge = (*source)->snapshot();
  huge.handler_states.push_back(std::string(5 << 20, 'x'));  // Above the record cap.
  auto w = TraceWriter::Create(path, (*source)->header(), huge);
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(Slurp(path), good);
  {
    auto dropped = TraceWriter::Create(path, (*source)->header(), (*source)->snapshot());
    ASSERT_TRUE(dropped.ok());
    ExitEvent e;
    ASSERT_TRUE(*(*source)->Next(&e));
    ASSERT_TRUE((*dropped)->Append(e).ok());
  }  // Destroyed without Close().
  EXPECT_EQ(Slurp(path), good);
  DIR* d = opendir(dir.c_str());
  int entries = 0;
  while (const dirent* e = readdir(d)) entries += e->d_name[0] != '.' ? 1 : 0;
  closedir(d);
  EXPECT_EQ(entries, 1);  // No temporary file left.
}

TEST(ReliabilityTest, RecordingToAFullDeviceIsExitTwoWithTheReason) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  for (const char* path : {"/dev/full"}) {
    for (bool gzip : {false, true}) {
      RecordOptions o;
      o.workload = "random";
      o.events = 2000;
      o.vcpus = 1;
      o.output = path;
      TraceWriterOptions wo;
      (void)wo;
      if (gzip) {
        // The writer compresses whatever the name when asked; record uses the name, so write
        // the gzip case through the library.
        auto source = TraceReader::Open(Recorded(20));
        ASSERT_TRUE(source.ok());
        TraceWriterOptions g;
        g.gzip = true;
        absl::Status s;
        auto w = TraceWriter::Create(path, (*source)->header(), (*source)->snapshot(), g);
        if (!w.ok()) {
          s = w.status();
        } else {
          s = (*w)->Close(0);
        }
        EXPECT_THAT(std::string(s.message()), HasSubstr("No space left on device"));
        continue;
      }
      const Result r = Call(RunRecord, o);
      EXPECT_EQ(r.code, kExitBadInput);
      EXPECT_EQ(r.err, "msrtrace record: /dev/full: write failed: No space left on device\n");
    }
  }
}

TEST(ReliabilityTest, CheckedStdoutBufferReportsTheOsReason) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  const int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  CheckedFdBuf buf(fd);
  std::ostream out(&buf);
  out << "summary: 1 traces\n";
  out.flush();
  EXPECT_FALSE(out.good());
  EXPECT_EQ(buf.error(), ENOSPC);
  close(fd);
}

// Short writes (a file size limit: write(2) returns fewer bytes, then EFBIG) are looped over
// and then reported; the old file stays.
TEST(ReliabilityTest, ShortWriteThenFileTooLargeIsExitTwoAndKeepsTheOldFile) {
  const std::string good = Slurp(Recorded(20));
  const std::string dir = Temp("short_write");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  const std::string path = dir + "/x.trace";
  Spit(path, good);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p[0]);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {100000 + 4321, 100000 + 4321};  // Not a multiple of the buffer size.
    setrlimit(RLIMIT_FSIZE, &lim);
    RecordOptions o;
    o.workload = "random";
    o.events = 5000;
    o.vcpus = 1;
    o.output = path;
    std::ostringstream out, err;
    const int code = RunRecord(o, out, err);
    const std::string e = err.str();
    (void)!write(p[1], e.data(), e.size());
    _exit(code);
  }
  close(p[1]);
  std::string err;
  char buf[512];
  for (ssize_t n; (n = read(p[0], buf, sizeof(buf))) > 0;) err.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), kExitBadInput);
  EXPECT_THAT(err,
              StartsWith("msrtrace record: " + dir + "/x.trace: write failed: File too large"));
  EXPECT_EQ(Slurp(path), good);
  DIR* d = opendir(dir.c_str());
  int entries = 0;
  while (const dirent* e = readdir(d)) entries += e->d_name[0] != '.' ? 1 : 0;
  closedir(d);
  EXPECT_EQ(entries, 1);
}

TEST(ReliabilityTest, UnwritableOutputsNameTheOsReason) {
  const std::string missing_dir = Temp("no_such_dir");
  RecordOptions ro;
  ro.workload = "random";
  ro.events = 10;
  ro.output = missing_dir + "/x.trace";
  Result r = Call(RunRecord, ro);
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_EQ(r.err, "msrtrace record: " + missing_dir +
                       "/x.trace: cannot create: No such file or directory\n");

  // Item 12: `cannot write --junit file` gave no OS reason.
  ReplayCommandOptions o;
  o.paths = {Recorded(20)};
  o.junit = missing_dir + "/junit.xml";
  r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr("msrtrace replay: cannot write --junit file " + missing_dir +
                               "/junit.xml: cannot create: No such file or directory\n"));

  ConvertOptions c;
  c.input = Recorded(20);
  c.output = missing_dir + "/x.json";
  r = Call(RunConvert, c);
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr("x.json: cannot create: No such file or directory"));
}

// --- stdin, directories, names ------------------------------------------------------------

// Item 8: `replay --repeat=2 - < x.trace` failed with "empty file, not a trace".
TEST(ReliabilityTest, StdinIsSpooledForRepeatAndResumeAfter) {
  const int fd = open(Recorded(20).c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const int saved = dup(0);
  ASSERT_EQ(dup2(fd, 0), 0);
  close(fd);
  ReplayCommandOptions o;
  o.paths = {"-"};
  o.repeat = 2;
  o.resume_after = 5;
  const Result r = Call(RunReplay, o);
  dup2(saved, 0);
  close(saved);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("<stdin>: clean"));
  EXPECT_THAT(r.out, HasSubstr("events 20 "));
}

// Item 9: a symlink cycle replayed the same trace 41 times.
TEST(ReliabilityTest, SymlinkCyclesAndAliasesReplayEachTraceOnce) {
  const std::string d = Temp("cycle");
  ASSERT_EQ(mkdir(d.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((d + "/sub").c_str(), 0755), 0);
  Spit(d + "/a.trace", Slurp(Recorded(20)));
  ASSERT_EQ(symlink("..", (d + "/sub/up").c_str()), 0);        // A cycle.
  ASSERT_EQ(symlink("a.trace", (d + "/b.trace").c_str()), 0);  // The same file again.
  ASSERT_EQ(symlink(d.c_str(), (d + "/sub/self").c_str()), 0);
  ReplayCommandOptions o;
  o.paths = {d, d + "/sub"};
  const Result r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("summary: 1 traces, 20 events"));
  EXPECT_EQ(r.err, "");
}

// Item 12: a dangling *.trace symlink and an empty directory beside other paths were skipped
// silently; "no *.trace files found" did not name the directory.
TEST(ReliabilityTest, DanglingSymlinksAndEmptyDirectoriesAreReported) {
  const std::string d = Temp("dangling");
  const std::string empty = Temp("empty");
  ASSERT_EQ(mkdir(d.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(empty.c_str(), 0755), 0);
  Spit(d + "/a.trace", Slurp(Recorded(20)));
  ASSERT_EQ(symlink("gone.trace", (d + "/b.trace").c_str()), 0);
  ReplayCommandOptions o;
  o.paths = {d, empty};
  const Result r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_THAT(r.out, HasSubstr("summary: 1 traces, 20 events"));
  EXPECT_THAT(r.err, HasSubstr("msrtrace: " + d +
                               "/b.trace: dangling symlink (No such file or directory)\n"));
  EXPECT_THAT(r.err, HasSubstr("msrtrace: " + empty + ": no *.trace files found"));
}

// Item 10: a file name that is not UTF-8 was copied raw into the JSON output.
TEST(ReliabilityTest, JsonOutputIsValidUtf8WhateverTheFileNames) {
  const std::string d = Temp("names");
  ASSERT_EQ(mkdir(d.c_str(), 0755), 0);
  Spit(d + "/ok\xff\xfe.trace", Slurp(Recorded(20)));
  Spit(d + "/bad\xc3(.trace", "not a trace");
  ReplayCommandOptions o;
  o.paths = {d};
  o.format = Format::kJson;
  const Result r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_EQ(ValidUtf8(r.out), r.out);
  EXPECT_THAT(r.out, HasSubstr("ok\xef\xbf\xbd\xef\xbf\xbd.trace"));
  EXPECT_THAT(r.out, HasSubstr("bad\xef\xbf\xbd(.trace"));
  StatsOptions s;
  s.paths = {d + "/ok\xff\xfe.trace"};
  s.format = Format::kJson;
  const Result st = Call(RunStats, s);
  EXPECT_EQ(ValidUtf8(st.out), st.out);
}

// Item 12: "event seq N names vCPU M, which the snapshot does not have" gave no byte offset.
TEST(ReliabilityTest, EventNamingAMissingVcpuGivesItsByteOffset) {
  auto source = TraceReader::Open(Recorded(20));
  ASSERT_TRUE(source.ok());
  const std::string path = Temp("missing_vcpu.trace");
  {
    auto w = TraceWriter::Create(path, (*source)->header(), (*source)->snapshot());
    ASSERT_TRUE(w.ok());
    ExitEvent e;
    for (int i = 0; *(*source)->Next(&e); ++i) {
      if (i == 4) e.vcpu_id = 9;
      ASSERT_TRUE((*w)->Append(e).ok());
    }
    ASSERT_TRUE((*w)->Close(0).ok());
  }
  const Layout l = Walk(Slurp(path));
  const size_t rec = FirstEvent(l) + 4;
  ReplayCommandOptions o;
  o.paths = {path};
  const Result r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr(absl::StrFormat("%s: byte %u (record %u): event seq ", path,
                                               l.starts[rec], rec)));
  EXPECT_THAT(r.err, HasSubstr("names vCPU 9, which the snapshot does not have"));
}

// Item 4: a capture with vCPU ids above ~911 failed to import with "snapshot record of N bytes
// exceeds the 4194304-byte record cap". The documented limit, vCPU 16383, imports (the snapshot
// is split over records, format 1.1) and replays.
TEST(ReliabilityTest, CaptureWithVcpu16383ImportsAndReplays) {
#if defined(__SANITIZE_ADDRESS__) || defined(MSRTRACE_TEST_UNDER_ASAN)
  GTEST_SKIP() << "a 75 MB trace of 16,384 vCPUs takes minutes under ASan; the default and GCC "
                  "builds run it, and SnapshotOf16383VcpusIsSplitOverRecordsAndReadsBack covers "
                  "the format under ASan";
#endif
  std::string capture;
  for (int vcpu : {0, 16383}) {
    absl::StrAppendFormat(&capture,
                          "qemu-1 [000] 1.%05d: kvm_exit: vcpu %d reason MSR_READ rip 0x1000 "
                          "info1 0x0 info2 0x0 intr_info 0x0 error_code 0x0\n"
                          "qemu-1 [000] 1.%05d: kvm_msr: msr_read 10 = 0x0\n"
                          "qemu-1 [000] 1.%05d: kvm_entry: vcpu %d, rip 0x1002\n",
                          vcpu, vcpu, vcpu, vcpu, vcpu);
  }
  const std::string in = Temp("vcpu16383.txt");
  Spit(in, capture);
  ImportOptions io;
  io.inputs = {in};
  io.output = Temp("vcpu16383.trace");
  Result r = Call(RunImport, io);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto reader = TraceReader::Open(io.output);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->header().vcpu_count, 16384u);
  EXPECT_EQ((*reader)->header().format_minor, 1u);
  ReplayCommandOptions o;
  o.paths = {io.output};
  r = Call(RunReplay, o);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("16384 vCPUs"));
  EXPECT_THAT(r.out, HasSubstr("events 2 "));
}

}  // namespace
}  // namespace msrtrace::cli
