// msrtrace show, convert, diff and stats: reading traces without replaying them.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "handlers/msr_table.h"
#include "harness/replay/replay.h"
#include "harness/trace/trace_file.h"
#include "harness/trace/trace_proto.h"
#include "harness/trace/trace_text.h"
#include "proto/report.pb.h"
#include "tools/command.h"
#include "tools/output.h"

namespace msrtrace::cli {
namespace {

// Prints one field of a `Trace` message in text-proto or JSON form.
class TracePrinter {
 public:
  TracePrinter(std::ostream& out, bool json) : out_(out), json_(json) {
    json_options_.preserve_proto_field_names = true;
  }
  bool Field(const char* name, const google::protobuf::Message& m) {
    piece_.clear();
    if (json_) {
      if (!google::protobuf::util::MessageToJsonString(m, &piece_, json_options_).ok()) {
        return false;
      }
      const bool event = strcmp(name, "events") == 0;
      if (event && !in_events_) {
        out_ << (first_ ? "{" : ",\n ") << "\"events\": [\n  ";
        in_events_ = true;
      } else if (event) {
        out_ << ",\n  ";
      } else {
        CloseEvents();
        out_ << (first_ ? "{" : ",\n ") << "\"" << name << "\": ";
      }
      out_ << piece_;
    } else {
      // The printer `convert` uses (harness/trace/trace_text.h): 64-bit values in hex.
      if (!TraceMessageToText(m, &piece_)) return false;
      out_ << name << " {\n" << piece_ << "}\n";
    }
    first_ = false;
    return true;
  }
  void Comment(const std::string& text) {
    if (!json_) out_ << "# " << text << "\n";
  }
  void Finish() {
    if (!json_) return;
    CloseEvents();
    out_ << (first_ ? "{}\n" : "}\n");
  }

