#include "harness/importers/kvm_trace_parser.h"

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace msrtrace {
namespace importers {
namespace {

// A byte cursor over one line. Every accessor checks bounds.
class Cursor {
 public:
  explicit Cursor(absl::string_view s) : s_(s) {}

  size_t pos() const { return pos_; }
  void set_pos(size_t p) { pos_ = p; }
  bool done() const { return pos_ >= s_.size(); }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  char peek_at(size_t ahead) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }
  void SkipSpaces() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  bool Consume(absl::string_view lit) {
    if (s_.size() - pos_ < lit.size()) return false;
    if (s_.compare(pos_, lit.size(), lit) != 0) return false;
    pos_ += lit.size();
    return true;
  }
  bool ConsumeChar(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  // A run of non-space characters.
  absl::string_view Word() {
    size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != ' ' && s_[pos_] != '\t') ++pos_;
    return s_.substr(start, pos_ - start);
  }
  // Hex number, with or without "0x"; at most 16 significant digits.
  bool Hex(uint64_t* v) {
    if (peek() == '0' && (peek_at(1) == 'x' || peek_at(1) == 'X')) pos_ += 2;
    size_t start = pos_;
    uint64_t r = 0;
    int significant = 0;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else {
        break;
      }
      if (r != 0 || d != 0) ++significant;
      if (significant > 16) return false;
      r = (r << 4) | static_cast<uint64_t>(d);
      ++pos_;
    }
    if (pos_ == start) return false;
    *v = r;
    return true;
  }
  bool Dec(uint64_t* v, int max_digits = 19) {
    size_t start = pos_;
    uint64_t r = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      if (static_cast<int>(pos_ - start) >= max_digits) return false;
      r = r * 10 + static_cast<uint64_t>(s_[pos_] - '0');
      ++pos_;
    }
    if (pos_ == start) return false;
    *v = r;
    return true;
  }
  bool Dec32(uint32_t* v) {
    uint64_t r;
    if (!Dec(&r, 10) || r > UINT32_MAX) return false;
    *v = static_cast<uint32_t>(r);
    return true;
  }
  absl::string_view rest() const {
    return pos_ < s_.size() ? s_.substr(pos_) : absl::string_view();
  }

 private:
  absl::string_view s_;
  size_t pos_ = 0;
};

bool Fail(LineError* error, const char* what, size_t column) {
  if (error != nullptr) {
    error->what = what;
    error->column = column;
  }
  return false;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '_';
}
bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return true;
}
bool IsBlank(absl::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t') return false;
  }
  return true;
}

// "msr_read 1b = 0xfee00900" / "msr_write c0000080 = 0xd01 (#GP)".
bool ParseMsr(Cursor& c, ParsedLine* out, LineError* error) {
  size_t base = c.pos();
  if (c.Consume("msr_read ")) {
    out->write = false;
  } else if (c.Consume("msr_write ")) {
    out->write = true;
  } else {
    return Fail(error, "kvm_msr: expected 'msr_read ' or 'msr_write '", base);
  }
  uint64_t index;
  size_t at = c.pos();
  if (!c.Hex(&index) || index > UINT32_MAX) return Fail(error, "kvm_msr: bad MSR index", at);
  out->index = static_cast<uint32_t>(index);
  at = c.pos();
  if (!c.Consume(" = 0x")) return Fail(error, "kvm_msr: expected ' = 0x'", at);
  at = c.pos();
  if (!c.Hex(&out->data)) return Fail(error, "kvm_msr: bad data value", at);
  out->gp = c.Consume(" (#GP)");
  at = c.pos();
  if (!IsBlank(c.rest())) return Fail(error, "kvm_msr: trailing text", at);
  return true;
}

struct ReasonName {
  absl::string_view name;
  Vendor vendor;
  uint32_t reason;
  bool has_access;
  Access access;
};
// MSR exit reasons as the kernel (VMX_EXIT_REASONS / SVM_EXIT_REASONS in uapi asm/vmx.h,
// asm/svm.h) and plugin_kvm.c (SVM names with the EXIT_ prefix) print them.
constexpr ReasonName kMsrReasons[] = {
    {"MSR_READ", Vendor::kIntelVmx, kVmxExitRdmsr, true, Access::kRead},
    {"MSR_WRITE", Vendor::kIntelVmx, kVmxExitWrmsr, true, Access::kWrite},
    {"msr", Vendor::kAmdSvm, kSvmExitMsr, false, Access::kRead},
    {"EXIT_MSR", Vendor::kAmdSvm, kSvmExitMsr, false, Access::kRead},
};

