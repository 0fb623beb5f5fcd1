// The text forms of a trace (text-format and JSON `Trace` messages), for hand-written traces and
// `msrtrace show/convert`. Declared in harness/trace/trace_text.h.
#include "harness/trace/trace_text.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "harness/core/status_macros.h"
#include "harness/trace/atomic_file.h"
#include "harness/trace/trace_file.h"
#include "harness/trace/trace_proto.h"

namespace msrtrace {
namespace {

// Largest text-format or JSON trace ReadTraceText accepts.
constexpr uint64_t kMaxTextInput = 256ull << 20;
constexpr size_t kIoBufferSize = 64 << 10;

absl::Status ErrnoError(absl::string_view path, absl::string_view what, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(path, ": ", what, ": ", strerror(err)));
}

// The comment closing the text form: how the trace ended, in words.
const char* EndComment(TraceEnd end) {
  switch (end) {
    case TraceEnd::kComplete:
      return "complete";
    case TraceEnd::kNoTrailer:
      return "no trailer (the writer did not finish)";
    case TraceEnd::kTornTail:
      return "torn tail (the last record is cut off)";
  }
  return "?";
}

// Prints 64-bit values (registers, addresses, MSR values, digests) in hex, which the text
// parser reads back; counters registered with DecimalPrinter stay decimal.
class HexPrinter : public google::protobuf::TextFormat::FastFieldValuePrinter {
 public:
  void PrintUInt64(uint64_t v, google::protobuf::TextFormat::BaseTextGenerator* g) const override {
    g->PrintString(absl::StrFormat("0x%x", v));
  }
};
class DecimalPrinter : public google::protobuf::TextFormat::FastFieldValuePrinter {};
// Bit masks among the 32-bit fields.
class HexU32Printer : public google::protobuf::TextFormat::FastFieldValuePrinter {
 public:
  void PrintUInt32(uint32_t v, google::protobuf::TextFormat::BaseTextGenerator* g) const override {
    g->PrintString(absl::StrFormat("0x%x", v));
  }
};

void SetUpPrinter(google::protobuf::TextFormat::Printer* printer) {
  printer->SetInitialIndentLevel(1);
  printer->SetUseShortRepeatedPrimitives(true);  // gpr: [0x0, 0x1, ...]
  printer->SetDefaultFieldValuePrinter(new HexPrinter);
  printer->RegisterFieldValuePrinter(proto::ExitEvent::descriptor()->FindFieldByName("seq"),
                                     new DecimalPrinter);
  printer->RegisterFieldValuePrinter(proto::Trailer::descriptor()->FindFieldByName("event_count"),
                                     new DecimalPrinter);
  printer->RegisterFieldValuePrinter(proto::ExitInfo::descriptor()->FindFieldByName("host_wall_ns"),
                                     new DecimalPrinter);
  printer->RegisterFieldValuePrinter(proto::ExitEvent::descriptor()->FindFieldByName("known"),
                                     new HexU32Printer);
  printer->RegisterFieldValuePrinter(
      proto::ExitEvent::descriptor()->FindFieldByName("interruptibility"), new HexU32Printer);
  printer->RegisterFieldValuePrinter(
      proto::Registers::descriptor()->FindFieldByName("interruptibility"), new HexU32Printer);
}

// Writes to stdout ("-", checked writes) or atomically to a file (AtomicTarget: a failed
// conversion leaves an existing file untouched).
class TextOut {
 public:
  static absl::StatusOr<TextOut> Open(const std::string& path) {
    if (path == "-") return TextOut("<stdout>", 1, AtomicTarget());
    AtomicTarget target;
    ASSIGN_OR_RETURN(const int fd, target.Open(path));
    return TextOut(path, fd, std::move(target));
  }
  TextOut(TextOut&& o) noexcept
      : path_(std::move(o.path_)),
        fd_(o.fd_),
        target_(std::move(o.target_)),
        buf_(std::move(o.buf_)) {
    o.fd_ = -1;
  }
  ~TextOut() {
    if (fd_ > 1) close(fd_);
  }
  absl::Status Write(absl::string_view s) {
    buf_.append(s.data(), s.size());
    if (buf_.size() >= kIoBufferSize) return Drain();
    return absl::OkStatus();
  }
  absl::Status Close() {
    absl::Status s = Drain();
    if (fd_ > 1) {
      if (s.ok()) s = SyncIfRegular(fd_, path_);
      if (close(fd_) != 0 && s.ok()) s = ErrnoError(path_, "close failed", errno);
      fd_ = -1;
      if (s.ok()) s = target_.Commit();
    }
    return s;
  }

