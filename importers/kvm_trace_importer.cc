#include "importers/kvm_trace_importer.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "harness/core/guest_memory.h"
#include "harness/core/snapshot.h"
#include "harness/core/status_macros.h"
#include "harness/core/utf8.h"
#include "harness/replay/exit_check.h"
#include "harness/replay/machine.h"
#include "harness/trace/trace_file.h"
#include "harness/trace/trace_types.h"
#include "importers/trace_dat_reader.h"

namespace msrtrace {
namespace importers {
namespace {

constexpr size_t kBufferSize = 1 << 20;     // Longest line kept whole; longer lines are bad.
constexpr size_t kMaxMsrs = 1 << 16;        // Distinct MSRs with their own summary row.
constexpr size_t kMaxFirstReads = 1 << 20;  // (vCPU, MSR) pairs tracked for inference.
constexpr size_t kMaxOtherNames = 64;
constexpr uint64_t kProgressEvery = 64ull << 20;

// --- Line input -------------------------------------------------------------------------

// Yields lines from memory or from a zlib stream (which reads plain files transparently).
// Keeps one buffer of kBufferSize bytes.
class LineReader {
 public:
  // Lines of `text` (no copy).
  LineReader(absl::string_view text, std::string name)
      : text_(text), in_memory_(true), name_(std::move(name)) {}
  // Lines read from `file` (owned, closed by the destructor). When `spool` is set every byte
  // read is also appended to it.
  LineReader(gzFile file, std::string name, FILE* spool)
      : file_(file), name_(std::move(name)), spool_(spool), buffer_(new char[kBufferSize]) {}
  ~LineReader() {
    if (file_ != nullptr) gzclose(file_);
  }

  // Next line without its '\n'. Returns false at the end. *too_long: the line did not fit in
  // the buffer; *line holds its first kBufferSize bytes and the rest was skipped.
  absl::StatusOr<bool> Next(absl::string_view* line, bool* too_long) {
    *too_long = false;
    if (in_memory_) {
      if (pos_ >= text_.size()) return false;
      if (pos_ == 0) RETURN_IF_ERROR(CheckNotTraceDat(text_));
      size_t nl = text_.find('\n', pos_);
      size_t end = nl == absl::string_view::npos ? text_.size() : nl;
      *line = text_.substr(pos_, end - pos_);
      pos_ = nl == absl::string_view::npos ? text_.size() : nl + 1;
      bytes_ = pos_;
      if (nl == absl::string_view::npos && !IsBlankText(*line)) {
        cut_final_line_ = true;
        return false;
      }
      return true;
    }
    while (true) {
      const char* start = buffer_.get() + begin_;
      const char* nl = static_cast<const char*>(memchr(start, '\n', end_ - begin_));
      if (nl != nullptr) {
        *line = absl::string_view(start, nl - start);
        begin_ = (nl - buffer_.get()) + 1;
        if (skipping_) {
          skipping_ = false;
          continue;
        }
        return true;
      }
      if (eof_) {
        if (begin_ == end_) return false;
        *line = absl::string_view(start, end_ - begin_);
        begin_ = end_;
        if (skipping_) {
          skipping_ = false;
          cut_final_line_ = true;
          return false;
        }
        if (!IsBlankText(*line)) {
          cut_final_line_ = true;
          return false;
        }
        return true;
      }
      // Move the partial line to the front and refill.
      if (begin_ > 0) {
        memmove(buffer_.get(), start, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      if (end_ == kBufferSize) {
        // A line longer than the buffer: hand out its start once, skip the rest.
        if (!skipping_) {
          *line = absl::string_view(buffer_.get(), end_);
          *too_long = true;
          skipping_ = true;
          end_ = 0;
          return true;
        }
        end_ = 0;
      }
      int n = gzread(file_, buffer_.get() + end_, static_cast<unsigned>(kBufferSize - end_));
      if (n < 0) {
        int errnum = 0;
        const char* msg = gzerror(file_, &errnum);
        if (errnum == Z_ERRNO) {
          return absl::DataLossError(absl::StrCat(name_, ": read error after ", bytes_,
                                                  " bytes of text: ", strerror(errno)));
        }
        return absl::DataLossError(
            absl::StrCat(name_, ": corrupt gzip data at compressed byte ", gzoffset(file_),
                         bytes_ == 0 ? " (no text decompressed)"
                                     : absl::StrCat(" (after ", bytes_, " bytes of text)"),
                         ": ", ZlibReason(msg)));
      }
      if (n == 0) {
        int errnum = 0;
        gzerror(file_, &errnum);
        // zlib reports a stream that ends before its trailer as Z_BUF_ERROR ("unexpected end
        // of file") after handing out everything it could decompress.
        if (errnum == Z_BUF_ERROR) gzip_truncated_ = true;
        eof_ = true;
        continue;
      }
      if (bytes_ == 0) {
        RETURN_IF_ERROR(CheckNotTraceDat(absl::string_view(buffer_.get() + end_, n)));
      }
      if (spool_ != nullptr &&
          fwrite(buffer_.get() + end_, 1, n, spool_) != static_cast<size_t>(n)) {
        return absl::InternalError("cannot spool stdin to a temporary file");
      }
      end_ += n;
      bytes_ += n;
    }
  }
  uint64_t bytes() const { return bytes_; }
  // The input ended inside a line (no final newline): that line was not handed out.
  bool cut_final_line() const { return cut_final_line_; }
  // The gzip stream ended before its end-of-stream marker and trailer.
  bool gzip_truncated() const { return gzip_truncated_; }

 private:
  static bool IsBlankText(absl::string_view s) {
    for (char c : s) {
      if (c != ' ' && c != '\t' && c != '\r') return false;
    }
    return true;
  }
  // zlib prefixes gzerror() messages with the path it was given: keep only the reason.
  static std::string ZlibReason(const char* msg) {
    if (msg == nullptr) return "unknown zlib error";
    absl::string_view m(msg);
    size_t colon = m.rfind(": ");
    return std::string(colon == absl::string_view::npos ? m : m.substr(colon + 2));
  }
  absl::Status CheckNotTraceDat(absl::string_view head) const {
    if (HasTraceDatMagic(head)) {
      return absl::InvalidArgumentError(absl::StrCat(
          name_,
          ": a trace-cmd trace.dat (binary) can only be imported from a file path, not "
          "from stdin or memory"));
    }
    return absl::OkStatus();
  }

  absl::string_view text_;
  size_t pos_ = 0;
  bool in_memory_ = false;
  gzFile file_ = nullptr;
  std::string name_;
  FILE* spool_ = nullptr;
  std::unique_ptr<char[]> buffer_;
  size_t begin_ = 0, end_ = 0;
  bool eof_ = false;
  bool skipping_ = false;
  bool cut_final_line_ = false;
  bool gzip_truncated_ = false;
  uint64_t bytes_ = 0;
};

// One input of the capture, reopenable for the second pass.
struct CaptureInput {
  std::string name;
  absl::string_view text;  // In-memory input.
  bool in_memory = false;
  bool is_stdin = false;
  FILE* spool = nullptr;   // stdin copy for pass 2 (owned).
  bool trace_dat = false;  // A trace-cmd trace.dat (detected by its magic).
};

// True when the file at `path` starts with the trace.dat magic.
bool FileIsTraceDat(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char head[16];
  size_t n = fread(head, 1, sizeof(head), f);
  fclose(f);
  return HasTraceDatMagic(absl::string_view(head, n));
}

absl::StatusOr<std::unique_ptr<LineReader>> OpenInput(CaptureInput& in, int pass) {
  if (in.in_memory) return std::make_unique<LineReader>(in.text, in.name);
  gzFile f = nullptr;
  FILE* spool = nullptr;
  if (in.is_stdin) {
    if (pass == 1) {
      in.spool = tmpfile();
      if (in.spool == nullptr) {
        return absl::InternalError(
            absl::StrCat("cannot create a temporary file for stdin: ", strerror(errno)));
      }
      spool = in.spool;
      int fd = dup(STDIN_FILENO);
      if (fd >= 0) f = gzdopen(fd, "rb");
    } else {
      fflush(in.spool);
      int fd = dup(fileno(in.spool));
      if (fd >= 0 && lseek(fd, 0, SEEK_SET) == 0) f = gzdopen(fd, "rb");
    }
  } else {
    f = gzopen(in.name.c_str(), "rb");
  }
  if (f == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(in.name, ": cannot open: ", errno ? strerror(errno) : "zlib error"));
  }
  gzbuffer(f, 256 * 1024);
  return std::make_unique<LineReader>(f, in.name, spool);
}

std::string Hex(uint64_t v) { return absl::StrFormat("0x%x", v); }

// --- Pass 1: statistics and first reads -----------------------------------------------------

class StatsSink : public ExitEventSink {
 public:
  explicit StatsSink(ImportSummary* s) : s_(s) {}
  // Name of the input being read, for the "highest vCPU first seen at" note.
  void set_input(const std::string* name) { input_ = name; }

