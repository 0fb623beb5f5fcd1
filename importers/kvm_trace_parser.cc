#include "importers/kvm_trace_parser.h"

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
  // Hex digits, with or without "0x", whose value is not needed; at least one digit.
  bool SkipHex() {
    if (peek() == '0' && (peek_at(1) == 'x' || peek_at(1) == 'X')) pos_ += 2;
    size_t start = pos_;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) break;
      ++pos_;
    }
    return pos_ > start && pos_ - start <= 16;
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

// True when `rest` is a non-empty proper prefix of `expected`: the line was cut in the middle
// of text the format always prints.
bool IsCutPrefix(absl::string_view rest, absl::string_view expected) {
  return !rest.empty() && rest.size() < expected.size() && expected.substr(0, rest.size()) == rest;
}

// After a complete payload: blank is fine; text separated by a space is tolerated (marked
// kShapeTrailingText); anything else is a bad line.
bool FinishPayload(Cursor& c, ParsedLine* out, LineError* error, const char* what) {
  absl::string_view rest = c.rest();
  if (IsBlank(rest)) return true;
  if (rest.front() != ' ' && rest.front() != '\t') return Fail(error, what, c.pos());
  out->shapes |= kShapeTrailingText;
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
  if (!c.Consume(" = 0x")) return Fail(error, "kvm_msr: expected ' = 0x' (line cut?)", at);
  at = c.pos();
  if (!c.Hex(&out->data)) return Fail(error, "kvm_msr: bad data value", at);
  out->gp = c.Consume(" (#GP)");
  if (!out->gp && IsCutPrefix(c.rest(), " (#GP)")) {
    return Fail(error, "kvm_msr: line cut in ' (#GP)'", c.pos());
  }
  return FinishPayload(c, out, error, "kvm_msr: unexpected text after the value");
}