 private:
  TextOut(std::string path, int fd, AtomicTarget target)
      : path_(std::move(path)), fd_(fd), target_(std::move(target)) {}
  absl::Status Drain() {
    absl::Status s = WriteFully(fd_, buf_, path_);
    buf_.clear();
    return s;
  }
  std::string path_;
  int fd_;
  AtomicTarget target_;
  std::string buf_;
};

// Reads a whole file or stdin ("-"), refusing more than kMaxTextInput bytes.
absl::StatusOr<std::string> ReadTextInput(const std::string& path) {
  const int fd = path == "-" ? 0 : open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(path, "cannot open", errno);
  struct FdCloser {
    int fd;
    ~FdCloser() {
      if (fd > 0) close(fd);
    }
  } closer{fd};
  const std::string too_large =
      absl::StrFormat("%s: text trace is larger than the %u MiB limit", path, kMaxTextInput >> 20);
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<uint64_t>(st.st_size) > kMaxTextInput) {
    return absl::InvalidArgumentError(too_large);
  }
  std::string text;
  char chunk[kIoBufferSize];
  for (;;) {
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(path, "read failed", errno);
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > kMaxTextInput) {
      return absl::InvalidArgumentError(too_large);
    }
    text.append(chunk, static_cast<size_t>(n));
  }
  return text;
}

// Keeps the first text-format parse error as "path:line:column: message".
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  explicit FirstError(const std::string& path) : path_(path) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty()) {
      error_ = absl::StrFormat("%s:%d:%d: %s", path_, line + 1, column + 1, message);
    }
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
  const std::string& error() const { return error_; }

 private:
  const std::string& path_;
  std::string error_;
};

// Protobuf's JSON parser reports "message\n<input excerpt>\n<caret line>" without a line
// number; this keeps the message and the excerpt on one line.
std::string OneLine(absl::string_view message) {
  std::vector<absl::string_view> lines = absl::StrSplit(message, '\n');
  std::string out(lines.empty() ? message : lines[0]);
  std::string near;
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::string_view l = absl::StripAsciiWhitespace(lines[i]);
    if (l.empty() || l == "^") continue;
    if (!near.empty()) near += ' ';
    near.append(l.data(), l.size());
  }
  if (!near.empty()) absl::StrAppend(&out, " (near: ", near, ")");
  return out;
}

// The one printer of the text forms (set up once; Printer's printing is const).
const google::protobuf::TextFormat::Printer& TextPrinter() {
  static const google::protobuf::TextFormat::Printer* printer = [] {
    auto* p = new google::protobuf::TextFormat::Printer;
    SetUpPrinter(p);
    return p;
  }();
  return *printer;
}

}  // namespace

bool TraceMessageToText(const google::protobuf::Message& message, std::string* out) {
  return TextPrinter().PrintToString(message, out);
}

absl::Status WriteTraceText(const std::string& in_path, const std::string& out_path,
                            TraceTextFormat format) {
  ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> reader, TraceReader::Open(in_path));
  ASSIGN_OR_RETURN(TextOut out, TextOut::Open(out_path));
  const bool json = format == TraceTextFormat::kJson;
  const google::protobuf::TextFormat::Printer& printer = TextPrinter();
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.preserve_proto_field_names = true;
  std::string piece;
  // Prints one field of the Trace message; `first` is the first field printed.
  auto emit = [&](absl::string_view field, const google::protobuf::Message& m,
                  absl::string_view json_prefix) -> absl::Status {
    piece.clear();
    if (json) {
      const auto s = google::protobuf::util::MessageToJsonString(m, &piece, json_options);
      if (!s.ok()) return absl::InternalError(absl::StrCat(out_path, ": ", s.ToString()));
      RETURN_IF_ERROR(out.Write(json_prefix));
      return out.Write(piece);
    }
    if (!printer.PrintToString(m, &piece)) {
      return absl::InternalError(absl::StrCat(out_path, ": cannot print ", field));
    }
    RETURN_IF_ERROR(out.Write(absl::StrCat(field, " {\n")));
    RETURN_IF_ERROR(out.Write(piece));
    return out.Write("}\n");
  };

  if (!json) {
    RETURN_IF_ERROR(out.Write(
        absl::StrFormat("# proto-file: proto/trace.proto\n# proto-message: msrtrace.proto.Trace\n"
                        "# Converted from %s by msrtrace.\n",
                        in_path)));
  }
  {
    proto::TraceHeader h;
    ToProto(reader->header(), &h);
    RETURN_IF_ERROR(emit("header", h, "{\"header\": "));
  }
  {
    proto::Snapshot s;
    ToProto(reader->snapshot(), &s);
    s.clear_page_count();
    RETURN_IF_ERROR(emit("snapshot", s, ",\n \"snapshot\": "));
  }
  ExitEvent event;
  proto::ExitEvent pe;
  uint64_t n = 0;
  for (;;) {
    ASSIGN_OR_RETURN(const bool more, reader->Next(&event));
    if (!more) break;
    EventToTextProto(event, &pe);
    RETURN_IF_ERROR(emit("events", pe, n == 0 ? ",\n \"events\": [\n  " : ",\n  "));
    ++n;
  }
  if (json && n > 0) RETURN_IF_ERROR(out.Write("\n ]"));
  if (reader->end() == TraceEnd::kComplete) {
    proto::Trailer t;
    ToProto(reader->trailer(), &t);
    RETURN_IF_ERROR(emit("trailer", t, ",\n \"trailer\": "));
  }
  if (json) {
    RETURN_IF_ERROR(out.Write("}\n"));
  } else {
    RETURN_IF_ERROR(out.Write(absl::StrCat("# End: ", EndComment(reader->end()), ".\n")));
  }
  return out.Close();
}