  absl::Status OnEvent(const ExitEvent& e, uint64_t line) override {
    const bool write = MsrAccessOf(e.exit) == Access::kWrite;
    const bool gp = e.kind == RecordedKind::kGpInjected;
    if (e.vcpu_id >= s_->per_vcpu.size()) {
      s_->max_vcpu_id = e.vcpu_id;
      s_->max_vcpu_where = absl::StrCat(input_ != nullptr ? *input_ : "input", ":", line);
      size_t old = s_->per_vcpu.size();
      s_->per_vcpu.resize(e.vcpu_id + 1);
      for (size_t i = old; i < s_->per_vcpu.size(); ++i) s_->per_vcpu[i].id = i;
    }
    VcpuSummary& v = s_->per_vcpu[e.vcpu_id];
    (write ? v.writes : v.reads)++;
    // A RIP above 4 GiB only exists in 64-bit mode (SDM Vol1 §3.5: outside 64-bit mode RIP is
    // EIP, 32 bits).
    if ((e.known & kFieldRip) && (e.rip >> 32) != 0) v.long_mode = true;
    if ((e.known & kFieldRipOut) && (e.rip_out >> 32) != 0) v.long_mode = true;
    if (gp) ++v.faults;

    uint32_t index = e.index();
    auto it = msr_pos_.find(index);
    MsrSummary* m = nullptr;
    if (it != msr_pos_.end()) {
      m = &s_->per_msr[it->second];
    } else if (s_->per_msr.size() < kMaxMsrs) {
      msr_pos_.emplace(index, s_->per_msr.size());
      s_->per_msr.emplace_back();
      m = &s_->per_msr.back();
      m->index = index;
      m->volatile_value = e.volatile_value;
    }
    if (m == nullptr) {
      ++s_->msrs_overflow_events;
    } else {
      (write ? m->writes : m->reads)++;
      if (gp) ++m->faults;
    }

    // Inference: the first access of (vCPU, MSR) decides. A retired read first tells the value
    // production had before the capture; a write or a faulting read first tells nothing.
    uint64_t key = (uint64_t{e.vcpu_id} << 32) | index;
    if (first_seen_.size() < kMaxFirstReads && first_seen_.find(key) == first_seen_.end()) {
      first_seen_.emplace(key, true);
      if (!write && !gp) {
        InferredValue iv;
        iv.vcpu = e.vcpu_id;
        iv.index = index;
        iv.value = (e.rdx_out << 32) | (e.rax_out & 0xffffffffull);
        iv.line = line;
        iv.status =
            e.volatile_value ? InferredValue::Status::kVolatile : InferredValue::Status::kApplied;
        s_->inferred.push_back(iv);
      }
    }
    return absl::OkStatus();
  }