 private:
  void CloseEvents() {
    if (in_events_) out_ << "\n ]";
    in_events_ = false;
  }
  std::ostream& out_;
  bool json_;
  bool first_ = true;
  bool in_events_ = false;
  std::string piece_;
  google::protobuf::util::JsonPrintOptions json_options_;
};

int BadInput(std::ostream& err, const char* cmd, absl::string_view message) {
  err << "msrtrace " << cmd << ": " << message << "\n";
  return kExitBadInput;
}

// Whether `path` holds a binary trace (gzip or the MSRTRACE magic) rather than a text form (text
// proto or JSON); an error for an unreadable file.
absl::StatusOr<bool> IsBinaryTrace(const std::string& path) {
  FILE* f = path == "-" ? nullptr : fopen(path.c_str(), "rb");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  char buf[8] = {};
  const size_t n = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  if (n >= 2 && static_cast<unsigned char>(buf[0]) == 0x1f &&
      static_cast<unsigned char>(buf[1]) == 0x8b) {
    return true;
  }
  return n == 8 && memcmp(buf, "MSRTRACE", 8) == 0;
}

enum class Form { kBinary, kTextProto, kJson };

absl::StatusOr<Form> FormOf(const std::string& to, const std::string& output) {
  if (to == "binary") return Form::kBinary;
  if (to == "textproto" || to == "text") return Form::kTextProto;
  if (to == "json") return Form::kJson;
  if (!to.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--to: '", to, "' is not binary, textproto or json"));
  }
  if (absl::EndsWith(output, ".json")) return Form::kJson;
  if (absl::EndsWith(output, ".textproto") || absl::EndsWith(output, ".txtpb") ||
      absl::EndsWith(output, ".pbtxt")) {
    return Form::kTextProto;
  }
  return Form::kBinary;
}

// The reference table's name for `index` ("IA32_EFER"), or "MSR_0x..." when no row has it.
std::string ReferenceMsrName(const std::vector<MsrRow>& rows, uint32_t index) {
  auto it = std::upper_bound(rows.begin(), rows.end(), index,
                             [](uint32_t i, const MsrRow& r) { return i < r.index; });
  if (it != rows.begin() && index <= std::prev(it)->last) return std::prev(it)->name;
  return absl::StrFormat("MSR_%#x", index);
}

// One line per exit:
//   #12 vcpu1 rip 0xffffffff81001234 wrmsr IA32_EFER (0xc0000080) <- 0xd01: retired, rip -> ...
// MSR names come from `names` (the trace's handler set, when this binary has it: a team's
// <name>_msrtrace names its own MSRs), else from the reference table.
std::string EventLogLine(const ExitEvent& e, const std::vector<MsrRow>& rows,
                         const Controller* names) {
  const absl::optional<Access> access = MsrAccessOf(e.exit);
  std::string line = absl::StrFormat("#%u vcpu%u", e.seq, e.vcpu_id);
  if (e.known & kFieldRip) absl::StrAppendFormat(&line, " rip %#x", e.rip);
  const std::string name =
      names != nullptr ? names->MsrName(e.index()) : ReferenceMsrName(rows, e.index());
  if (!access.has_value()) {
    absl::StrAppendFormat(&line, " exit reason %u", e.exit.reason);
  } else if (*access == Access::kWrite) {
    absl::StrAppendFormat(&line, " %s %s (%#x) <- %#x", e.host_initiated ? "host-set" : "wrmsr",
                          name, e.index(), (e.rdx << 32) | (e.rax & 0xffffffffull));
  } else {
    absl::StrAppendFormat(&line, " %s %s (%#x)", e.host_initiated ? "host-get" : "rdmsr", name,
                          e.index());
    if ((e.kind == RecordedKind::kRetired || e.kind == RecordedKind::kIgnored) &&
        (e.known & kFieldRaxRdxOut)) {
      absl::StrAppendFormat(&line, " -> %#x", (e.rdx_out << 32) | (e.rax_out & 0xffffffffull));
    }
  }
  absl::StrAppendFormat(&line, ": %s", RecordedKindName(e.kind));
  if (e.kind == RecordedKind::kGpInjected) line += " #GP(0)";
  if (e.route != MsrRoute::kUnspecified) absl::StrAppend(&line, " via ", MsrRouteName(e.route));
  if (e.kind == RecordedKind::kVmmError) absl::StrAppend(&line, " (", e.error, ")");
  if (e.known & kFieldRipOut) absl::StrAppendFormat(&line, ", rip -> %#x", e.rip_out);
  if ((e.known & kFieldPendingOut) && e.pending_out.valid && e.pending_out.vector == kVectorDb) {
    line += ", single-step #DB pending";
  }
  if (!e.memory_writes.empty()) {
    absl::StrAppendFormat(&line, ", %u guest-memory write(s)", e.memory_writes.size());
  }
  if (e.volatile_value) line += " [volatile]";
  return line;
}

int ShowLog(const ShowOptions& o, std::ostream& out, std::ostream& err) {
  if (o.tail != 0) return BadInput(err, "show", "--tail is not supported with --format=log");
  absl::StatusOr<std::unique_ptr<TraceReader>> reader = TraceReader::Open(o.path);
  if (!reader.ok()) return BadInput(err, "show", reader.status().message());
  TraceReader& r = **reader;
  const std::vector<MsrRow> rows = MsrTable();
  const absl::StatusOr<std::unique_ptr<Machine>> machine = BuildMachine(r.header());
  const Controller* names = machine.ok() ? (*machine)->controller.get() : nullptr;
  if (!o.events_only) {
    const TraceHeader& h = r.header();
    out << absl::StrFormat(
        "# %s: producer '%s', profile %s, handler set %s, unknown-MSR policy %s, %u vCPUs\n",
        o.path, h.producer, h.cpu_profile, h.handler_set,
        UnknownMsrPolicyName(h.unknown_msr_policy), h.vcpu_count);
    if (h.routing.active() || !h.routing.userspace_handler_set.empty()) {
      out << absl::StrFormat(
          "# MSR routing: userspace exits %s, filter default %s with %u range(s), userspace "
          "handler set %s\n",
          MsrExitReasonsText(h.routing.user_space_msr_mask),
          h.routing.filter.default_deny ? "deny" : "allow", h.routing.filter.ranges.size(),
          h.routing.userspace_handler_set.empty() ? "none" : h.routing.userspace_handler_set);
    }
  }
  ExitEvent ev;
  uint64_t n = 0;
  while (true) {
    absl::StatusOr<bool> more = r.Next(&ev);
    if (!more.ok()) {
      err << "msrtrace show: " << more.status().message() << "\n";
      return kExitBadInput;
    }
    if (!*more) break;
    out << EventLogLine(ev, rows, names) << "\n";
    if (o.head != 0 && ++n >= o.head) {
      if (!o.events_only) out << "# more events may follow (--head)\n";
      return kExitOk;
    }
  }
  if (!o.events_only) {
    out << "# end: " << TraceEndName(r.end()) << "\n";
  }
  return kExitOk;
}

}  // namespace

int RunShow(const ShowOptions& o, std::ostream& out, std::ostream& err) {
  if (o.format == Format::kLog) return ShowLog(o, out, err);
  if (o.format != Format::kTextProto && o.format != Format::kJson) {
    return BadInput(err, "show", "--format must be textproto, json or log");
  }
  if (o.head != 0 && o.tail != 0) {
    return BadInput(err, "show", "--head and --tail exclude each other");
  }
  if (o.tail > 1000000) return BadInput(err, "show", "--tail is limited to 1000000 events");
  absl::StatusOr<std::unique_ptr<TraceReader>> reader = TraceReader::Open(o.path);
  if (!reader.ok()) return BadInput(err, "show", reader.status().message());
  TraceReader& r = **reader;
  TracePrinter p(out, o.format == Format::kJson);
  if (!o.events_only) {
    proto::TraceHeader h;
    ToProto(r.header(), &h);
    p.Field("header", h);
    proto::Snapshot s;
    ToProto(r.snapshot(), &s);
    s.clear_page_count();
    if (o.no_memory) {
      p.Comment(absl::StrFormat("%d memory pages omitted (--no-memory)", s.pages_size()));
      s.clear_pages();
    }
    p.Field("snapshot", s);
  }
  ExitEvent ev;
  proto::ExitEvent pe;
  std::vector<ExitEvent> ring(o.tail);
  uint64_t n = 0;
  bool stopped = false;
  int code = kExitOk;
  while (true) {
    absl::StatusOr<bool> more = r.Next(o.tail != 0 ? &ring[n % o.tail] : &ev);
    if (!more.ok()) {
      err << "msrtrace show: " << more.status().message() << "\n";
      code = kExitBadInput;
      break;
    }
    if (!*more) break;
    if (o.tail == 0) {
      EventToTextProto(ev, &pe);
      p.Field("events", pe);
    }
    ++n;
    if (o.head != 0 && n >= o.head) {
      stopped = true;
      break;
    }
  }
  if (o.tail != 0) {
    const uint64_t first = n > o.tail ? n - o.tail : 0;
    if (first > 0) p.Comment(absl::StrFormat("%u earlier events omitted (--tail)", first));
    for (uint64_t i = first; i < n; ++i) {
      EventToTextProto(ring[i % o.tail], &pe);
      p.Field("events", pe);
    }
  }
  if (stopped) {
    p.Comment("more events may follow (--head)");
  } else if (code == kExitOk && !o.events_only) {
    if (r.end() == TraceEnd::kComplete) {
      proto::Trailer t;
      ToProto(r.trailer(), &t);
      p.Field("trailer", t);
    } else {
      p.Comment(absl::StrCat("trace ends without a trailer: ", TraceEndName(r.end())));
    }
  }
  p.Finish();
  return code;
}

int RunConvert(const ConvertOptions& o, std::ostream& out, std::ostream& err) {
  if (o.input.empty() || o.output.empty()) {
    return BadInput(err, "convert", "needs INPUT and OUTPUT");
  }
  absl::StatusOr<Form> to = FormOf(o.to, o.output);
  if (!to.ok()) return BadInput(err, "convert", to.status().message());
  absl::StatusOr<bool> binary = IsBinaryTrace(o.input);
  if (!binary.ok()) return BadInput(err, "convert", binary.status().message());
  absl::Status st;
  if (*binary) {
    if (*to == Form::kBinary) return BadInput(err, "convert", "input is already binary");
    st = WriteTraceText(o.input, o.output,
                        *to == Form::kJson ? TraceTextFormat::kJson : TraceTextFormat::kTextProto);
  } else if (*to == Form::kBinary) {
    st = ReadTraceText(o.input, o.output);
  } else {
    // Text to text goes through a temporary binary trace.
    const std::string tmp = o.output + ".msrtrace-convert.tmp";
    st = ReadTraceText(o.input, tmp);
    if (st.ok()) {
      st = WriteTraceText(
          tmp, o.output, *to == Form::kJson ? TraceTextFormat::kJson : TraceTextFormat::kTextProto);
    }
    std::remove(tmp.c_str());
  }
  if (!st.ok()) return BadInput(err, "convert", st.message());
  if (o.output != "-") out << "wrote " << o.output << "\n";
  return kExitOk;
}

int RunDiff(const DiffOptions& o, std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::unique_ptr<TraceReader>> a = TraceReader::Open(o.a);
  if (!a.ok()) return BadInput(err, "diff", a.status().message());
  absl::StatusOr<std::unique_ptr<TraceReader>> b = TraceReader::Open(o.b);
  if (!b.ok()) return BadInput(err, "diff", b.status().message());
  const bool json = o.format == Format::kJson;
  uint64_t n = 0;  // Events compared equal so far.
  auto print_json = [&](report::DiffReport r) {
    r.set_events(n);
    const absl::Status st = PrintJsonReport(r, out);
    if (!st.ok()) err << "msrtrace diff: " << st.message() << "\n";
    return st.ok();
  };
  auto report = [&](const std::string& where, const std::string& what) {
    if (json) {
      report::DiffReport r;
      r.set_identical(false);
      r.set_where(ValidUtf8(where));
      r.set_difference(ValidUtf8(what));
      if (!print_json(std::move(r))) return kExitBadInput;
    } else {
      out << "first difference: " << where << ": " << what << "\n";
    }
    return kExitDivergence;
  };
  const TraceHeader& ha = (*a)->header();
  const TraceHeader& hb = (*b)->header();
  if (ha.cpu_profile != hb.cpu_profile) {
    return report("header", absl::StrCat("cpu_profile ", ha.cpu_profile, " vs ", hb.cpu_profile));
  }
  if (ha.handler_set != hb.handler_set) {
    return report("header", absl::StrCat("handler_set ", ha.handler_set, " vs ", hb.handler_set));
  }
  if (ha.unknown_msr_policy != hb.unknown_msr_policy) {
    return report("header",
                  absl::StrCat("unknown_msr_policy ", UnknownMsrPolicyName(ha.unknown_msr_policy),
                               " vs ", UnknownMsrPolicyName(hb.unknown_msr_policy)));
  }
  if (ha.vcpu_count != hb.vcpu_count) {
    return report("header", absl::StrCat("vcpu_count ", ha.vcpu_count, " vs ", hb.vcpu_count));
  }
  if (ha.routing != hb.routing) {
    return report("header",
                  "MSR routing (user_space_msr_reasons, msr_filter or "
                  "userspace_handler_set) differs");
  }
  const uint64_t da = StateDigest((*a)->snapshot());
  const uint64_t db = StateDigest((*b)->snapshot());
  if (da != db) {
    return report("snapshot", absl::StrFormat("state digest %#018x vs %#018x", da, db));
  }
  ExitEvent ea, eb;
  proto::ExitEvent pa, pb;
  while (true) {
    absl::StatusOr<bool> ma = (*a)->Next(&ea);
    if (!ma.ok()) return BadInput(err, "diff", ma.status().message());
    absl::StatusOr<bool> mb = (*b)->Next(&eb);
    if (!mb.ok()) return BadInput(err, "diff", mb.status().message());
    if (!*ma && !*mb) break;
    if (*ma != *mb) {
      const ExitEvent& extra = *ma ? ea : eb;
      return report(absl::StrFormat("event #%u", n + 1),
                    absl::StrFormat("only %s has it (seq %u, vCPU %u, index %#x)", *ma ? o.a : o.b,
                                    extra.seq, extra.vcpu_id, extra.index()));
    }
    ToProto(ea, &pa);
    ToProto(eb, &pb);
    std::string diff;
    google::protobuf::util::MessageDifferencer d;
    d.ReportDifferencesToString(&diff);
    if (!d.Compare(pa, pb)) {
      while (!diff.empty() && diff.back() == '\n') diff.pop_back();
      for (char& c : diff) {
        if (c == '\n') c = ';';
      }
      return report(absl::StrFormat("event #%u (seq %u / %u, vCPU %u, index %#x)", n + 1, ea.seq,
                                    eb.seq, ea.vcpu_id, ea.index()),
                    diff);
    }
    ++n;
  }
  if ((*a)->end() != (*b)->end()) {
    return report("end",
                  absl::StrCat(TraceEndName((*a)->end()), " vs ", TraceEndName((*b)->end())));
  }
  if ((*a)->end() == TraceEnd::kComplete &&
      (*a)->trailer().final_state_digest != (*b)->trailer().final_state_digest) {
    return report("trailer", absl::StrFormat("final_state_digest %#018x vs %#018x",
                                             (*a)->trailer().final_state_digest,
                                             (*b)->trailer().final_state_digest));
  }
  if (json) {
    report::DiffReport r;
    r.set_identical(true);
    if (!print_json(std::move(r))) return kExitBadInput;
  } else {
    out << "traces are identical (" << n << " events)\n";
  }
  return kExitOk;
}

int RunStats(const StatsOptions& o, std::ostream& out, std::ostream& err) {
  if (o.format != Format::kText && o.format != Format::kJson) {
    return BadInput(err, "stats", "--format must be text or json");
  }
  if (o.paths.empty()) return BadInput(err, "stats", "no traces given");
  std::vector<std::string> files;
  int code = ExpandTracePaths(o.paths, &files, err);
  const bool json = o.format == Format::kJson;
  report::StatsReport stats;
  for (const std::string& path : files) {
    absl::StatusOr<std::unique_ptr<TraceReader>> reader = TraceReader::Open(path);
    if (!reader.ok()) {
      err << "msrtrace stats: " << reader.status().message() << "\n";
      code = CombineExitCodes(code, kExitBadInput);
      continue;
    }
    TraceReader& r = **reader;
    struct Counts {
      uint64_t reads = 0, writes = 0;
    };
    absl::flat_hash_map<uint32_t, Counts> per_msr;
    absl::flat_hash_map<uint32_t, uint64_t> per_vcpu;
    uint64_t kinds[5] = {};
    uint64_t events = 0, volatile_events = 0, memory_writes = 0;
    ExitEvent ev;
    bool bad = false;
    while (true) {
      absl::StatusOr<bool> more = r.Next(&ev);
      if (!more.ok()) {
        err << "msrtrace stats: " << more.status().message() << "\n";
        bad = true;
        break;
      }
      if (!*more) break;
      ++events;
      const absl::optional<Access> acc = MsrAccessOf(ev.exit);
      Counts& c = per_msr[ev.index()];
      (acc.value_or(Access::kRead) == Access::kRead ? c.reads : c.writes)++;
      ++per_vcpu[ev.vcpu_id];
      const auto k = static_cast<size_t>(ev.kind);
      if (k < 5) ++kinds[k];
      if (ev.volatile_value) ++volatile_events;
      memory_writes += ev.memory_writes.size();
    }
    if (bad) {
      code = CombineExitCodes(code, kExitBadInput);
      continue;
    }
    if (r.end() != TraceEnd::kComplete) code = CombineExitCodes(code, kExitIncomplete);
    // MSR names from the handler set, when this build has it.
    absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(r.header());
    std::vector<std::pair<uint32_t, Counts>> sorted(per_msr.begin(), per_msr.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    auto name = [&](uint32_t index) {
      return m.ok() ? (*m)->controller->MsrName(index) : absl::StrFormat("MSR_%#x", index);
    };
    const TraceHeader& h = r.header();
    if (json) {
      report::TraceStats* t = stats.add_traces();
      t->set_path(ValidUtf8(path));
      t->set_producer(ValidUtf8(h.producer));
      t->set_cpu_profile(ValidUtf8(h.cpu_profile));
      t->set_handler_set(ValidUtf8(h.handler_set));
      t->set_unknown_msr_policy(UnknownMsrPolicyName(h.unknown_msr_policy));
      t->set_vcpus(h.vcpu_count);
      t->set_events(events);
      t->set_retired(kinds[1]);
      t->set_gp(kinds[2]);
      t->set_vmm_errors(kinds[3]);
      t->set_ignored(kinds[4]);
      t->set_unspecified(kinds[0]);
      t->set_volatile_(volatile_events);
      t->set_memory_writes(memory_writes);
      t->set_snapshot_pages(r.snapshot().memory.PageAddresses().size());
      t->set_end(TraceEndName(r.end()));
      for (const auto& [vcpu, count] : per_vcpu) (*t->mutable_per_vcpu())[vcpu] = count;
      for (const auto& [index, c] : sorted) {
        report::MsrAccessCounts* row = t->add_per_msr();
        row->set_index(Hex(index));
        row->set_name(ValidUtf8(name(index)));
        row->set_reads(c.reads);
        row->set_writes(c.writes);
      }
    } else {
      out << path << ": " << events << " events, " << TraceEndName(r.end()) << "\n";
      out << absl::StrFormat("  producer %s; profile %s; handler set %s; policy %s; %u vCPUs\n",
                             h.producer, h.cpu_profile, h.handler_set,
                             UnknownMsrPolicyName(h.unknown_msr_policy), h.vcpu_count);
      out << absl::StrFormat(
          "  retired %u, gp %u, ignored %u, vmm errors %u, unspecified %u; volatile %u; memory "
          "writes %u; snapshot pages %u\n",
          kinds[1], kinds[2], kinds[4], kinds[3], kinds[0], volatile_events, memory_writes,
          r.snapshot().memory.PageAddresses().size());
      out << absl::StrFormat("  %-10s %-28s %10s %10s\n", "index", "msr", "reads", "writes");
      for (const auto& [index, c] : sorted) {
        out << absl::StrFormat("  %-10s %-28s %10u %10u\n", Hex(index), name(index), c.reads,
                               c.writes);
      }
    }
  }
  if (json) {
    const absl::Status st = PrintJsonReport(stats, out);
    if (!st.ok()) {
      err << "msrtrace stats: " << st.message() << "\n";
      code = CombineExitCodes(code, kExitBadInput);
    }
  }
  return code;
}

}  // namespace msrtrace::cli