absl::Status ReadTraceText(const std::string& in_path, const std::string& out_path) {
  ASSIGN_OR_RETURN(const std::string text, ReadTextInput(in_path));
  proto::Trace trace;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    const auto s = google::protobuf::util::JsonStringToMessage(text, &trace);
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(in_path, ": invalid JSON trace: ", OneLine(s.message().ToString())));
    }
  } else {
    google::protobuf::TextFormat::Parser parser;
    FirstError errors(in_path);
    parser.RecordErrorsTo(&errors);
    if (!parser.ParseFromString(text, &trace)) {
      return absl::InvalidArgumentError(
          errors.error().empty() ? absl::StrCat(in_path, ": invalid text trace") : errors.error());
    }
  }

  // Validate everything before creating the output.
  if (!trace.has_header()) return absl::InvalidArgumentError(absl::StrCat(in_path, ": no header"));
  absl::StatusOr<TraceHeader> header = FromProto(trace.header());
  if (!header.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(in_path, ": ", header.status().message()));
  }
  absl::StatusOr<Snapshot> snapshot = FromProto(trace.snapshot());
  if (!snapshot.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(in_path, ": ", snapshot.status().message()));
  }
  ExitEvent event;
  for (int i = 0; i < trace.events_size(); ++i) {
    absl::Status s = FromProto(trace.events(i), &event);
    if (s.ok() && i > 0 && event.seq <= trace.events(i - 1).seq()) {
      s = absl::InvalidArgumentError(absl::StrFormat(
          "seq %u is not greater than the previous seq %u", event.seq, trace.events(i - 1).seq()));
    }
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: events[%d] (seq %u): %s", in_path, i,
                                                        trace.events(i).seq(), s.message()));
    }
  }
  uint64_t digest = 0;
  if (trace.has_trailer()) {
    if (trace.trailer().event_count() != static_cast<uint64_t>(trace.events_size())) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: trailer.event_count is %u but the trace has %d events", in_path,
                          trace.trailer().event_count(), trace.events_size()));
    }
    digest = trace.trailer().final_state_digest();
  }

  // Host events make the output format 1.2, whatever version the text says.
  for (const proto::ExitEvent& pe : trace.events()) header->host_events |= pe.host_initiated();
  ASSIGN_OR_RETURN(std::unique_ptr<TraceWriter> writer,
                   TraceWriter::Create(out_path, *header, *snapshot));
  for (const proto::ExitEvent& pe : trace.events()) {
    RETURN_IF_ERROR(FromProto(pe, &event));
    RETURN_IF_ERROR(writer->Append(event));
  }
  return writer->Close(digest);
}

void EventToTextProto(const ExitEvent& event, proto::ExitEvent* out) {
  ToProto(event, out);
  out->clear_known_fields();
  const uint32_t known = out->known();
  if ((known & kFieldAll) == kFieldAll) {
    out->add_known_fields(proto::FIELD_ALL);
  } else {
    for (uint32_t bit = 1; bit < kFieldAll; bit <<= 1) {
      if (known & bit) out->add_known_fields(static_cast<proto::EventFieldName>(bit));
    }
  }
  out->set_known(known & ~static_cast<uint32_t>(kFieldAll));
}

}  // namespace msrtrace
