// The structure-aware mutator behind the exit-sequence fuzzer (LLVMFuzzerCustomMutator and
// LLVMFuzzerCustomCrossOver in exit_sequence_fuzzer.cc).
//
// Fuzz inputs are traces in the project's own file format (harness/trace/trace_file.h), so the fuzz
// corpus and the replay corpus are the same files. Plain byte mutation cannot get through the
// record framing, checksums and protobuf varints to interesting MSR indices, so this mutator
// decodes a trace into plain C++ types (TraceModel), applies one or more named strategies to the
// events, and encodes the result again. Every output is a valid trace: header and snapshot are
// kept, sequence numbers are renumbered, every field stays inside the ranges trace_proto.h
// validates, and the recorded outcome of every event at or after the first changed one is
// cleared (RecordedKind::kUnspecified, outcome bits cleared in `known`), so `msrtrace replay`
// runs the mutated exits without comparing them against stale recordings.
//
// Determinism: the result is a pure function of (input bytes, seed, configuration). The random
// source is SplitMix64 (harness/core/rng.h Rng), not <random>'s distributions (whose output is
// implementation-defined), so a seed gives the same mutation under clang and GCC.
//
// Thread-safety: a TraceMutator is immutable after construction; Mutate* may be called from
// several threads with their own Rng (the *Bytes entry points keep, per thread, their last
// output, see LastOutput, and a bounded cache of decoded corpus units).
#ifndef MSRTRACE_FUZZ_TRACE_MUTATOR_H_
#define MSRTRACE_FUZZ_TRACE_MUTATOR_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "harness/core/rng.h"
#include "harness/core/snapshot.h"
#include "harness/trace/trace_types.h"

namespace msrtrace {
namespace fuzz {

// A whole trace in memory.
struct TraceModel {
  TraceHeader header;
  Snapshot snapshot;
  std::vector<ExitEvent> events;
  TraceTrailer trailer;
  // The prelude, header and snapshot records exactly as DecodeTraceInto read them (empty for an
  // uncompressed image it did not decode, or a model built in code). The mutator never changes
  // header or snapshot, so its outputs start with these bytes instead of encoding them again;
  // EncodeTrace/EncodeTraceInto ignore them.
  std::string start_bytes;
  // The first `clean_events` events are byte for byte the event records of the image the model
  // was decoded from (DecodeTraceInto) or emitted as (the mutator), and event k's record ends at
  // event_ends[k] in that image. The mutator copies those records instead of encoding them again
  // (mutations lower clean_events to the first event they change). Only meaningful together
  // with that image; 0 for a model built in code or a compressed image.
  size_t clean_events = 0;
  std::vector<uint64_t> event_ends;
};

// Decodes a trace file image. Reads at most `max_events` events; later events are dropped (the
// fuzzers bound the work per input this way). Errors are the reader's (naming the offset).
[[nodiscard]] absl::StatusOr<TraceModel> DecodeTrace(absl::string_view bytes,
                                                     size_t max_events = SIZE_MAX);
// The same into `*out`, reusing its events' storage (the fuzzers' per-input path).
[[nodiscard]] absl::Status DecodeTraceInto(absl::string_view bytes, size_t max_events,
                                           TraceModel* out);
// Encodes `trace` as a trace file image (uncompressed). The trailer's event count is the number
// of events; its final digest is copied. Errors: the writer's validation of header, snapshot or
// an event.
[[nodiscard]] absl::StatusOr<std::string> EncodeTrace(const TraceModel& trace);
// The same into `*out` (cleared first, its capacity reused).
[[nodiscard]] absl::Status EncodeTraceInto(const TraceModel& trace, std::string* out);

// The mutation strategies. Each is one named, separately testable transformation.
enum class Strategy : uint8_t {
  kIndexFromTable = 0,  // ECX = an index a handler is registered at.
  kIndexNeighbour,      // ECX = first-1, last+1 or a few away from a registered index/range.
  kIndexRangeEdge,      // ECX = first/last of a range, or an edge of a dense dispatch window.
  kIndexRandom,         // ECX = a random 32-bit index.
  kValueFlipReserved,   // WRMSR value: flip one bit of the row's reserved mask.
  kValueCanonicalEdge,  // WRMSR value: 48/57-bit canonical boundaries, MAXPHYADDR edges.
  kValueZeroOnes,       // WRMSR value: 0, all-ones, one half all-ones.
  kValueBitFlip,        // WRMSR value: flip a random bit.
  kUpperHalfJunk,       // Random junk in RCX[63:32], RAX[63:32], RDX[63:32].
  kInstructionLength,   // Instruction length 1..15.
  kCpuMode,             // 64-bit, compatibility, 32-bit protected or real mode.
  kRipWrap,             // RIP just below 2^32 or 2^64 (and the canonical hole).
  kTrapFlag,            // Toggle RFLAGS.TF.
  kInterruptShadow,     // STI / MOV-SS blocking.
  kFlipAccess,          // RDMSR <-> WRMSR.
  kEnvironment,         // Host TSC / wall clock at the exit.
  kInsertEvent,         // A new exit at a random position.
  kDeleteEvent,
  kDuplicateEvent,
  kSwapEvents,
  kCount,
};
inline constexpr int kNumStrategies = static_cast<int>(Strategy::kCount);
const char* StrategyName(Strategy s);

// One registered MSR (or range) the mutator aims at.
struct MsrTarget {
  uint32_t first = 0;
  uint32_t last = 0;
  uint64_t reserved_mask = 0;  // Bits whose setting should #GP on a guest write.
};

struct MutatorConfig {
  // Where indices come from. Usually the MSR table rows plus the controller's registered
  // indices (TargetsFromIndices), so teams' own handlers are aimed at too. Must not be empty.
  std::vector<MsrTarget> targets;
  // Event count cap of every output (and of decoded inputs).
  size_t max_events = 64;
  // Mutations stacked per Mutate call: 1..max_stack.
  int max_stack = 3;
  // A valid trace to start from when the input does not decode (libFuzzer's empty input, a
  // corrupted file). Its header and snapshot must match the engine the fuzzer builds.
  TraceModel fallback;
};

// Targets for sorted, possibly repeated indices: consecutive indices are merged into ranges.
std::vector<MsrTarget> TargetsFromIndices(std::vector<uint32_t> indices);

class TraceMutator {
 public:
  explicit TraceMutator(MutatorConfig config);

