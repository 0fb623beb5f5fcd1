#include "fuzz/trace_mutator.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "harness/core/enum_names.h"
#include "harness/core/status_macros.h"
#include "harness/core/vcpu.h"
#include "harness/trace/trace_file.h"
#include "harness/trace/trace_framing.h"
#include "harness/trace/trace_proto.h"
#include "proto/trace.pb.h"

namespace msrtrace {
namespace fuzz {
namespace {

constexpr uint64_t kLow32 = 0xffffffffull;
constexpr uint64_t kHigh32 = ~kLow32;

// The input fields a mutated event always carries.
constexpr uint32_t kInputFields =
    kFieldRaxRdxIn | kFieldRip | kFieldInstrLength | kFieldMode | kFieldEnv;
constexpr uint32_t kOutcomeFields =
    kFieldRaxRdxOut | kFieldRipOut | kFieldPendingOut | kFieldMemoryWrites | kFieldMemoryDigest;

// Edges of the controller's dense dispatch windows and of the architectural MSR ranges
// (ref: SDM Vol4 §2.1: 0x0-0x1fff and 0xc0000000-0xc0001fff are the low/high MSR ranges of the
// VMX MSR bitmaps; KVM's PV MSRs live at 0x4b564d00; hypervisor ranges start at 0x40000000).
constexpr uint32_t kWindowEdges[] = {
    0x00000000, 0x00001fff, 0x00002000, 0x3fffffff, 0x40000000, 0x400000ff,
    0x4b564cff, 0x4b564d00, 0x4b564dff, 0x4b564e00, 0xbfffffff, 0xc0000000,
    0xc0001fff, 0xc0002000, 0xc0010000, 0xc0011fff, 0xffffffff,
};

// 48- and 57-bit canonical boundaries, MAXPHYADDR edges, sign bits.
constexpr uint64_t kCanonicalEdges[] = {
    0x00007fffffffffffull, 0x0000800000000000ull, 0xffff7fffffffffffull, 0xffff800000000000ull,
    0x00ffffffffffffffull, 0x0100000000000000ull, 0xfeffffffffffffffull, 0xff00000000000000ull,
    0x00003fffffffffffull, 0x0000400000000000ull, 0x000fffffffffffffull, 0x0010000000000000ull,
    0x7fffffffffffffffull, 0x8000000000000000ull, 0x00000000fffff000ull, 0x0000000100000000ull,
};

bool IsWrite(const ExitEvent& e) {
  return e.exit.vendor == Vendor::kAmdSvm ? e.exit.info1 == 1 : e.exit.reason == kVmxExitWrmsr;
}

void SetAccess(ExitEvent* e, Access a) {
  if (e->exit.vendor == Vendor::kAmdSvm) {
    e->exit.reason = kSvmExitMsr;
    e->exit.info1 = a == Access::kWrite ? 1 : 0;
  } else {
    e->exit.vendor = Vendor::kIntelVmx;
    e->exit.reason = a == Access::kWrite ? kVmxExitWrmsr : kVmxExitRdmsr;
    e->exit.info1 = 0;
  }
}

// FNV-1a over 8-byte words: a slot index for the decoded-parent cache (entries are compared
// byte for byte, so collisions only cost a decode).
uint64_t BytesHash(absl::string_view b) {
  uint64_t h = 0xcbf29ce484222325ull ^ b.size();
  size_t i = 0;
  for (; i + 8 <= b.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, b.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
  }
  for (; i < b.size(); ++i) h = (h ^ static_cast<uint8_t>(b[i])) * 0x100000001b3ull;
  return h ^ (h >> 29);
}

void SetIndex(ExitEvent* e, uint32_t index) { e->rcx = (e->rcx & kHigh32) | index; }

uint64_t ValueOf(const ExitEvent& e) { return (e.rdx << 32) | (e.rax & kLow32); }

// Sets EDX:EAX to `v`, keeping whatever junk the upper halves hold.
void SetValue(ExitEvent* e, uint64_t v) {
  e->rax = (e->rax & kHigh32) | (v & kLow32);
  e->rdx = (e->rdx & kHigh32) | (v >> 32);
  SetAccess(e, Access::kWrite);
}

int HighestBit(uint64_t v) { return 63 - __builtin_clzll(v); }

uint64_t RandomBitOf(uint64_t mask, Rng& rng) {
  if (mask == 0) return 1ull << rng.Below(64);
  int n = static_cast<int>(rng.Below(static_cast<uint64_t>(__builtin_popcountll(mask))));
  while (n-- > 0) mask &= mask - 1;
  return mask & (~mask + 1);
}

// CPU modes (ref: SDM Vol3 §2.2, §9.8.5: IA-32e mode needs CR0.PG, CR4.PAE, EFER.LME; the
// processor sets EFER.LMA; CS.L selects 64-bit vs compatibility mode).
void SetMode(ExitEvent* e, int mode) {
  const uint64_t efer_other = e->efer & ~(kEferLme | kEferLma);
  switch (mode) {
    case 0:  // 64-bit.
      e->cr0 |= kCr0Pe | kCr0Pg;
      e->cr4 |= kCr4Pae;
      e->efer = efer_other | kEferLme | kEferLma;
      e->cs_l = true;
      break;
    case 1:  // Compatibility.
      e->cr0 |= kCr0Pe | kCr0Pg;
      e->cr4 |= kCr4Pae;
      e->efer = efer_other | kEferLme | kEferLma;
      e->cs_l = false;
      break;
    case 2:  // 32-bit protected mode with paging.
      e->cr0 |= kCr0Pe | kCr0Pg;
      e->efer = efer_other;
      e->cs_l = false;
      break;
    default:  // Real mode.
      e->cr0 &= ~(kCr0Pe | kCr0Pg);
      e->efer = efer_other;
      e->cs_l = false;
      break;
  }
}

}  // namespace

constexpr EnumName<Strategy> kStrategyNames[] = {
    {Strategy::kIndexFromTable, "index-from-table"},
    {Strategy::kIndexNeighbour, "index-neighbour"},
    {Strategy::kIndexRangeEdge, "index-range-edge"},
    {Strategy::kIndexRandom, "index-random"},
    {Strategy::kValueFlipReserved, "value-flip-reserved"},
    {Strategy::kValueCanonicalEdge, "value-canonical-edge"},
    {Strategy::kValueZeroOnes, "value-zero-ones"},
    {Strategy::kValueBitFlip, "value-bit-flip"},
    {Strategy::kUpperHalfJunk, "upper-half-junk"},
    {Strategy::kInstructionLength, "instruction-length"},
    {Strategy::kCpuMode, "cpu-mode"},
    {Strategy::kRipWrap, "rip-wrap"},
    {Strategy::kTrapFlag, "trap-flag"},
    {Strategy::kInterruptShadow, "interrupt-shadow"},
    {Strategy::kFlipAccess, "flip-access"},
    {Strategy::kEnvironment, "environment"},
    {Strategy::kInsertEvent, "insert-event"},
    {Strategy::kDeleteEvent, "delete-event"},
    {Strategy::kDuplicateEvent, "duplicate-event"},
    {Strategy::kSwapEvents, "swap-events"},
};
static_assert(sizeof(kStrategyNames) / sizeof(kStrategyNames[0]) ==
                  static_cast<size_t>(Strategy::kCount),
              "every Strategy has a name");

const char* StrategyName(Strategy s) { return NameOf(kStrategyNames, s, "unknown"); }

void ClearOutcome(ExitEvent* event) {
  event->kind = RecordedKind::kUnspecified;
  event->known = (event->known & ~kOutcomeFields) | kInputFields;
  event->rax_out = event->rdx_out = event->rip_out = 0;
  event->pending_out = PendingException{};
  event->memory_writes.clear();
  event->memory_writes_digest = 0;
  event->error.clear();
  if (event->exit.instruction_length == 0) event->exit.instruction_length = 2;
}

absl::StatusOr<TraceModel> DecodeTrace(absl::string_view bytes, size_t max_events) {
  TraceModel out;
  RETURN_IF_ERROR(DecodeTraceInto(bytes, max_events, &out));
  return out;
}

absl::Status DecodeTraceInto(absl::string_view bytes, size_t max_events, TraceModel* out) {
  ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> reader,
                   TraceReader::FromBytes(std::string(bytes), "<fuzz input>"));
  out->header = reader->header();
  out->snapshot = reader->snapshot();
  out->trailer = TraceTrailer{};
  // Uncompressed: the bytes up to the reader's position are the prelude, header and snapshot.
  const bool gzip = bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f &&
                    static_cast<uint8_t>(bytes[1]) == 0x8b;
  if (gzip || reader->offset() > bytes.size()) {
    out->start_bytes.clear();
  } else {
    out->start_bytes.assign(bytes.data(), reader->offset());
  }
  // Event records are copied as they are while their sequence numbers are the mutator's
  // (1, 2, ...), so that a copied record and the model agree.
  out->event_ends.clear();
  bool clean = !out->start_bytes.empty();
  out->clean_events = 0;
  size_t n = 0;
  while (n < max_events) {
    if (n == out->events.size()) out->events.emplace_back();
    ASSIGN_OR_RETURN(bool more, reader->Next(&out->events[n]));  // Reuses the event's storage.
    if (!more) {
      if (reader->end() == TraceEnd::kComplete) out->trailer = reader->trailer();
      break;
    }
    clean = clean && out->events[n].seq == n + 1 && reader->offset() <= bytes.size();
    if (clean) {
      out->event_ends.push_back(reader->offset());
      out->clean_events = n + 1;
    }
    ++n;
  }
  out->events.resize(n);
  return absl::OkStatus();
}

namespace {

// The image of `trace`: `start` (the encoded prelude, header and snapshot) when not empty, else
// those encoded; then the events and the trailer, byte for byte what TraceWriter writes. With
// `clean` > 0, `start` is the image the model came from and its first `clean` event records
// (up to event_ends[clean - 1]) are copied from it. With `ends`, event k's record end is stored
// in (*ends)[k].
absl::Status EncodeWithStart(const TraceModel& trace, absl::string_view start, std::string* out,
                             size_t clean = 0, std::vector<uint64_t>* ends = nullptr) {
  out->clear();
  if (ends != nullptr) ends->clear();
  // Errors read as TraceWriter::CreateInMemory's did ("<memory>: ...").
  auto error = [](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("<memory>: ", s.message()));
  };
  if (start.empty()) {
    absl::Status s = ValidateHeader(trace.header);
    if (s.ok()) s = ValidateSnapshot(trace.snapshot);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("<memory>: ", s.message()));
    s = AppendTraceStart(trace.header, trace.snapshot, out);
    if (!s.ok()) return error(s);
  } else if (clean > 0) {
    out->append(start.data(), trace.event_ends[clean - 1]);
    if (ends != nullptr) ends->assign(trace.event_ends.begin(), trace.event_ends.begin() + clean);
  } else {
    out->append(start.data(), start.size());
  }
  thread_local proto::ExitEvent scratch;  // Reused: no allocation per event.
  uint64_t last_seq = clean > 0 ? trace.events[clean - 1].seq : 0;
  for (size_t k = clean; k < trace.events.size(); ++k) {
    const ExitEvent& e = trace.events[k];
    if (k > 0 && e.seq <= last_seq) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "<memory>: event seq %u is not greater than the previous seq %u", e.seq, last_seq));
    }
    if (absl::Status s = AppendEventRecord(e, &scratch, out); !s.ok()) return error(s);
    if (ends != nullptr) ends->push_back(out->size());
    last_seq = e.seq;
  }
  AppendTrailerRecord(TraceTrailer{trace.events.size(), trace.trailer.final_state_digest}, out);
  return absl::OkStatus();
}

}  // namespace

