// Read-ahead: a TraceReader that runs another reader's Next() on a thread of its own, so that
// reading, checksumming, decompressing and decoding the next events overlap with whatever the
// caller does with the current one (the replay loop: running the exit). On a machine with a
// second core a replay then takes about as long as parsing alone.
//
// What the caller sees is exactly what the wrapped reader gives, in the same order: every event,
// its record_offset()/record_number(), offset()/records() as they were just after that event,
// and the wrapped reader's error (corruption, a sequence number that does not increase) after
// the events before it. end(), trailer() and skipped() are the wrapped reader's once Next() has
// returned false or an error (the worker has stopped by then); before that they report a trace
// still being read (TraceEnd::kNoTrailer, an empty trailer, no skipped regions).
//
// Events reach the caller a batch at a time: from a pipe whose writer pauses, the events of an
// unfinished batch wait for more input or the end (a replay reports at the end anyway).
//
// Memory is bounded: the worker stays at most `batches` batches of at most `batch_events`
// events (or ~`batch_bytes` bytes of records, whichever comes first) ahead of the caller, and a
// slot whose event came from a record above kLargeEventBytes drops that storage before it is
// reused. NextView() hands out the slot itself (no copy; the replay loop reads this way), Next()
// copies into the caller's event; a steady-state replay allocates nothing per event. Destroying
// the reader before the end stops the worker (see ReadAheadOptions::stop_wait).
#ifndef MSRTRACE_HARNESS_TRACE_READ_AHEAD_H_
#define MSRTRACE_HARNESS_TRACE_READ_AHEAD_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "harness/trace/trace_file.h"

namespace msrtrace {

struct ReadAheadOptions {
  size_t batch_events = 4096;     // Events per hand-over (one lock round trip each).
  size_t batch_bytes = 1u << 20;  // A batch is handed over early past this many record bytes.
  size_t batches = 4;             // Batches in the ring (>= 2): the worker's lead.
  // Destroyed before the end, the reader stops its worker and waits this long for it. A worker
  // still blocked in the wrapped reader then (reading a pipe whose writer stalls) is left to
  // finish on its own; it holds its own share of the ring, so nothing it touches is freed.
  absl::Duration stop_wait = absl::Seconds(2);
};

// A slot does not keep the storage of an event whose record was larger than this.
inline constexpr uint64_t kLargeEventBytes = 64u << 10;

// Wraps `inner`, which must not be used directly any more. header() and snapshot() are the
// wrapped reader's, read while the worker runs: its Next() must not change them (true of every
// reader in msrtrace: both are complete when Open() returns).
std::unique_ptr<TraceReader> ReadAhead(std::unique_ptr<TraceReader> inner,
                                       ReadAheadOptions options = {});

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_TRACE_READ_AHEAD_H_