 private:
  ImportSummary* s_;
  const std::string* input_ = nullptr;
  absl::flat_hash_map<uint32_t, size_t> msr_pos_;
  absl::flat_hash_map<uint64_t, bool> first_seen_;
};

// --- Pass 2: write and compare ----------------------------------------------------------

// The comparison runs every event through the exit-checking engine (harness/replay/exit_check.h)
// with the recording's outcome as the expectation; its divergences become the summary's per-MSR
// disagreement categories. Architectural checks are off: the question here is whether the
// handler set agrees with production, not whether the engine is sound (replay and the fuzzers
// check that).
class WriteCompareSink : public ExitEventSink, private DivergenceSink {
 public:
  WriteCompareSink(const ImportConfig& config, ImportSummary* s, Machine* machine,
                   TraceWriter* writer)
      : config_(config),
        s_(s),
        machine_(machine),
        writer_(writer),
        engine_(machine != nullptr ? machine->controller.get() : nullptr),
        checker_(machine, &engine_, this, CheckOptions()) {
    for (size_t i = 0; i < s_->per_msr.size(); ++i) msr_pos_.emplace(s_->per_msr[i].index, i);
    checker_.BeginRun();
  }

  absl::Status OnEvent(const ExitEvent& event, uint64_t line) override {
    const ExitEvent* ep = &event;
    Controller* controller = machine_ != nullptr ? machine_->controller.get() : nullptr;
    if (controller != nullptr && config_.unknown_msr_policy == UnknownMsrPolicy::kIgnore &&
        event.kind == RecordedKind::kRetired && controller->Find(event.index()) == nullptr) {
      // Inferred: production accepted an MSR the handler set does not have, and the chosen
      // policy says unknown MSRs are ignored (KVM ignore_msrs=1): record it as ignored.
      ignored_ = event;
      ignored_.kind = RecordedKind::kIgnored;
      ep = &ignored_;
    }
    const ExitEvent& e = *ep;
    if (writer_ != nullptr) {
      absl::Status st = writer_->Append(e);
      if (!st.ok()) {
        return absl::Status(st.code(), absl::StrCat(config_.output, ": ", st.message()));
      }
    }
    if (controller == nullptr || !config_.compare) return absl::OkStatus();
    if (machine_->FindVcpu(e.vcpu_id) == nullptr) return absl::OkStatus();  // Pass 1 sized.
    outcome_diverged_ = value_diverged_ = false;
    RETURN_IF_ERROR(checker_.Run(e));
    const Access access = checker_.access();
    const absl::StatusOr<Outcome>& out = checker_.result();
    const bool prod_gp = e.kind == RecordedKind::kGpInjected;
    auto it = msr_pos_.find(e.index());
    MsrSummary* m = it == msr_pos_.end() ? nullptr : &s_->per_msr[it->second];
    std::string what;
    if (!out.ok()) {
      if (m) ++m->vmm_errors;
      what = absl::StrCat(AccessName(access), " ", Hex(e.index()), ": production ",
                          prod_gp ? "#GP" : "ok", ", here VMM error: ", out.status().message());
    } else if (outcome_diverged_) {
      const bool here_gp = out->kind == Outcome::Kind::kGpInjected;
      const std::string value =
          access == Access::kWrite ? absl::StrCat(" value ", Hex(out->value)) : std::string();
      if (prod_gp && !here_gp) {
        if (m) ++m->gp_production_only;
        what = absl::StrCat(AccessName(access), " ", Hex(e.index()), value,
                            ": #GP in production, not here");
      } else if (!prod_gp && here_gp) {
        if (m) ++m->gp_here_only;
        what = absl::StrCat(AccessName(access), " ", Hex(e.index()), value,
                            ": #GP here, not in production");
      }
    } else if (value_diverged_ && access == Access::kRead) {
      if (m) ++m->value_differs;
      const uint64_t prod = (e.rdx_out << 32) | (e.rax_out & 0xffffffffull);
      what = absl::StrCat("rdmsr ", Hex(e.index()), ": production read ", Hex(prod), ", here ",
                          Hex(out->value));
    }
    if (!what.empty()) {
      ++s_->events_disagree;
      if (s_->disagreements.size() < config_.max_disagreement_details) {
        s_->disagreements.push_back({line, e.seq, e.vcpu_id, e.index(), std::move(what)});
      }
    }
    return absl::OkStatus();
  }

 private:
  static ExitCheckOptions CheckOptions() {
    ExitCheckOptions o;
    o.check_architecture = false;
    o.volatile_policy = VolatilePolicy::kAuto;  // Imports know no environment: kind only.
    return o;
  }
  // Only the kinds the summary has categories for; no details are formatted.
  Divergence* Add(DivergenceKind kind) override {
    if (kind == DivergenceKind::kOutcome) outcome_diverged_ = true;
    if (kind == DivergenceKind::kValue) value_diverged_ = true;
    return nullptr;
  }

  const ImportConfig& config_;
  ImportSummary* s_;
  Machine* machine_;
  TraceWriter* writer_;
  ControllerEngine engine_;
  ExitChecker checker_;
  absl::flat_hash_map<uint32_t, size_t> msr_pos_;
  ExitEvent ignored_;  // Reused copy for events recorded as ignored.
  bool outcome_diverged_ = false;
  bool value_diverged_ = false;
};

// --- Passes -----------------------------------------------------------------------------

constexpr size_t kMaxGapNotes = 20;

// Handles one parsed line (or trace.dat record) of a pass: counting, --strict, gaps, assembly.
class LineHandler {
 public:
  LineHandler(int pass, const ImportConfig& config, ImportSummary* s, Assembler* assembler)
      : pass_(pass), config_(config), s_(s), assembler_(assembler) {}