absl::Status EncodeTraceInto(const TraceModel& trace, std::string* out) {
  return EncodeWithStart(trace, absl::string_view(), out);
}

absl::StatusOr<std::string> EncodeTrace(const TraceModel& trace) {
  std::string out;
  RETURN_IF_ERROR(EncodeTraceInto(trace, &out));
  return out;
}

std::vector<MsrTarget> TargetsFromIndices(std::vector<uint32_t> indices) {
  std::sort(indices.begin(), indices.end());
  indices.erase(std::unique(indices.begin(), indices.end()), indices.end());
  std::vector<MsrTarget> out;
  for (uint32_t i : indices) {
    if (!out.empty() && out.back().last != 0xffffffffu && out.back().last + 1 == i) {
      out.back().last = i;
    } else {
      out.push_back(MsrTarget{i, i, 0});
    }
  }
  return out;
}

TraceMutator::TraceMutator(MutatorConfig config) : config_(std::move(config)) {
  if (config_.targets.empty()) config_.targets.push_back(MsrTarget{0x10, 0x10, 0});
  if (config_.max_events == 0) config_.max_events = 1;
  if (config_.max_stack < 1) config_.max_stack = 1;
}

const MsrTarget* TraceMutator::TargetOf(uint32_t index) const {
  // Rows may overlap (a table row and a registered-index range); the first match wins.
  for (const MsrTarget& t : config_.targets) {
    if (index >= t.first && index <= t.last) return &t;
  }
  return nullptr;
}