bool ParseExit(Cursor& c, ParsedLine* out, LineError* error) {
  c.SkipSpaces();
  if (c.Consume("vcpu ")) {
    size_t at = c.pos();
    if (!c.Dec32(&out->vcpu) || out->vcpu > kMaxVcpuId) {
      return Fail(error, "kvm_exit: bad vcpu id", at);
    }
    out->has_vcpu = true;
    c.SkipSpaces();
  }
  size_t at = c.pos();
  if (!c.Consume("reason ")) return Fail(error, "kvm_exit: expected 'reason '", at);
  absl::string_view name = c.Word();
  if (name.empty()) return Fail(error, "kvm_exit: empty exit reason", c.pos());
  if (name == "UNKNOWN") {
    // plugin_kvm: "reason UNKNOWN (%llu)".
    c.SkipSpaces();
    uint64_t v;
    if (c.ConsumeChar('(') && c.Dec(&v) && c.ConsumeChar(')')) {
      out->reason = static_cast<uint32_t>(v);
    }
  }
  for (const ReasonName& r : kMsrReasons) {
    if (name == r.name) {
      out->msr_exit = true;
      out->vendor = r.vendor;
      out->reason = r.reason;
      out->has_access = r.has_access;
      out->access = r.access;
      break;
    }
  }
  // Exit-reason flags (" FAILED_VMENTRY" ...) may follow the name; skip words up to "rip".
  while (true) {
    c.SkipSpaces();
    if (c.done()) return Fail(error, "kvm_exit: missing 'rip'", c.pos());
    if (c.Consume("rip ")) break;
    c.Word();
  }
  at = c.pos();
  if (!c.Hex(&out->rip)) return Fail(error, "kvm_exit: bad rip", at);
  out->has_rip = true;
  // Optional "<func>[+0x..]" (plugin_kvm with symbols), then "info A B" or "info1 0x.. ...".
  while (!c.done()) {
    c.SkipSpaces();
    if (c.Consume("info1 ")) {
      at = c.pos();
      if (!c.Hex(&out->info1)) return Fail(error, "kvm_exit: bad info1", at);
      out->has_info1 = true;
      break;
    }
    if (c.Consume("info ")) {
      at = c.pos();
      if (!c.Hex(&out->info1)) return Fail(error, "kvm_exit: bad info", at);
      out->has_info1 = true;
      break;
    }
    c.Word();
  }
  if (out->vendor == Vendor::kAmdSvm && out->has_info1) {
    // SVM EXITINFO1: 0 = RDMSR, 1 = WRMSR (AMD APM Vol2 §15.11).
    if (out->info1 == 0 || out->info1 == 1) {
      out->has_access = true;
      out->access = out->info1 == 1 ? Access::kWrite : Access::kRead;
    }
  }
  return true;
}

bool ParseEntry(Cursor& c, ParsedLine* out, LineError* error) {
  c.SkipSpaces();
  size_t at = c.pos();
  if (!c.Consume("vcpu ")) return Fail(error, "kvm_entry: expected 'vcpu '", at);
  at = c.pos();
  if (!c.Dec32(&out->vcpu) || out->vcpu > kMaxVcpuId) {
    return Fail(error, "kvm_entry: bad vcpu id", at);
  }
  out->has_vcpu = true;
  c.ConsumeChar(',');
  c.SkipSpaces();
  if (c.Consume("rip ")) {
    at = c.pos();
    if (!c.Hex(&out->rip)) return Fail(error, "kvm_entry: bad rip", at);
    out->has_rip = true;
  }
  return true;  // "[immediate exit]" or a plugin function name may follow.
}

struct VectorName {
  absl::string_view name;
  uint8_t vector;
};
// kvm_trace_sym_exc (arch/x86/kvm/trace.h).
constexpr VectorName kVectors[] = {
    {"#DE", 0},  {"#DB", 1},  {"#BP", 3},  {"#OF", 4},  {"#BR", 5},  {"#UD", 6},
    {"#NM", 7},  {"#DF", 8},  {"#TS", 10}, {"#NP", 11}, {"#SS", 12}, {"#GP", 13},
    {"#PF", 14}, {"#MF", 16}, {"#AC", 17}, {"#MC", 18}, {"#XM", 19}, {"#VE", 20},
};