  // `unit` prefixes the number in messages: "" for text lines, "record " for trace.dat.
  absl::Status OnLine(const std::string& file, const char* unit, uint64_t line_no, LineStatus st,
                      const ParsedLine& parsed, const LineError& error) {
    if (st == LineStatus::kSkip) {
      if (pass_ == 1) ++s_->skipped_lines;
      return absl::OkStatus();
    }
    if (st == LineStatus::kBad) {
      if (pass_ != 1) return absl::OkStatus();
      ++s_->bad_lines;
      if (config_.strict) {
        return absl::InvalidArgumentError(
            absl::StrCat(file, ":", unit, line_no, ":", error.column + 1, ": ", error.what));
      }
      if (s_->first_bad_lines.size() < config_.max_reported_bad_lines) {
        s_->first_bad_lines.push_back({file, line_no, error.column, error.what});
        if (config_.diagnostics != nullptr) {
          *config_.diagnostics << file << ":" << unit << line_no << ":" << error.column + 1
                               << ": skipped bad line: " << error.what << "\n";
        }
      }
      return absl::OkStatus();
    }
    if (st == LineStatus::kLost) {
      if (pass_ == 1) {
        ++s_->gap_markers;
        if (s_->first_gaps.size() < kMaxGapNotes) {
          s_->first_gaps.push_back(
              absl::StrCat(file, ":", unit, line_no, ": CPU ", parsed.cpu, " lost ",
                           parsed.lost == UINT64_MAX ? std::string("an unknown number of")
                                                     : absl::StrCat(parsed.lost),
                           " events"));
        }
      }
      return Wrap(file, unit, line_no, assembler_->Gap(parsed.cpu, parsed.lost));
    }
    if (pass_ == 1) {
      ++s_->lines_by_rendering[static_cast<int>(parsed.rendering)];
      if (parsed.shapes != 0) {
        for (int b = 0; b < kNumShapes; ++b) {
          if (parsed.shapes & (1u << b)) ++s_->lines_by_shape[b];
        }
        const uint16_t tolerated = parsed.shapes & kToleratedShapes;
        if (config_.strict && tolerated != 0) {
          uint16_t bit = tolerated & static_cast<uint16_t>(-tolerated);
          return absl::InvalidArgumentError(
              absl::StrCat(file, ":", unit, line_no, ": --strict: a tolerated line shape (",
                           ShapeName(bit), "); without --strict it is imported and counted"));
        }
      }
      if (parsed.flags_width != 0) s_->flags_widths |= 1u << parsed.flags_width;
      if (prev_rendering_ != Rendering::kUnknown && parsed.rendering != prev_rendering_) {
        if (s_->format_changes++ == 0) {
          s_->first_format_change =
              absl::StrCat(file, ":", unit, line_no, ": ", RenderingName(prev_rendering_), " -> ",
                           RenderingName(parsed.rendering));
        }
      }
      prev_rendering_ = parsed.rendering;
      if (parsed.type == EventType::kOther) {
        ++s_->other_events;
        std::string name(parsed.event_name.empty() ? "(other system)" : parsed.event_name);
        auto it = other_pos_.find(name);
        if (it != other_pos_.end()) {
          ++s_->other_event_names[it->second].second;
        } else if (s_->other_event_names.size() < kMaxOtherNames) {
          other_pos_.emplace(name, s_->other_event_names.size());
          s_->other_event_names.emplace_back(std::move(name), 1);
        }
      } else {
        ++s_->kvm_lines;
      }
    }
    if (parsed.type == EventType::kOther) return absl::OkStatus();
    absl::Status st_feed = assembler_->Feed(parsed, line_no);
    if (ABSL_PREDICT_FALSE(!st_feed.ok())) return Wrap(file, unit, line_no, st_feed);
    return absl::OkStatus();
  }

  void NewInput() { prev_rendering_ = Rendering::kUnknown; }

 private:
  static absl::Status Wrap(const std::string& file, const char* unit, uint64_t line_no,
                           absl::Status st) {
    if (st.ok()) return st;
    return absl::Status(st.code(), absl::StrCat(file, ":", unit, line_no, ": ", st.message()));
  }