  // Applies 1..max_stack random strategies to *trace. Returns the last one applied.
  Strategy Mutate(TraceModel* trace, Rng& rng) const;
  // Applies `s` (falling back to an insert when `s` needs events and there are none).
  void Apply(Strategy s, TraceModel* trace, Rng& rng) const;
  // *out = a prefix of `a` followed by a suffix of `b` (header and snapshot of `a`).
  void CrossOver(const TraceModel& a, const TraceModel& b, TraceModel* out, Rng& rng) const;

  // The libFuzzer entry points on file images. Decode `data` (the fallback when it does not
  // decode), mutate with Rng(seed), encode into `data`; returns the new size <= max_size. When
  // even the smallest valid result does not fit, returns `size` unchanged.
  size_t MutateBytes(uint8_t* data, size_t size, size_t max_size, uint64_t seed) const;
  size_t CrossOverBytes(const uint8_t* data1, size_t size1, const uint8_t* data2, size_t size2,
                        uint8_t* out, size_t max_size, uint64_t seed) const;

  // The decoded form of the last MutateBytes/CrossOverBytes output on this thread when `bytes`
  // is that output (compared byte for byte), else nullptr. It is what DecodeTraceInto(bytes,
  // config().max_events) gives, so the fuzzer runs it without decoding again (libFuzzer runs
  // every mutation result right after producing it). Valid until the next Mutate*Bytes call.
  const TraceModel* LastOutput(absl::string_view bytes) const;

  const MutatorConfig& config() const { return config_; }

 private:
  ExitEvent NewEvent(const TraceModel& trace, Rng& rng) const;
  const MsrTarget* TargetOf(uint32_t index) const;
  const MsrTarget& RandomTarget(Rng& rng) const;
  // Renumbers, clears outcomes from `first_changed` on, caps the event count.
  void Normalize(TraceModel* trace, size_t first_changed) const;
  // Encodes *trace into *bytes and copies it to `out`, dropping events from the end until it
  // fits in max_size; sets the trailer's event count as the reader reports it. False when no
  // valid result fits.
  // Encodes `trace` into `*bytes` and `out`; its first trace->clean_events event records are
  // copied from `source` (the image the model came from: the input, not yet overwritten).
  bool Emit(TraceModel* trace, absl::string_view source, uint8_t* out, size_t max_size,
            std::string* bytes) const;
  struct OutputCache;
  static OutputCache& Cache();  // Per thread.
  struct UnitCache;
  static UnitCache& Units();  // Per thread.

  MutatorConfig config_;
};

// Marks `event`'s outcome as not recorded.
void ClearOutcome(ExitEvent* event);

}  // namespace fuzz
}  // namespace msrtrace

#endif  // MSRTRACE_FUZZ_TRACE_MUTATOR_H_