bool ParseInj(Cursor& c, ParsedLine* out, LineError* error) {
  c.SkipSpaces();
  size_t at = c.pos();
  absl::string_view w = c.Word();
  if (w.empty()) return Fail(error, "kvm_inj_exception: empty payload", at);
  out->vector = 0xff;
  for (const VectorName& v : kVectors) {
    if (w == v.name) {
      out->vector = v.vector;
      break;
    }
  }
  return true;
}

bool ParsePayloadAt(absl::string_view event, Cursor& c, ParsedLine* out, LineError* error) {
  out->event_name = event;
  if (event == "kvm_msr") {
    out->type = EventType::kMsr;
    c.SkipSpaces();
    return ParseMsr(c, out, error);
  }
  if (event == "kvm_exit") {
    out->type = EventType::kExit;
    return ParseExit(c, out, error);
  }
  if (event == "kvm_entry") {
    out->type = EventType::kEntry;
    return ParseEntry(c, out, error);
  }
  if (event == "kvm_inj_exception") {
    out->type = EventType::kInjException;
    return ParseInj(c, out, error);
  }
  out->type = EventType::kOther;
  return true;
}

// Timestamp "sec.frac:" (frac up to 9 digits). Leaves the cursor after the colon.
bool ParseTimestamp(Cursor& c, uint64_t* ns) {
  uint64_t sec;
  if (!c.Dec(&sec, 12)) return false;
  uint64_t frac = 0;
  int digits = 0;
  if (c.ConsumeChar('.')) {
    while (IsDigit(c.peek())) {
      if (digits == 9) return false;
      frac = frac * 10 + static_cast<uint64_t>(c.peek() - '0');
      ++digits;
      c.set_pos(c.pos() + 1);
    }
    if (digits == 0) return false;
  }
  for (int i = digits; i < 9; ++i) frac *= 10;
  if (!c.ConsumeChar(':')) return false;
  *ns = sec * 1000000000ull + frac;
  return true;
}

bool LooksLikeTimestamp(absl::string_view w) {
  if (w.size() < 2 || w.back() != ':' || !IsDigit(w[0])) return false;
  for (size_t i = 0; i + 1 < w.size(); ++i) {
    if (!IsDigit(w[i]) && w[i] != '.') return false;
  }
  return true;
}

bool IsHeaderLine(absl::string_view s) {
  // trace-cmd report headers: "version = 6", "cpus=2", "CPU 3 is empty", "CPU0 data recorded..."
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  if (s.empty() || s.front() == '#') return true;
  if (s.substr(0, 5) == "cpus=" || s.substr(0, 10) == "version = ") return true;
  if (s.substr(0, 4) == "CPU " && s.size() > 9 && s.substr(s.size() - 9) == " is empty") {
    return true;
  }
  return false;
}

}  // namespace

const char* RenderingName(Rendering r) {
  switch (r) {
    case Rendering::kFtraceOld:
      return "ftrace-4col";
    case Rendering::kFtraceNew:
      return "ftrace-5col";
    case Rendering::kTraceCmd:
      return "trace-cmd";
    case Rendering::kPerfScript:
      return "perf-script";
    case Rendering::kUnknown:
      break;
  }
  return "unknown";
}

bool ParsePayload(absl::string_view event, absl::string_view payload, ParsedLine* out,
                  LineError* error) {
  Cursor c(payload);
  return ParsePayloadAt(event, c, out, error);
}