  int pass_;
  const ImportConfig& config_;
  ImportSummary* s_;
  Assembler* assembler_;
  Rendering prev_rendering_ = Rendering::kUnknown;
  absl::flat_hash_map<std::string, size_t> other_pos_;
};

absl::Status RunPass(int pass, std::vector<CaptureInput>& inputs, const ImportConfig& config,
                     const VolatileMsrSet* volatile_msrs, ExitEventSink* sink, ImportSummary* s,
                     StatsSink* stats) {
  AssemblerOptions aopt;
  aopt.default_vendor = config.default_vendor;
  aopt.volatile_msrs = volatile_msrs;
  Assembler assembler(aopt, sink);
  LineHandler handler(pass, config, s, &assembler);
  ParsedLine parsed;
  LineError error;
  uint64_t next_progress = kProgressEvery;
  uint64_t total_bytes = 0;
  for (CaptureInput& in : inputs) {
    if (stats != nullptr) stats->set_input(&in.name);
    handler.NewInput();
    if (in.trace_dat) {
      uint64_t bytes = 0;
      RETURN_IF_ERROR(ReadTraceDat(
          in.name,
          [&](uint64_t ordinal, LineStatus st, const ParsedLine& p, const LineError& e) {
            if (pass == 1) ++s->lines;
            return handler.OnLine(in.name, "record ", ordinal, st, p, e);
          },
          &bytes));
      total_bytes += bytes;
      continue;
    }
    ASSIGN_OR_RETURN(std::unique_ptr<LineReader> reader, OpenInput(in, pass));
    uint64_t line_no = 0;
    absl::string_view line;
    bool too_long = false;
    while (true) {
      ASSIGN_OR_RETURN(bool more, reader->Next(&line, &too_long));
      if (!more) break;
      ++line_no;
      LineStatus st;
      if (too_long) {
        st = LineStatus::kBad;
        error.what = "line longer than 1 MiB";
        error.column = kBufferSize;
      } else {
        st = ParseLine(line, &parsed, &error);
      }
      if (pass == 1) {
        ++s->lines;
        if (config.progress && config.diagnostics != nullptr &&
            total_bytes + reader->bytes() >= next_progress) {
          next_progress += kProgressEvery;
          *config.diagnostics << "\rimport: " << (total_bytes + reader->bytes()) / (1 << 20)
                              << " MiB, " << s->lines << " lines" << std::flush;
        }
      }
      RETURN_IF_ERROR(handler.OnLine(in.name, "", line_no, st, parsed, error));
    }
    if (reader->cut_final_line() || reader->gzip_truncated()) {
      std::string what;
      if (reader->gzip_truncated()) {
        what = absl::StrCat(
            "the gzip stream is cut (it ends before its end-of-stream marker "
            "and trailer) after ",
            reader->bytes(), " bytes of text");
      }
      if (reader->cut_final_line()) {
        absl::StrAppend(&what, what.empty() ? "" : "; ", "line ", line_no + 1,
                        ", the last, has no newline (cut)");
      }
      if (!config.accept_truncated) {
        return absl::DataLossError(absl::StrCat(
            in.name, ": truncated capture: ", what,
            "; --accept-truncated imports the events before the cut and labels the trace "
            "truncated"));
      }
      if (pass == 1) {
        s->truncated = true;
        absl::StrAppend(&s->truncation, s->truncation.empty() ? "" : "; ", in.name, ": ", what,
                        reader->cut_final_line() ? " (dropped)" : "");
      }
    }
    total_bytes += reader->bytes();
  }
  RETURN_IF_ERROR(assembler.Finish());
  if (pass == 1) {
    s->bytes = total_bytes;
    s->assembler = assembler.stats();
    s->events = assembler.stats().events;
    s->vcpu_count = assembler.vcpu_count();
    if (config.progress && config.diagnostics != nullptr && total_bytes >= kProgressEvery) {
      *config.diagnostics << "\n";
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ImportSummary> Import(std::vector<CaptureInput>& inputs,
                                     const ImportConfig& config) {
  ImportSummary s;
  VolatileMsrSet builtin;
  const VolatileMsrSet* volatile_msrs = config.volatile_msrs;
  if (volatile_msrs == nullptr) {
    builtin = VolatileMsrSet::Builtin();
    volatile_msrs = &builtin;
  }
  {
    StatsSink stats(&s);
    RETURN_IF_ERROR(RunPass(1, inputs, config, volatile_msrs, &stats, &s, &stats));
  }
  uint64_t best = 0;
  for (int r = 1; r < kNumRenderings; ++r) {
    if (s.lines_by_rendering[r] > best) {
      best = s.lines_by_rendering[r];
      s.rendering = static_cast<Rendering>(r);
    }
  }
  std::sort(s.per_msr.begin(), s.per_msr.end(),
            [](const MsrSummary& a, const MsrSummary& b) { return a.index < b.index; });
  if (s.vcpu_count > s.per_vcpu.size()) s.per_vcpu.resize(s.vcpu_count);
  if (!config.output.empty() && s.events == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        inputs.empty() ? std::string("input") : inputs.front().name, ": no MSR events found (",
        s.lines, " lines, ", s.bad_lines, " bad); nothing to import"));
  }

  // Build the machine and apply the inferred initial values.
  ControllerOptions copt;
  copt.unknown_msr_policy = config.unknown_msr_policy;
  Machine machine;
  machine.controller = std::make_unique<Controller>(copt);
  Controller& controller = *machine.controller;
  std::vector<Vcpu>& vcpus = machine.vcpus;
  SparseMemory& memory = machine.memory;
  bool have_handlers = static_cast<bool>(config.install);
  if (have_handlers) {
    absl::Status st = config.install(controller);
    if (!st.ok()) {
      return absl::Status(st.code(), absl::StrCat("installing handler set '",
                                                  config.handler_set_name, "': ", st.message()));
    }
  }
  uint32_t nvcpu = std::max<uint32_t>(s.vcpu_count, 1);
  vcpus.reserve(nvcpu);
  for (uint32_t i = 0; i < nvcpu; ++i) {
    vcpus.push_back(controller.CreateVcpu(i));
    if (i < s.per_vcpu.size() && s.per_vcpu[i].long_mode) {
      // Inferred: the capture shows 64-bit RIPs, so the vCPU ran with paging in IA-32e mode
      // (CR0.PE|PG, CR4.PAE, EFER.LME|LMA, CS.L). Handlers that check the mode (EFER writes,
      // RIP wrap) then see what production saw. An inferred EFER value is applied below.
      VcpuRegs& r = vcpus.back().regs;
      r.cr0 = 0x80050033;  // PE|MP|ET|NE|WP|AM|PG, as Linux sets it.
      r.cr4 |= kCr4Pae;
      r.efer |= kEferLme | kEferLma;
      r.cs_l = true;
    }
  }

  absl::flat_hash_map<uint32_t, size_t> msr_pos;
  for (size_t i = 0; i < s.per_msr.size(); ++i) {
    MsrSummary& m = s.per_msr[i];
    msr_pos.emplace(m.index, i);
    m.handled = have_handlers && controller.Find(m.index) != nullptr;
    m.name = controller.MsrName(m.index);
  }
  for (InferredValue& iv : s.inferred) {
    auto it = msr_pos.find(iv.index);
    if (it != msr_pos.end()) s.per_msr[it->second].inferred = true;
    if (iv.status == InferredValue::Status::kVolatile) continue;
    if (!have_handlers) {
      iv.status = InferredValue::Status::kNoHandlers;
      continue;
    }
    if (controller.Find(iv.index) == nullptr) {
      iv.status = InferredValue::Status::kUnknownMsr;
      continue;
    }
    absl::Status st = controller.HostWrite(iv.index, iv.value, vcpus[iv.vcpu], memory);
    if (!st.ok()) {
      iv.status = InferredValue::Status::kRejected;
      iv.note = static_cast<std::string>(st.message());
    }
  }

  std::unique_ptr<TraceWriter> writer;
  if (!config.output.empty()) {
    TraceHeader header;
    header.producer = absl::StrCat("msrtrace import (", RenderingName(s.rendering), ")");
    header.cpu_profile = config.profile_name;
    header.unknown_msr_policy = config.unknown_msr_policy;
    header.vcpu_count = nvcpu;
    header.handler_set = config.handler_set_name;
    for (const CaptureInput& in : inputs) header.labels.emplace_back("import.source", in.name);
    header.labels.emplace_back("import.rendering", RenderingName(s.rendering));
    for (const VcpuSummary& v : s.per_vcpu) {
      if (v.long_mode) {
        header.labels.emplace_back(absl::StrFormat("inferred.mode.%u", v.id),
                                   "64-bit (RIP above 4 GiB in the capture)");
      }
    }
    for (const InferredValue& iv : s.inferred) {
      std::string what;
      switch (iv.status) {
        case InferredValue::Status::kApplied:
          what = "inferred.msr";
          break;
        case InferredValue::Status::kVolatile:
          what = "inferred.volatile";
          break;
        case InferredValue::Status::kUnknownMsr:
          what = "inferred.unknown";
          break;
        case InferredValue::Status::kRejected:
          what = "inferred.rejected";
          break;
        case InferredValue::Status::kNoHandlers:
          what = "inferred.unapplied";
          break;
      }
      header.labels.emplace_back(absl::StrFormat("%s.%u.0x%x", what, iv.vcpu, iv.index),
                                 absl::StrFormat("0x%x (first read, line %u)%s%s", iv.value,
                                                 iv.line, iv.note.empty() ? "" : ": ", iv.note));
    }
    for (const MsrSummary& m : s.per_msr) {
      if (!m.handled) header.labels.emplace_back("unknown.msr", absl::StrFormat("0x%x", m.index));
    }
    if (s.truncated) header.labels.emplace_back("import.truncated", s.truncation);
    if (s.assembler.gaps > 0) {
      header.labels.emplace_back(
          "import.gaps",
          absl::StrFormat("%u lost-events markers: %u events lost (known counts), %u markers "
                          "without a count; %u events carry lost_before",
                          s.assembler.gaps, s.assembler.events_lost, s.assembler.gaps_unknown,
                          s.assembler.events_after_gap));
    }
    for (int b = 0; b < kNumShapes; ++b) {
      if (s.lines_by_shape[b] != 0 && ((1u << b) & kToleratedShapes) != 0) {
        header.labels.emplace_back(absl::StrCat("import.shape.", ShapeName(1u << b)),
                                   absl::StrCat(s.lines_by_shape[b], " lines"));
      }
    }
    Snapshot snapshot = CaptureSnapshot(controller, vcpus, memory);
    absl::StatusOr<std::unique_ptr<TraceWriter>> created =
        TraceWriter::Create(config.output, header, snapshot);
    if (!created.ok()) {
      return absl::Status(
          created.status().code(),
          absl::StrCat(config.output, ": cannot write the trace for ", nvcpu,
                       " vCPU(s) (highest vCPU id ", s.max_vcpu_id,
                       s.max_vcpu_where.empty()
                           ? std::string()
                           : absl::StrCat(", first seen at ", s.max_vcpu_where),
                       s.assembler.vcpu_from_thread > 0 ? "; ids assigned per thread" : "",
                       "): ", created.status().message()));
    }
    writer = std::move(*created);
    s.output = config.output;
  }

  {
    WriteCompareSink sink(config, &s, have_handlers ? &machine : nullptr, writer.get());
    if (writer != nullptr || (have_handlers && config.compare)) {
      RETURN_IF_ERROR(RunPass(2, inputs, config, volatile_msrs, &sink, &s, nullptr));
    }
  }
  if (writer != nullptr) {
    s.events_written = writer->events_written();
    absl::Status st = writer->Close(0);
    if (!st.ok()) {
      return absl::Status(st.code(), absl::StrCat(config.output, ": ", st.message()));
    }
  }
  if (have_handlers && config.compare) {
    s.compared = true;
    s.msrs_total = s.per_msr.size();
    for (const MsrSummary& m : s.per_msr) {
      if (m.handled) {
        ++s.msrs_handled;
        if (m.disagreements() > 0) ++s.msrs_disagree;
      }
    }
  }
  return s;
}

void CloseSpools(std::vector<CaptureInput>& inputs) {
  for (CaptureInput& in : inputs) {
    if (in.spool != nullptr) fclose(in.spool);
    in.spool = nullptr;
  }
}

}  // namespace

const char* InferredStatusName(InferredValue::Status s) {
  switch (s) {
    case InferredValue::Status::kApplied:
      return "applied";
    case InferredValue::Status::kVolatile:
      return "volatile-not-applied";
    case InferredValue::Status::kUnknownMsr:
      return "unknown-msr";
    case InferredValue::Status::kRejected:
      return "rejected";
    case InferredValue::Status::kNoHandlers:
      return "no-handlers";
  }
  return "?";
}

absl::StatusOr<ImportSummary> ImportCapture(const ImportConfig& config) {
  if (config.inputs.empty()) return absl::InvalidArgumentError("no input given");
  std::vector<CaptureInput> inputs;
  int stdin_count = 0;
  for (const std::string& path : config.inputs) {
    CaptureInput in;
    in.name = path == "-" ? "<stdin>" : path;
    in.is_stdin = path == "-";
    in.trace_dat = !in.is_stdin && FileIsTraceDat(path);
    stdin_count += in.is_stdin;
    inputs.push_back(std::move(in));
  }
  if (stdin_count > 1) return absl::InvalidArgumentError("stdin ('-') given more than once");
  absl::StatusOr<ImportSummary> s = Import(inputs, config);
  CloseSpools(inputs);
  return s;
}

absl::StatusOr<ImportSummary> ImportFromBuffer(absl::string_view text, const ImportConfig& config,
                                               absl::string_view name) {
  std::vector<CaptureInput> inputs(1);
  inputs[0].name = static_cast<std::string>(name);
  inputs[0].text = text;
  inputs[0].in_memory = true;
  return Import(inputs, config);
}

std::string FormatSummaryText(const ImportSummary& s) {
  std::string out;
  absl::StrAppendFormat(&out, "rendering: %s\n", RenderingName(s.rendering));
  absl::StrAppendFormat(&out,
                        "lines: %u (%u KVM, %u other events skipped, %u headers/blank, %u bad)\n",
                        s.lines, s.kvm_lines, s.other_events, s.skipped_lines, s.bad_lines);
  {
    std::string shapes;
    for (int r = 1; r < kNumRenderings; ++r) {
      if (s.lines_by_rendering[r] == 0) continue;
      absl::StrAppend(&shapes, shapes.empty() ? "" : ", ", RenderingName(static_cast<Rendering>(r)),
                      " ", s.lines_by_rendering[r]);
    }
    for (int b = 0; b < kNumShapes; ++b) {
      if (s.lines_by_shape[b] == 0) continue;
      const uint16_t bit = static_cast<uint16_t>(1u << b);
      absl::StrAppend(&shapes, shapes.empty() ? "" : ", ", ShapeName(bit), " ", s.lines_by_shape[b],
                      bit == kShapeTrailingText ? " (text after the event ignored)" : "",
                      (bit & kToleratedShapes) != 0 ? " [tolerated]" : "");
    }
    if (!shapes.empty()) absl::StrAppend(&out, "shapes: ", shapes, "\n");
    std::string widths;
    for (int w = 1; w <= 8; ++w) {
      if (s.flags_widths & (1u << w)) absl::StrAppend(&widths, widths.empty() ? "" : ", ", w);
    }
    if (!widths.empty()) absl::StrAppend(&out, "flags column widths: ", widths, "\n");
    if (s.format_changes > 0) {
      absl::StrAppendFormat(&out, "format changes: %u (first at %s)\n", s.format_changes,
                            s.first_format_change);
    }
  }
  if (s.assembler.gaps > 0) {
    absl::StrAppendFormat(&out,
                          "gaps: %u lost-events markers, %u events lost (known counts), %u of "
                          "unknown size; %u events after a gap carry lost_before\n",
                          s.assembler.gaps, s.assembler.events_lost, s.assembler.gaps_unknown,
                          s.assembler.events_after_gap);
    for (const std::string& g : s.first_gaps) absl::StrAppend(&out, "  ", g, "\n");
  }
  if (s.truncated) absl::StrAppend(&out, "truncated: ", s.truncation, "\n");
  absl::StrAppendFormat(&out, "events: %u MSR accesses on %u vCPU(s)", s.events, s.vcpu_count);
  if (s.assembler.vcpu_from_thread > 0) {
    absl::StrAppendFormat(&out, " (%u with vCPU ids assigned per thread)",
                          s.assembler.vcpu_from_thread);
  }
  absl::StrAppendFormat(&out, "; instruction length known for %u\n",
                        s.assembler.instr_length_known);
  if (s.assembler.msr_exits_without_kvm_msr || s.assembler.access_mismatch) {
    absl::StrAppendFormat(&out,
                          "unmatched: %u MSR exits without kvm_msr, %u direction mismatches\n",
                          s.assembler.msr_exits_without_kvm_msr, s.assembler.access_mismatch);
  }
  if (s.compared) {
    absl::StrAppendFormat(&out, "coverage: %u of %u production MSRs handled, %u disagree\n",
                          s.msrs_handled, s.msrs_total, s.msrs_disagree);
  }
  out += "per vCPU:\n";
  for (const VcpuSummary& v : s.per_vcpu) {
    absl::StrAppendFormat(&out, "  vcpu %u: %u reads, %u writes, %u #GP%s\n", v.id, v.reads,
                          v.writes, v.faults, v.long_mode ? " (64-bit mode inferred)" : "");
  }
  out += "per MSR:\n";
  for (const MsrSummary& m : s.per_msr) {
    absl::StrAppendFormat(&out, "  0x%08x %-28s %6u reads %6u writes %6u #GP  %s%s%s", m.index,
                          m.name, m.reads, m.writes, m.faults,
                          !s.compared ? "" : (m.handled ? "handled" : "NOT HANDLED"),
                          m.volatile_value ? " volatile" : "", m.inferred ? " inferred" : "");
    if (s.compared && m.disagreements() > 0) {
      absl::StrAppendFormat(&out,
                            "  DISAGREE: %u #GP-in-production-only, %u #GP-here-only, "
                            "%u value, %u vmm-error",
                            m.gp_production_only, m.gp_here_only, m.value_differs, m.vmm_errors);
    }
    out += "\n";
  }
  if (s.msrs_overflow_events > 0) {
    absl::StrAppendFormat(&out, "  (%u events of further MSRs not tabulated)\n",
                          s.msrs_overflow_events);
  }
  if (!s.inferred.empty()) {
    out += "inferred initial values (first read before any write):\n";
    for (const InferredValue& iv : s.inferred) {
      absl::StrAppendFormat(&out, "  vcpu %u 0x%08x = 0x%x (line %u): %s%s%s\n", iv.vcpu, iv.index,
                            iv.value, iv.line, InferredStatusName(iv.status),
                            iv.note.empty() ? "" : ": ", iv.note);
    }
  }
  if (!s.disagreements.empty()) {
    absl::StrAppendFormat(&out, "disagreements (%u events, first %u):\n", s.events_disagree,
                          s.disagreements.size());
    for (const Disagreement& d : s.disagreements) {
      absl::StrAppendFormat(&out, "  line %u vcpu %u: %s\n", d.line, d.vcpu, d.what);
    }
  }
  if (!s.other_event_names.empty()) {
    out += "other events skipped:";
    for (const auto& [name, n] : s.other_event_names) absl::StrAppend(&out, " ", name, "=", n);
    out += "\n";
  }
  if (!s.output.empty()) {
    absl::StrAppendFormat(&out, "wrote %u events to %s\n", s.events_written, s.output);
  }
  return out;
}

report::ImportReport SummaryReport(const ImportSummary& s) {
  report::ImportReport o;
  o.set_rendering(RenderingName(s.rendering));
  o.set_bytes(s.bytes);
  o.set_lines(s.lines);
  o.set_kvm_lines(s.kvm_lines);
  o.set_other_events(s.other_events);
  o.set_skipped_lines(s.skipped_lines);
  o.set_bad_lines(s.bad_lines);
  o.set_events(s.events);
  o.set_vcpu_count(s.vcpu_count);
  o.set_instr_length_known(s.assembler.instr_length_known);
  o.set_vcpu_from_thread(s.assembler.vcpu_from_thread);
  o.set_msr_exits_without_kvm_msr(s.assembler.msr_exits_without_kvm_msr);
  for (int r = 1; r < kNumRenderings; ++r) {
    (*o.mutable_lines_by_rendering())[RenderingName(static_cast<Rendering>(r))] =
        s.lines_by_rendering[r];
  }
  for (int b = 0; b < kNumShapes; ++b) {
    (*o.mutable_lines_by_shape())[ShapeName(static_cast<uint16_t>(1u << b))] = s.lines_by_shape[b];
  }
  for (uint32_t w = 1; w <= 8; ++w) {
    if (s.flags_widths & (1u << w)) o.add_flags_widths(w);
  }
  o.set_format_changes(s.format_changes);
  o.set_first_format_change(ValidUtf8(s.first_format_change));
  report::ImportGaps* gaps = o.mutable_gaps();
  gaps->set_markers(s.assembler.gaps);
  gaps->set_events_lost(s.assembler.events_lost);
  gaps->set_unknown_size(s.assembler.gaps_unknown);
  gaps->set_events_after_gap(s.assembler.events_after_gap);
  o.set_truncated(s.truncated);
  o.set_truncation(ValidUtf8(s.truncation));
  for (const BadLine& b : s.first_bad_lines) {
    report::ImportBadLine* p = o.add_bad();
    p->set_file(ValidUtf8(b.file));
    p->set_line(b.line);
    p->set_column(b.column + 1);
    p->set_what(ValidUtf8(b.what));
  }
  for (const VcpuSummary& v : s.per_vcpu) {
    report::ImportVcpu* p = o.add_per_vcpu();
    p->set_id(v.id);
    p->set_reads(v.reads);
    p->set_writes(v.writes);
    p->set_faults(v.faults);
    p->set_long_mode_inferred(v.long_mode);
  }
  for (const MsrSummary& m : s.per_msr) {
    report::ImportMsr* p = o.add_per_msr();
    p->set_index(Hex(m.index));
    p->set_name(ValidUtf8(m.name));
    p->set_reads(m.reads);
    p->set_writes(m.writes);
    p->set_faults(m.faults);
    p->set_volatile_(m.volatile_value);
    p->set_inferred(m.inferred);
    if (s.compared) {
      p->set_handled(m.handled);
      p->set_gp_production_only(m.gp_production_only);
      p->set_gp_here_only(m.gp_here_only);
      p->set_value_differs(m.value_differs);
      p->set_vmm_errors(m.vmm_errors);
    }
  }
  for (const InferredValue& iv : s.inferred) {
    report::ImportInferred* p = o.add_inferred();
    p->set_vcpu(iv.vcpu);
    p->set_index(Hex(iv.index));
    p->set_value(Hex(iv.value));
    p->set_line(iv.line);
    p->set_status(InferredStatusName(iv.status));
    p->set_note(ValidUtf8(iv.note));
  }
  if (s.compared) {
    report::ImportCoverage* c = o.mutable_coverage();
    c->set_msrs_total(s.msrs_total);
    c->set_msrs_handled(s.msrs_handled);
    c->set_msrs_disagree(s.msrs_disagree);
    c->set_events_disagree(s.events_disagree);
    for (const Disagreement& d : s.disagreements) {
      report::ImportDisagreement* p = o.add_disagreements();
      p->set_line(d.line);
      p->set_vcpu(d.vcpu);
      p->set_index(Hex(d.index));
      p->set_what(ValidUtf8(d.what));
    }
  }
  if (!s.output.empty()) {
    o.set_output(ValidUtf8(s.output));
    o.set_events_written(s.events_written);
  }
  return o;
}

}  // namespace importers
}  // namespace msrtrace
