// Reading trace-cmd's binary trace.dat (file format v6/v7, trace-cmd.dat(5)) through
// libtracecmd/libtraceevent: every record of the top instance and of every buffer instance,
// merged in timestamp order, becomes a ParsedLine as the text parser would have produced it
// (Rendering::kTraceDat), so the same Assembler builds the events.
//
// Fields are read by name with tep_find_field/tep_read_number_field from the event formats
// stored in the file, so kernel-version differences in layout are handled by the format:
//   kvm_msr:  write, ecx, data, exception (optional: old kernels have no #GP flag)
//   kvm_exit: exit_reason, guest_rip, isa (1 VMX, 2 SVM; KVM_ISA_* in arch/x86/kvm/trace.h),
//             info1, vcpu_id (optional: before Linux 5.x)
//   kvm_entry: vcpu_id, rip (optional: before Linux 5.x)
//   kvm_inj_exception: exception
// A record whose page lost events (the ring buffer's "missed events", libtraceevent
// tep_record::missed_events: > 0 a count, < 0 unknown) is preceded by LineStatus::kLost for
// its CPU.
//
// Built only when CMake finds libtracecmd (MSRTRACE_HAVE_TRACECMD); otherwise ReadTraceDat
// returns kUnimplemented saying so, and text import works as before.
#ifndef MSRTRACE_IMPORTERS_TRACE_DAT_READER_H_
#define MSRTRACE_IMPORTERS_TRACE_DAT_READER_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "importers/kvm_trace_parser.h"

namespace msrtrace {
namespace importers {

// "\x17\x08\x44tracing": the first 10 bytes of every trace.dat.
inline constexpr absl::string_view kTraceDatMagic("\x17\x08\x44tracing", 10);
inline bool HasTraceDatMagic(absl::string_view head) {
  return head.size() >= kTraceDatMagic.size() &&
         head.substr(0, kTraceDatMagic.size()) == kTraceDatMagic;
}

// Whether this build can read trace.dat files.
bool TraceDatSupported();

// Called once per record (and once per lost-events marker, status kLost). `ordinal` counts
// records from 1 in the order delivered. Returning an error stops the read with that error.
using TraceDatCallback = absl::FunctionRef<absl::Status(
    uint64_t ordinal, LineStatus status, const ParsedLine& line, const LineError& error)>;

// Reads `path`. *bytes = the file size. Errors: kInvalidArgument when libtracecmd cannot open
// the file (not a trace.dat, an unsupported version, a corrupt header), kUnimplemented when
// built without libtracecmd, or the callback's error.
absl::Status ReadTraceDat(const std::string& path, TraceDatCallback fn, uint64_t* bytes);

// Renders every record as `trace-cmd report` prints it with libtraceevent's print formats
// from the file ("<comm>-<pid> [<cpu>] <sec>.<usec>: <event>: <info>"), lost events as
// "CPU:N [M EVENTS DROPPED]" / "CPU:N [EVENTS DROPPED]", all instances merged in time order.
// The text the importer reads when a trace.dat was converted with `trace-cmd report` (no
// plugins loaded); used by the round-trip test.
absl::Status RenderTraceDatText(const std::string& path, std::string* text);

}  // namespace importers
}  // namespace msrtrace

#endif  // MSRTRACE_IMPORTERS_TRACE_DAT_READER_H_