LineStatus ParseLine(absl::string_view line, ParsedLine* out, LineError* error) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  *out = ParsedLine();
  if (IsHeaderLine(line)) return LineStatus::kSkip;

  // The CPU column: " [<digits>]". The comm may contain '[' (rare), so take the first match.
  size_t lb = 0;
  size_t rb = 0;
  while (true) {
    lb = line.find('[', lb);
    if (lb == absl::string_view::npos) {
      Fail(error, "no CPU column '[<cpu>]'", 0);
      return LineStatus::kBad;
    }
    size_t i = lb + 1;
    while (i < line.size() && IsDigit(line[i])) ++i;
    if (lb > 0 && line[lb - 1] == ' ' && i > lb + 1 && i < line.size() && line[i] == ']' &&
        i - lb - 1 <= 6) {
      rb = i;
      break;
    }
    ++lb;
  }
  // Task: "comm-pid" (ftrace, trace-cmd) or "comm tid" (perf script).
  absl::string_view task = line.substr(0, lb);
  while (!task.empty() && task.back() == ' ') task.remove_suffix(1);
  while (!task.empty() && task.front() == ' ') task.remove_prefix(1);
  bool perf_task = false;
  {
    size_t sp = task.rfind(' ');
    absl::string_view last = sp == absl::string_view::npos ? task : task.substr(sp + 1);
    absl::string_view pid;
    if (sp != absl::string_view::npos && AllDigits(last)) {
      perf_task = true;
      pid = last;
      out->comm = task.substr(0, sp);
      while (!out->comm.empty() && out->comm.back() == ' ') out->comm.remove_suffix(1);
    } else {
      size_t dash = task.rfind('-');
      if (dash == absl::string_view::npos || !AllDigits(task.substr(dash + 1))) {
        Fail(error, "bad task column: expected '<comm>-<pid>' or '<comm> <tid>'", 0);
        return LineStatus::kBad;
      }
      pid = task.substr(dash + 1);
      out->comm = task.substr(0, dash);
    }
    Cursor pc(pid);
    if (!pc.Dec32(&out->tid)) {
      Fail(error, "bad pid", 0);
      return LineStatus::kBad;
    }
  }
  {
    Cursor cc(line.substr(lb + 1, rb - lb - 1));
    cc.Dec32(&out->cpu);
  }

  Cursor c(line);
  c.set_pos(rb + 1);
  c.SkipSpaces();
  size_t word_start = c.pos();
  absl::string_view w = c.Word();
  Rendering rendering = Rendering::kTraceCmd;
  if (!LooksLikeTimestamp(w)) {
    // ftrace flags column: irqs-off, need-resched, hardirq/softirq, preempt-depth
    // [, migrate-disable] (4 characters before Linux 5.14, 5 since).
    if (w.size() == 4) {
      rendering = Rendering::kFtraceOld;
    } else if (w.size() == 5) {
      rendering = Rendering::kFtraceNew;
    } else {
      Fail(error, "expected a flags column or a timestamp after the CPU column", word_start);
      return LineStatus::kBad;
    }
    c.SkipSpaces();
    word_start = c.pos();
  } else {
    c.set_pos(word_start);
  }
  if (!ParseTimestamp(c, &out->timestamp_ns)) {
    Fail(error, "bad timestamp", word_start);
    return LineStatus::kBad;
  }
  c.SkipSpaces();
  // Event name: "kvm_msr:" (ftrace), "kvm_msr:     " padded (trace-cmd), "kvm:kvm_msr:" (perf).
  size_t name_start = c.pos();
  while (IsNameChar(c.peek())) c.set_pos(c.pos() + 1);
  absl::string_view event = line.substr(name_start, c.pos() - name_start);
  bool system_prefix = false;
  if (c.peek() == ':' && IsNameChar(c.peek_at(1))) {
    system_prefix = true;
    absl::string_view system = event;
    c.set_pos(c.pos() + 1);
    name_start = c.pos();
    while (IsNameChar(c.peek())) c.set_pos(c.pos() + 1);
    event = line.substr(name_start, c.pos() - name_start);
    if (system != "kvm") {
      // Another subsystem's event (perf script -e sched:...): well-formed, not ours.
      event = absl::string_view();
    }
  }
  if (name_start == c.pos()) {
    Fail(error, "missing event name", name_start);
    return LineStatus::kBad;
  }
  c.SkipSpaces();
  if (!c.ConsumeChar(':')) {
    Fail(error, "expected ':' after the event name", c.pos());
    return LineStatus::kBad;
  }
  if (system_prefix || perf_task) {
    if (rendering == Rendering::kTraceCmd) rendering = Rendering::kPerfScript;
  }
  out->rendering = rendering;
  size_t payload_start = c.pos();
  Cursor pc(line.substr(payload_start));
  LineError local;
  if (!ParsePayloadAt(event, pc, out, &local)) {
    if (error != nullptr) {
      error->what = local.what;
      error->column = payload_start + local.column;
    }
    return LineStatus::kBad;
  }
  return LineStatus::kEvent;
}

}  // namespace importers
}  // namespace msrtrace