// `key 0x<hex>` after optional spaces. Absent: nothing consumed, returns true with *found
// false. A key cut short or without its number: false (a cut line).
bool KeyHex(Cursor& c, absl::string_view key, bool* found) {
  size_t save = c.pos();
  c.SkipSpaces();
  *found = false;
  absl::string_view rest = c.rest();
  if (rest.size() > key.size() && rest.substr(0, key.size()) == key && rest[key.size()] == ' ') {
    c.set_pos(c.pos() + key.size() + 1);
    if (!c.SkipHex()) return false;
    *found = true;
    return true;
  }
  if (IsCutPrefix(rest, key) || rest == key) return false;
  c.set_pos(save);
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
    if (c.done()) return Fail(error, "kvm_exit: missing 'rip' (line cut?)", c.pos());
    if (c.Consume("rip ")) break;
    c.Word();
  }
  at = c.pos();
  if (!c.Hex(&out->rip)) return Fail(error, "kvm_exit: bad rip", at);
  out->has_rip = true;
  // Optional "<func>[+0x..]" (plugin_kvm with symbols), then "info A B" (old kernels, plugin)
  // or "info1 0x.. info2 0x.. intr_info 0x.. error_code 0x.." (recent kernels). Every kernel
  // and plugin rendering prints the info part, so a line without it was cut.
  while (true) {
    c.SkipSpaces();
    if (c.done()) return Fail(error, "kvm_exit: missing 'info' (line cut?)", c.pos());
    if (IsCutPrefix(c.rest(), "info")) {
      return Fail(error, "kvm_exit: line cut in 'info'", c.pos());
    }
    if (c.Consume("info1 ")) {
      at = c.pos();
      if (!c.Hex(&out->info1)) return Fail(error, "kvm_exit: bad info1", at);
      out->has_info1 = true;
      bool found;
      if (!KeyHex(c, "info2", &found) || !found) {
        return Fail(error, "kvm_exit: bad or missing info2 (line cut?)", c.pos());
      }
      for (absl::string_view key :
           {absl::string_view("intr_info"), absl::string_view("error_code")}) {
        if (!KeyHex(c, key, &found)) {
          return Fail(error, "kvm_exit: line cut in intr_info/error_code", c.pos());
        }
        if (!found) break;
      }
      break;
    }
    if (c.Consume("info ")) {
      at = c.pos();
      if (!c.Hex(&out->info1)) return Fail(error, "kvm_exit: bad info", at);
      out->has_info1 = true;
      c.SkipSpaces();
      at = c.pos();
      if (!c.SkipHex()) {
        return Fail(error, "kvm_exit: bad or missing second info (line cut?)", at);
      }
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
  return FinishPayload(c, out, error, "kvm_exit: unexpected text after the info fields");
}

// "vcpu %u" (old), "vcpu %u, rip 0x%lx[immediate exit]" (kernel), " vcpu %u rip 0x%llx"
// (plugin_kvm).
bool ParseEntry(Cursor& c, ParsedLine* out, LineError* error) {
  c.SkipSpaces();
  size_t at = c.pos();
  if (!c.Consume("vcpu ")) {
    if (IsCutPrefix(c.rest(), "vcpu ")) return Fail(error, "kvm_entry: line cut in 'vcpu'", at);
    return Fail(error, "kvm_entry: expected 'vcpu '", at);
  }
  at = c.pos();
  if (!c.Dec32(&out->vcpu) || out->vcpu > kMaxVcpuId) {
    return Fail(error, "kvm_entry: bad vcpu id", at);
  }
  out->has_vcpu = true;
  if (c.ConsumeChar(',')) {
    // The kernel's "vcpu %u, rip 0x%lx": the RIP must follow.
    c.SkipSpaces();
    at = c.pos();
    if (!c.Consume("rip ")) return Fail(error, "kvm_entry: line cut after 'vcpu N,'", at);
    at = c.pos();
    if (!c.Hex(&out->rip)) return Fail(error, "kvm_entry: bad rip (line cut?)", at);
    out->has_rip = true;
    c.Consume("[immediate exit]");
    return FinishPayload(c, out, error, "kvm_entry: unexpected text after the rip");
  }
  size_t save = c.pos();
  c.SkipSpaces();
  if (c.Consume("rip ")) {
    at = c.pos();
    if (!c.Hex(&out->rip)) return Fail(error, "kvm_entry: bad rip (line cut?)", at);
    out->has_rip = true;
    return FinishPayload(c, out, error, "kvm_entry: unexpected text after the rip");
  }
  if (IsCutPrefix(c.rest(), "rip 0x") || c.rest() == "rip") {
    return Fail(error, "kvm_entry: line cut in 'rip'", c.pos());
  }
  c.set_pos(save);
  return FinishPayload(c, out, error, "kvm_entry: unexpected text after the vcpu id");
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
    if (IsCutPrefix(w, v.name) && c.done()) {
      return Fail(error, "kvm_inj_exception: line cut in the vector name", at);
    }
  }
  // " (0x<error code>)" (old) or " (<hex>)" (new, when has_error), then " [reinjected]".
  size_t save = c.pos();
  c.SkipSpaces();
  if (c.ConsumeChar('(')) {
    uint64_t code;
    if (!c.Hex(&code) || !c.ConsumeChar(')')) c.set_pos(save);
  } else {
    c.set_pos(save);
  }
  c.Consume(" [reinjected]");
  return FinishPayload(c, out, error, "kvm_inj_exception: unexpected text after the vector");
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

// Lost-events markers (kernel/trace/trace.c print_trace_line; trace-cmd report):
//   "CPU:%d [LOST %lu EVENTS]", "CPU:%d [LOST EVENTS]", "CPU:%d [%lld EVENTS DROPPED]",
//   "CPU:%d [EVENTS DROPPED]".
bool ParseLost(absl::string_view s, ParsedLine* out) {
  Cursor c(s);
  c.SkipSpaces();
  if (!c.Consume("CPU:")) return false;
  if (!c.Dec32(&out->cpu)) return false;
  c.SkipSpaces();
  if (!c.ConsumeChar('[')) return false;
  uint64_t n = UINT64_MAX;
  if (c.Consume("LOST ")) {
    if (IsDigit(c.peek())) {
      if (!c.Dec(&n) || !c.ConsumeChar(' ')) return false;
    }
    if (!c.Consume("EVENTS]")) return false;
  } else {
    if (IsDigit(c.peek())) {
      if (!c.Dec(&n) || !c.ConsumeChar(' ')) return false;
    }
    if (!c.Consume("EVENTS DROPPED]")) return false;
  }
  if (!IsBlank(c.rest())) return false;
  out->has_cpu = true;
  out->lost = n;
  return true;
}

// An ftrace flags column: irqs-off, need-resched, hardirq/softirq, preempt depth, migrate
// disable, ... (kernel/trace/trace_output.c trace_print_lat_fmt): '.', hex digits and the
// letters the kernel prints there.
bool IsFlagsWord(absl::string_view w) {
  if (w.empty() || w.size() > 8) return false;
  for (char ch : w) {
    if (ch == '.' || IsDigit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')) continue;
    switch (ch) {
      case 'X':
      case 'N':
      case 'L':
      case 'n':
      case 'p':
      case 'Z':
      case 'z':
      case 'H':
      case 'h':
      case 's':
      case 'S':
        continue;
      default:
        return false;
    }
  }
  return true;
}

bool IsCpuWord(absl::string_view w, uint32_t* cpu) {
  if (w.size() < 3 || w.size() > 8 || w.front() != '[' || w.back() != ']') return false;
  absl::string_view digits = w.substr(1, w.size() - 2);
  if (!AllDigits(digits)) return false;
  Cursor c(digits);
  return c.Dec32(cpu);
}

absl::string_view TrimRight(absl::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
absl::string_view TrimLeft(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}
// Splits off the last whitespace-separated word of `s` (trimmed on the right).
absl::string_view LastWord(absl::string_view s, absl::string_view* before) {
  s = TrimRight(s);
  size_t i = s.size();
  while (i > 0 && s[i - 1] != ' ' && s[i - 1] != '\t') --i;
  if (i == 0) {
    *before = absl::string_view();
    return s;
  }
  *before = TrimRight(s.substr(0, i - 1));
  return s.substr(i);
}

// Task: "comm-pid" (ftrace, trace-cmd) or "comm tid" (perf script).
bool ParseTask(absl::string_view task, ParsedLine* out, bool* perf_task) {
  task = TrimLeft(TrimRight(task));
  *perf_task = false;
  size_t sp = task.rfind(' ');
  absl::string_view last = sp == absl::string_view::npos ? task : task.substr(sp + 1);
  absl::string_view pid;
  if (sp != absl::string_view::npos && AllDigits(last)) {
    *perf_task = true;
    pid = last;
    out->comm = TrimRight(task.substr(0, sp));
  } else {
    size_t dash = task.rfind('-');
    if (dash == absl::string_view::npos || !AllDigits(task.substr(dash + 1))) return false;
    pid = task.substr(dash + 1);
    out->comm = task.substr(0, dash);
  }
  if (out->comm == "<...>") out->shapes |= kShapeUnknownComm;
  for (char ch : out->comm) {
    if (ch == ' ' || ch == '\t' || ch == '[' || ch == ']') {
      out->shapes |= kShapeSpacedComm;
      break;
    }
  }
  Cursor pc(pid);
  return pc.Dec32(&out->tid);
}

// "<name>:" or "<system>:<name>:" at the cursor, followed by a space or the end of the line.
// On success the cursor is after the final ':' and *event/*system are set.
bool EventHeader(Cursor& c, absl::string_view line, absl::string_view* system,
                 absl::string_view* event) {
  size_t start = c.pos();
  while (IsNameChar(c.peek())) c.set_pos(c.pos() + 1);
  if (c.pos() == start) return false;
  absl::string_view first = line.substr(start, c.pos() - start);
  *system = absl::string_view();
  *event = first;
  if (c.peek() == ':' && IsNameChar(c.peek_at(1))) {
    size_t save = c.pos();
    c.set_pos(c.pos() + 1);
    size_t second = c.pos();
    while (IsNameChar(c.peek())) c.set_pos(c.pos() + 1);
    if (c.peek() == ':' || c.peek() == ' ') {
      size_t end = c.pos();
      c.SkipSpaces();
      if (c.peek() == ':') {
        *system = first;
        *event = line.substr(second, end - second);
      } else {
        c.set_pos(save);
      }
    } else {
      c.set_pos(save);
    }
  }
  c.SkipSpaces();  // trace-cmd pads the event name.
  if (!c.ConsumeChar(':')) return false;
  if (!c.done() && c.peek() != ' ' && c.peek() != '\t') return false;
  return true;
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
    case Rendering::kFtraceFlags:
      return "ftrace-Ncol";
    case Rendering::kBare:
      return "bare";
    case Rendering::kTraceDat:
      return "trace.dat";
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

const char* ShapeName(uint16_t shape_bit) {
  switch (shape_bit) {
    case kShapeNoCpuColumn:
      return "no-cpu-column";
    case kShapeFlagsWidth:
      return "flags-width";
    case kShapeBare:
      return "no-prefix";
    case kShapeTrailingText:
      return "trailing-text";
    case kShapeUnknownComm:
      return "unknown-comm";
    case kShapeTgid:
      return "tgid-column";
    case kShapeSpacedComm:
      return "comm-with-spaces";
    default:
      break;
  }
  return "?";
}

namespace {

LineStatus ParsePayloadOf(absl::string_view line, size_t payload_start, absl::string_view event,
                          ParsedLine* out, LineError* error) {
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

}  // namespace

LineStatus ParseLine(absl::string_view line, ParsedLine* out, LineError* error) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  *out = ParsedLine();
  if (IsHeaderLine(line)) return LineStatus::kSkip;
  size_t lead = 0;
  while (lead < line.size() && (line[lead] == ' ' || line[lead] == '\t')) ++lead;
  if (line.size() - lead >= 4 && line.compare(lead, 4, "CPU:") == 0 && ParseLost(line, out)) {
    return LineStatus::kLost;
  }

  // A bare tracepoint line: "kvm_msr: ..." or "kvm:kvm_msr: ..." with no prefix. Event names
  // start with a letter or '_' (a counter-clock timestamp "123:" is not an event name).
  if (lead < line.size() && IsNameChar(line[lead]) && !IsDigit(line[lead])) {
    Cursor c(line);
    c.set_pos(lead);
    absl::string_view system, event;
    if (EventHeader(c, line, &system, &event)) {
      out->rendering = Rendering::kBare;
      out->shapes |= kShapeBare;
      out->tid = kBareThread;
      if (!system.empty() && system != "kvm") event = absl::string_view();
      return ParsePayloadOf(line, c.pos(), event, out, error);
    }
  }

  // A prefixed line: find the timestamp, the first word "<digits>[.<digits>]:" followed by an
  // event header. Everything before it is "<task> [(tgid)] [[cpu]] [flags]".
  // Candidates are the ':' bytes: a timestamp is "<digits>[.<digits>]:" preceded by a blank.
  Cursor c(line);
  size_t ts_start = absl::string_view::npos;
  absl::string_view system, event;
  for (size_t colon = line.find(':'); colon != absl::string_view::npos;
       colon = line.find(':', colon + 1)) {
    if (colon == 0 || !IsDigit(line[colon - 1])) continue;
    size_t start = colon;
    while (start > 0 && (IsDigit(line[start - 1]) || line[start - 1] == '.')) --start;
    if (start == 0 || (line[start - 1] != ' ' && line[start - 1] != '\t')) continue;
    if (!LooksLikeTimestamp(line.substr(start, colon + 1 - start))) continue;
    c.set_pos(colon + 1);
    c.SkipSpaces();
    if (EventHeader(c, line, &system, &event)) {
      ts_start = start;
      break;
    }
  }
  if (ts_start == absl::string_view::npos) {
    // Say what is missing, in the order the prefix is read.
    bool has_bracket = false;
    for (size_t i = 0; i + 2 < line.size(); ++i) {
      if (line[i] == '[' && IsDigit(line[i + 1])) has_bracket = true;
    }
    Fail(error,
         has_bracket ? "expected '<timestamp>: <event>:' after the CPU column"
                     : "not a trace line: no '<timestamp>: <event>:' and not a bare "
                       "'<event>: ...' line",
         lead);
    return LineStatus::kBad;
  }
  const size_t payload_start = c.pos();
  {
    Cursor tc(line);
    tc.set_pos(ts_start);
    if (!ParseTimestamp(tc, &out->timestamp_ns)) {
      Fail(error, "bad timestamp", ts_start);
      return LineStatus::kBad;
    }
  }
  absl::string_view prefix = TrimRight(line.substr(0, ts_start));
  absl::string_view before;
  absl::string_view w = LastWord(prefix, &before);
  Rendering rendering = Rendering::kTraceCmd;
  uint32_t cpu = 0;
  bool has_cpu = false;
  if (IsCpuWord(w, &cpu)) {
    has_cpu = true;
    prefix = before;
  } else if (IsFlagsWord(w) && !TrimLeft(before).empty()) {
    absl::string_view before2;
    absl::string_view w2 = LastWord(before, &before2);
    if (IsCpuWord(w2, &cpu)) {
      has_cpu = true;
      prefix = before2;
    } else {
      prefix = before;
    }
    out->flags_width = static_cast<uint8_t>(w.size());
    if (w.size() == 4) {
      rendering = Rendering::kFtraceOld;
    } else if (w.size() == 5) {
      rendering = Rendering::kFtraceNew;
    } else {
      rendering = Rendering::kFtraceFlags;
      out->shapes |= kShapeFlagsWidth;
    }
  }
  if (!has_cpu && w.size() > 8 &&
      w.find_first_not_of(".0123456789abcdefABCDEFXNLnpZzHhsS") == absl::string_view::npos) {
    Fail(error, "flags column wider than 8 characters", lead);
    return LineStatus::kBad;
  }
  if (!has_cpu) out->shapes |= kShapeNoCpuColumn;
  // ftrace's "(tgid)" column: "bash-1234  (   1234) [000]".
  prefix = TrimRight(prefix);
  if (!prefix.empty() && prefix.back() == ')') {
    size_t open = prefix.rfind('(');
    if (open != absl::string_view::npos && open > 0) {
      absl::string_view inner = TrimLeft(prefix.substr(open + 1, prefix.size() - open - 2));
      if (AllDigits(inner) || inner == "-------") {
        out->shapes |= kShapeTgid;
        prefix = TrimRight(prefix.substr(0, open));
      }
    }
  }
  bool perf_task = false;
  if (prefix.empty() || !ParseTask(prefix, out, &perf_task)) {
    Fail(error, "bad task column: expected '<comm>-<pid>' or '<comm> <tid>'", lead);
    return LineStatus::kBad;
  }
  out->has_cpu = has_cpu;
  out->cpu = cpu;
  if (!system.empty() || perf_task) {
    if (rendering == Rendering::kTraceCmd) rendering = Rendering::kPerfScript;
  }
  if (!system.empty() && system != "kvm") {
    // Another subsystem's event (perf script -e sched:...): well-formed, not ours.
    event = absl::string_view();
  }
  out->rendering = rendering;
  return ParsePayloadOf(line, payload_start, event, out, error);
}

}  // namespace importers
}  // namespace msrtrace