const MsrTarget& TraceMutator::RandomTarget(Rng& rng) const {
  return config_.targets[rng.Below(config_.targets.size())];
}

ExitEvent TraceMutator::NewEvent(const TraceModel& trace, Rng& rng) const {
  ExitEvent e;
  if (!trace.events.empty()) {
    e = trace.events[rng.Below(trace.events.size())];  // Inherit mode, RIP, vendor.
  } else {
    e.exit.vendor = Vendor::kIntelVmx;
    e.exit.instruction_length = 2;
    {
      // A compact snapshot (no vCPUs) means vCPUs 0..n-1 at reset.
      const VcpuRegs reset;
      const VcpuRegs& r = trace.snapshot.vcpus.empty() ? reset : trace.snapshot.vcpus.front().regs;
      e.vcpu_id = trace.snapshot.vcpus.empty() ? 0 : trace.snapshot.vcpus.front().id;
      e.rip = r.rip;
      e.rflags = r.rflags;
      e.cr0 = r.cr0;
      e.cr4 = r.cr4;
      e.efer = r.efer;
      e.cs_l = r.cs_l;
    }
  }
  if (trace.snapshot.vcpus.size() > 1 && rng.OneIn(4)) {
    e.vcpu_id = trace.snapshot.vcpus[rng.Below(trace.snapshot.vcpus.size())].id;
  } else if (trace.snapshot.vcpus.empty() && trace.header.vcpu_count > 1 && rng.OneIn(4)) {
    e.vcpu_id = static_cast<uint32_t>(rng.Below(trace.header.vcpu_count));
  }
  const MsrTarget& t = RandomTarget(rng);
  e.rcx = t.first + rng.Below(static_cast<uint64_t>(t.last - t.first) + 1);
  SetAccess(&e, rng.OneIn(2) ? Access::kWrite : Access::kRead);
  e.rax = rng.OneIn(2) ? 0 : (rng.Next() & kLow32);
  e.rdx = rng.OneIn(2) ? 0 : (rng.Next() & kLow32);
  e.volatile_value = false;
  ClearOutcome(&e);
  return e;
}

void TraceMutator::Apply(Strategy s, TraceModel* trace, Rng& rng) const {
  std::vector<ExitEvent>& ev = trace->events;
  const bool needs_event = s != Strategy::kInsertEvent;
  if (needs_event && ev.empty()) s = Strategy::kInsertEvent;
  if ((s == Strategy::kSwapEvents || s == Strategy::kDeleteEvent) && ev.size() < 2) {
    s = Strategy::kInsertEvent;
  }
  const size_t i = ev.empty() ? 0 : rng.Below(ev.size());
  size_t first_changed = i;
  switch (s) {
    case Strategy::kIndexFromTable: {
      const MsrTarget& t = RandomTarget(rng);
      SetIndex(&ev[i], static_cast<uint32_t>(t.first + rng.Below(uint64_t{t.last} - t.first + 1)));
      break;
    }
    case Strategy::kIndexNeighbour: {
      const MsrTarget& t = RandomTarget(rng);
      const uint32_t delta = 1 + static_cast<uint32_t>(rng.Below(4));
      SetIndex(&ev[i], rng.OneIn(2) ? t.first - delta : t.last + delta);  // Wraps at 2^32.
      break;
    }
    case Strategy::kIndexRangeEdge: {
      if (rng.OneIn(2)) {
        SetIndex(&ev[i], kWindowEdges[rng.Below(sizeof(kWindowEdges) / sizeof(kWindowEdges[0]))]);
      } else {
        const MsrTarget& t = RandomTarget(rng);
        SetIndex(&ev[i], rng.OneIn(2) ? t.first : t.last);
      }
      break;
    }
    case Strategy::kIndexRandom:
      SetIndex(&ev[i], static_cast<uint32_t>(rng.Next()));
      break;
    case Strategy::kValueFlipReserved: {
      const MsrTarget* t = TargetOf(ev[i].index());
      const uint64_t mask = t != nullptr ? t->reserved_mask : 0;
      uint64_t v = ValueOf(ev[i]);
      if (rng.OneIn(4) && mask != 0) {
        v |= mask;  // Every reserved bit at once.
      } else if (mask != 0 && rng.OneIn(3)) {
        v ^= 1ull << HighestBit(mask);  // The highest reserved bit.
      } else {
        v ^= RandomBitOf(mask, rng);
      }
      SetValue(&ev[i], v);
      break;
    }
    case Strategy::kValueCanonicalEdge: {
      uint64_t v = kCanonicalEdges[rng.Below(sizeof(kCanonicalEdges) / sizeof(kCanonicalEdges[0]))];
      if (rng.OneIn(4)) v &= ~0xfffull;  // Page-aligned variant.
      SetValue(&ev[i], v);
      break;
    }
    case Strategy::kValueZeroOnes: {
      static constexpr uint64_t kValues[] = {0, ~0ull, kLow32, kHigh32, 1, 0x8000000000000000ull};
      SetValue(&ev[i], kValues[rng.Below(sizeof(kValues) / sizeof(kValues[0]))]);
      break;
    }
    case Strategy::kValueBitFlip:
      SetValue(&ev[i], ValueOf(ev[i]) ^ (1ull << rng.Below(64)));
      break;
    case Strategy::kUpperHalfJunk: {
      const uint64_t which = 1 + rng.Below(7);  // Bit 0 RCX, 1 RAX, 2 RDX; at least one.
      auto junk = [&rng]() {
        return rng.OneIn(4) ? kHigh32 : (rng.Next() & kHigh32) | (1ull << 63);
      };
      if (which & 1) ev[i].rcx = (ev[i].rcx & kLow32) | junk();
      if (which & 2) ev[i].rax = (ev[i].rax & kLow32) | junk();
      if (which & 4) ev[i].rdx = (ev[i].rdx & kLow32) | junk();
      break;
    }
    case Strategy::kInstructionLength: {
      static constexpr uint8_t kLengths[] = {1, 2, 3, 4, 5, 15};
      ev[i].exit.instruction_length =
          rng.OneIn(3) ? static_cast<uint8_t>(1 + rng.Below(15))
                       : kLengths[rng.Below(sizeof(kLengths) / sizeof(kLengths[0]))];
      break;
    }
    case Strategy::kCpuMode:
      SetMode(&ev[i], static_cast<int>(rng.Below(4)));
      break;
    case Strategy::kRipWrap: {
      const uint64_t back = rng.Below(16);
      switch (rng.Below(4)) {
        case 0:
          ev[i].rip = 0xffffffffull - back;  // 32-bit wrap.
          break;
        case 1:
          ev[i].rip = ~0ull - back;  // 64-bit wrap.
          break;
        case 2:
          ev[i].rip = 0x00007fffffffffffull - back;  // End of the lower canonical half.
          break;
        default:
          ev[i].rip = 0x0000000100000000ull - back + rng.Below(32);  // Straddling 2^32.
          break;
      }
      break;
    }
    case Strategy::kTrapFlag:
      ev[i].rflags = (ev[i].rflags ^ kRflagsTf) | kRflagsFixed1;
      break;
    case Strategy::kInterruptShadow:
      ev[i].interruptibility =
          static_cast<uint32_t>(rng.Below(4)) & (kBlockingBySti | kBlockingByMovSs);
      break;
    case Strategy::kFlipAccess:
      SetAccess(&ev[i], IsWrite(ev[i]) ? Access::kRead : Access::kWrite);
      break;
    case Strategy::kEnvironment:
      if (rng.OneIn(2)) {
        ev[i].exit.host_tsc = rng.OneIn(2) ? rng.Next() : ev[i].exit.host_tsc + rng.Below(1000000);
      } else {
        ev[i].exit.host_wall_ns =
            rng.OneIn(2) ? rng.Next() : ev[i].exit.host_wall_ns + rng.Below(1000000000);
      }
      break;
    case Strategy::kInsertEvent: {
      const size_t at = rng.Below(ev.size() + 1);
      ev.insert(ev.begin() + static_cast<std::ptrdiff_t>(at), NewEvent(*trace, rng));
      first_changed = at;
      break;
    }
    case Strategy::kDeleteEvent:
      ev.erase(ev.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    case Strategy::kDuplicateEvent: {
      ExitEvent copy = ev[i];
      const size_t at = rng.Below(ev.size() + 1);
      ev.insert(ev.begin() + static_cast<std::ptrdiff_t>(at), std::move(copy));
      first_changed = std::min(i, at);
      break;
    }
    case Strategy::kSwapEvents: {
      size_t j = rng.Below(ev.size() - 1);
      if (j >= i) ++j;
      std::swap(ev[i], ev[j]);
      first_changed = std::min(i, j);
      break;
    }
    case Strategy::kCount:
      break;
  }
  Normalize(trace, first_changed);
}

void TraceMutator::Normalize(TraceModel* trace, size_t first_changed) const {
  std::vector<ExitEvent>& ev = trace->events;
  if (ev.size() > config_.max_events) ev.resize(config_.max_events);
  for (size_t k = 0; k < ev.size(); ++k) {
    ev[k].seq = k + 1;
    if (k >= first_changed) ClearOutcome(&ev[k]);
  }
  trace->clean_events = std::min({trace->clean_events, first_changed, ev.size()});
  // Events change what the final state is: the recorded digest no longer applies.
  trace->trailer = TraceTrailer{};
}

Strategy TraceMutator::Mutate(TraceModel* trace, Rng& rng) const {
  const int n = 1 + static_cast<int>(rng.Below(static_cast<uint64_t>(config_.max_stack)));
  Strategy s = Strategy::kInsertEvent;
  for (int k = 0; k < n; ++k) {
    s = static_cast<Strategy>(rng.Below(kNumStrategies));
    Apply(s, trace, rng);
  }
  return s;
}

void TraceMutator::CrossOver(const TraceModel& a, const TraceModel& b, TraceModel* out,
                             Rng& rng) const {
  out->header = a.header;
  out->snapshot = a.snapshot;
  out->start_bytes = a.start_bytes;
  out->clean_events = std::min(a.clean_events, a.event_ends.size());  // Normalize(): the cut.
  out->event_ends.assign(a.event_ends.begin(),
                         a.event_ends.begin() + static_cast<std::ptrdiff_t>(out->clean_events));
  out->events.clear();
  const size_t cut_a = rng.Below(a.events.size() + 1);
  const size_t cut_b = rng.Below(b.events.size() + 1);
  out->events.assign(a.events.begin(), a.events.begin() + static_cast<std::ptrdiff_t>(cut_a));
  out->events.insert(out->events.end(), b.events.begin() + static_cast<std::ptrdiff_t>(cut_b),
                     b.events.end());
  // Events of `b` may name vCPUs `a` does not have.
  for (ExitEvent& e : out->events) {
    bool found = false;
    for (const Vcpu& v : a.snapshot.vcpus) found |= v.id == e.vcpu_id;
    if (a.snapshot.vcpus.empty()) {
      found = e.vcpu_id < std::max<uint32_t>(a.header.vcpu_count, 1);  // Compact: 0..n-1.
      if (!found) e.vcpu_id = 0;
    } else if (!found) {
      e.vcpu_id = a.snapshot.vcpus.front().id;
    }
  }
  Normalize(out, cut_a);
}

bool TraceMutator::Emit(TraceModel* trace, absl::string_view source, uint8_t* out, size_t max_size,
                        std::string* bytes) const {
  // Scratch for the record ends: trace->event_ends still describes `source` while encoding.
  thread_local std::vector<uint64_t> ends;
  while (true) {
    const size_t clean = std::min(trace->clean_events, trace->events.size());
    const bool copy = clean > 0 && !trace->start_bytes.empty() &&
                      trace->event_ends.size() >= clean &&
                      trace->event_ends[clean - 1] <= source.size();
    const absl::Status st = copy ? EncodeWithStart(*trace, source, bytes, clean, &ends)
                                 : EncodeWithStart(*trace, trace->start_bytes, bytes, 0, &ends);
    if (st.ok() && bytes->size() <= max_size) {
      // `out` is libFuzzer's raw byte buffer, not a C string: no terminator wanted.
      // NOLINTNEXTLINE(bugprone-not-null-terminated-result)
      std::memcpy(out, bytes->data(), bytes->size());
      // Every event record of the output is now the model's.
      trace->event_ends.swap(ends);
      trace->clean_events = trace->start_bytes.empty() ? 0 : trace->events.size();
      // The trailer as DecodeTraceInto gives it back: read only when it stops before
      // max_events (the writer counts the events).
      trace->trailer = trace->events.size() < config_.max_events
                           ? TraceTrailer{trace->events.size(), trace->trailer.final_state_digest}
                           : TraceTrailer{};
      return true;
    }
    if (!st.ok() || trace->events.empty()) return false;
    // Too big: drop events from the end until it fits (halving first for large traces).
    trace->events.resize(trace->events.size() > 8 ? trace->events.size() / 2
                                                  : trace->events.size() - 1);
    trace->trailer = TraceTrailer{};
  }
}

// The last output of MutateBytes/CrossOverBytes on this thread. `model` is exactly what
// DecodeTraceInto(bytes, max_events) gives when `valid`: it was decoded from an input (or is
// such a model mutated and re-encoded, and the encoding round-trips every field), never the
// configured fallback, whose header and snapshot were not read from bytes.
struct TraceMutator::OutputCache {
  std::string bytes;
  TraceModel model;
  size_t max_events = 0;
  bool valid = false;

  bool Holds(absl::string_view in, size_t cap) const {
    return valid && max_events == cap && in == bytes;
  }
};

TraceMutator::OutputCache& TraceMutator::Cache() {
  thread_local OutputCache cache;
  return cache;
}

const TraceModel* TraceMutator::LastOutput(absl::string_view bytes) const {
  const OutputCache& c = Cache();
  return c.Holds(bytes, config_.max_events) ? &c.model : nullptr;
}

// Decoded corpus units: libFuzzer mutates and crosses over the same units again and again, so
// keep the decoded form of recent ones (direct-mapped by a hash of the bytes, compared byte for
// byte; a bounded number of entries, so memory stays flat).
struct TraceMutator::UnitCache {
  struct Unit {
    std::string bytes;
    TraceModel model;
    size_t max_events = 0;
    bool valid = false;
  };
  static constexpr size_t kUnits = 256;
  std::vector<Unit> units = std::vector<Unit>(kUnits);

  // The decoded `in`, or nullptr when it does not decode.
  static size_t Slot(absl::string_view in) { return BytesHash(in) % kUnits; }
  const TraceModel* Get(absl::string_view in, size_t max_events) {
    Unit& u = units[Slot(in)];
    if (u.max_events != max_events || u.bytes != in) {
      u.valid = DecodeTraceInto(in, max_events, &u.model).ok();
      u.bytes.assign(in.data(), in.size());
      u.max_events = max_events;
    }
    return u.valid ? &u.model : nullptr;
  }
};

TraceMutator::UnitCache& TraceMutator::Units() {
  thread_local UnitCache cache;
  return cache;
}

size_t TraceMutator::MutateBytes(uint8_t* data, size_t size, size_t max_size, uint64_t seed) const {
  OutputCache& c = Cache();
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  // libFuzzer stacks mutations on the same buffer: the input is often the last output, whose
  // model is at hand. Otherwise the unit's decoded form (cached) is copied into the model.
  bool decoded = c.Holds(in, config_.max_events);
  c.valid = false;
  if (!decoded) {
    const TraceModel* unit = Units().Get(in, config_.max_events);
    decoded = unit != nullptr;
    c.model = decoded ? *unit : config_.fallback;
    if (!decoded) c.model.clean_events = 0;  // Not the image of `in`.
  }
  Rng rng(seed);
  Mutate(&c.model, rng);
  // `in` is `data`: Emit reads the clean records from it before it writes the output there.
  if (!Emit(&c.model, in, data, max_size, &c.bytes)) return size;
  c.max_events = config_.max_events;
  c.valid = decoded;
  return c.bytes.size();
}

size_t TraceMutator::CrossOverBytes(const uint8_t* data1, size_t size1, const uint8_t* data2,
                                    size_t size2, uint8_t* out, size_t max_size,
                                    uint64_t seed) const {
  OutputCache& c = Cache();
  thread_local TraceModel result;  // Reused storage.
  const absl::string_view in1(reinterpret_cast<const char*>(data1), size1);
  const absl::string_view in2(reinterpret_cast<const char*>(data2), size2);
  bool exact = true;
  const TraceModel* ta =
      c.Holds(in1, config_.max_events) ? &c.model : Units().Get(in1, config_.max_events);
  if (ta == nullptr) {
    ta = &config_.fallback;
    exact = false;
  }
  // Both parents may map to one cache entry: the second lookup must not evict the first.
  thread_local TraceModel first;
  if (ta != &c.model && ta != &config_.fallback && in1 != in2 &&
      UnitCache::Slot(in1) == UnitCache::Slot(in2)) {
    first = *ta;
    ta = &first;
  }
  const TraceModel* tb =
      c.Holds(in2, config_.max_events) ? &c.model : Units().Get(in2, config_.max_events);
  if (tb == nullptr) {
    tb = &config_.fallback;
    exact = false;
  }
  Rng rng(seed);
  CrossOver(*ta, *tb, &result, rng);
  if (ta == &config_.fallback) result.clean_events = 0;  // Not the image of `in1`.
  c.valid = false;
  // libFuzzer treats 0 as "no cross-over"; it keeps the first input then.
  if (!Emit(&result, in1, out, max_size, &c.bytes)) return 0;
  std::swap(c.model, result);
  c.max_events = config_.max_events;
  c.valid = exact;
  return c.bytes.size();
}

}  // namespace fuzz
}  // namespace msrtrace
