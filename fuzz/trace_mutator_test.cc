#include "fuzz/trace_mutator.h"

#include <set>
#include <string>
#include <vector>

#include "fuzz/fuzz_setup.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/trace/trace_proto.h"

namespace msrtrace {
namespace fuzz {
namespace {

class TraceMutatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<MutatorConfig> config = MakeMutatorConfig("reference");
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    mutator_ = std::make_unique<TraceMutator>(config_);
    base_ = config_.fallback;
    Rng rng(7);
    for (int i = 0; i < 4; ++i) mutator_->Apply(Strategy::kInsertEvent, &base_, rng);
  }

  std::string Encode(const TraceModel& t) {
    absl::StatusOr<std::string> b = EncodeTrace(t);
    EXPECT_TRUE(b.ok()) << b.status();
    return b.ok() ? *b : std::string();
  }

  MutatorConfig config_;
  std::unique_ptr<TraceMutator> mutator_;
  TraceModel base_;
};

TEST_F(TraceMutatorTest, EncodeDecodeRoundTripKeepsEvents) {
  absl::StatusOr<TraceModel> back = DecodeTrace(Encode(base_));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->events.size(), base_.events.size());
  for (size_t i = 0; i < base_.events.size(); ++i) {
    EXPECT_EQ(back->events[i].rcx, base_.events[i].rcx);
    EXPECT_EQ(back->events[i].seq, base_.events[i].seq);
  }
  EXPECT_EQ(back->header.handler_set, "reference");
}

TEST_F(TraceMutatorTest, SameSeedGivesTheSameMutation) {
  const std::string in = Encode(base_);
  for (uint64_t seed : {1u, 2u, 99u, 123456u}) {
    std::vector<uint8_t> a(in.begin(), in.end()), b(in.begin(), in.end());
    a.resize(1 << 16);
    b.resize(1 << 16);
    const size_t na = mutator_->MutateBytes(a.data(), in.size(), a.size(), seed);
    const size_t nb = mutator_->MutateBytes(b.data(), in.size(), b.size(), seed);
    ASSERT_EQ(na, nb);
    EXPECT_EQ(std::string(a.begin(), a.begin() + na), std::string(b.begin(), b.begin() + nb));
  }
}

TEST_F(TraceMutatorTest, DifferentSeedsGiveDifferentMutations) {
  const std::string in = Encode(base_);
  std::set<std::string> outputs;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::vector<uint8_t> a(in.begin(), in.end());
    a.resize(1 << 16);
    const size_t n = mutator_->MutateBytes(a.data(), in.size(), a.size(), seed);
    outputs.insert(std::string(a.begin(), a.begin() + n));
  }
  EXPECT_GT(outputs.size(), 10u);
}

TEST_F(TraceMutatorTest, EveryStrategyIsChosen) {
  std::set<Strategy> seen;
  Rng rng(1);
  for (int i = 0; i < 2000; ++i) {
    TraceModel t = base_;
    seen.insert(mutator_->Mutate(&t, rng));
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kNumStrategies));
}

TEST_F(TraceMutatorTest, EveryStrategyChangesTheTrace) {
  const std::string before = Encode(base_);
  for (int s = 0; s < kNumStrategies; ++s) {
    bool changed = false;
    for (uint64_t seed = 0; seed < 16 && !changed; ++seed) {
      TraceModel t = base_;
      Rng rng(seed);
      mutator_->Apply(static_cast<Strategy>(s), &t, rng);
      changed = Encode(t) != before;
    }
    EXPECT_TRUE(changed) << StrategyName(static_cast<Strategy>(s));
  }
}

TEST_F(TraceMutatorTest, OutputIsAlwaysAValidTrace) {
  std::string cur = Encode(base_);
  for (uint64_t seed = 0; seed < 1500; ++seed) {
    std::vector<uint8_t> buf(cur.begin(), cur.end());
    buf.resize(1 << 16);
    const size_t n = mutator_->MutateBytes(buf.data(), cur.size(), buf.size(), seed);
    const std::string out(buf.begin(), buf.begin() + n);
    absl::StatusOr<TraceModel> t = DecodeTrace(out);
    ASSERT_TRUE(t.ok()) << "seed " << seed << ": " << t.status();
    ASSERT_LE(t->events.size(), config_.max_events);
    for (size_t i = 0; i < t->events.size(); ++i) {
      ASSERT_TRUE(ValidateEvent(t->events[i]).ok()) << ValidateEvent(t->events[i]);
      ASSERT_EQ(t->events[i].seq, i + 1);
    }
    cur = t->events.size() < 40 ? out : Encode(base_);
  }
}

TEST_F(TraceMutatorTest, UndecodableInputStartsFromTheFallback) {
  std::vector<uint8_t> buf = {'n', 'o', 't', ' ', 'a', ' ', 't', 'r', 'a', 'c', 'e'};
  buf.resize(1 << 16);
  const size_t n = mutator_->MutateBytes(buf.data(), 11, buf.size(), 5);
  absl::StatusOr<TraceModel> t = DecodeTrace(std::string(buf.begin(), buf.begin() + n));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->header.handler_set, "reference");
}

TEST_F(TraceMutatorTest, OutputNeverExceedsMaxSize) {
  const std::string in = Encode(base_);
  std::vector<uint8_t> buf(in.begin(), in.end());
  const size_t max = in.size();  // No room to grow.
  for (uint64_t seed = 0; seed < 50; ++seed) {
    std::vector<uint8_t> b = buf;
    EXPECT_LE(mutator_->MutateBytes(b.data(), in.size(), max, seed), max);
  }
}

TEST_F(TraceMutatorTest, MutatedEventsCarryNoRecordedOutcome) {
  TraceModel t = base_;
  for (ExitEvent& e : t.events) e.kind = RecordedKind::kRetired;
  Rng rng(3);
  mutator_->Apply(Strategy::kIndexRandom, &t, rng);
  bool cleared = false;
  for (const ExitEvent& e : t.events) cleared |= e.kind == RecordedKind::kUnspecified;
  EXPECT_TRUE(cleared);
  EXPECT_EQ(t.events.back().kind, RecordedKind::kUnspecified);
  EXPECT_EQ(t.events.back().known & kFieldRipOut, 0u);
}

TEST_F(TraceMutatorTest, IndexFromTableHitsARegisteredIndex) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    TraceModel t = base_;
    t.events.resize(1);
    Rng rng(seed);
    mutator_->Apply(Strategy::kIndexFromTable, &t, rng);
    const uint32_t index = t.events[0].index();
    bool found = false;
    for (const MsrTarget& target : config_.targets) {
      found |= index >= target.first && index <= target.last;
    }
    EXPECT_TRUE(found) << std::hex << index;
  }
}

TEST_F(TraceMutatorTest, UpperHalfJunkKeepsTheLowHalves) {
  TraceModel t = base_;
  t.events.resize(1);
  const ExitEvent before = t.events[0];
  Rng rng(11);
  mutator_->Apply(Strategy::kUpperHalfJunk, &t, rng);
  const ExitEvent& e = t.events[0];
  EXPECT_EQ(static_cast<uint32_t>(e.rcx), static_cast<uint32_t>(before.rcx));
  EXPECT_EQ(static_cast<uint32_t>(e.rax), static_cast<uint32_t>(before.rax));
  EXPECT_EQ(static_cast<uint32_t>(e.rdx), static_cast<uint32_t>(before.rdx));
  EXPECT_TRUE((e.rcx >> 32) != 0 || (e.rax >> 32) != 0 || (e.rdx >> 32) != 0);
}

TEST_F(TraceMutatorTest, RipWrapLandsNearA32Or64BitBoundary) {
  for (uint64_t seed = 0; seed < 40; ++seed) {
    TraceModel t = base_;
    t.events.resize(1);
    Rng rng(seed);
    mutator_->Apply(Strategy::kRipWrap, &t, rng);
    const uint64_t rip = t.events[0].rip;
    const bool near32 = rip >= 0xffffffffull - 32 && rip <= 0x100000000ull + 32;
    const bool near64 = rip >= ~0ull - 16;
    const bool near_canonical = rip >= 0x00007fffffffffffull - 16 && rip <= 0x00007fffffffffffull;
    EXPECT_TRUE(near32 || near64 || near_canonical) << std::hex << rip;
  }
}

TEST_F(TraceMutatorTest, FlipReservedSetsAReservedBitOfTheRow) {
  // Find a row with a reserved mask and aim an event at it.
  const MsrTarget* row = nullptr;
  for (const MsrTarget& t : config_.targets) {
    if (t.reserved_mask != 0) {
      row = &t;
      break;
    }
  }
  ASSERT_NE(row, nullptr);
  int hits = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    TraceModel t = base_;
    t.events.resize(1);
    t.events[0].rcx = row->first;
    t.events[0].rax = t.events[0].rdx = 0;
    Rng rng(seed);
    mutator_->Apply(Strategy::kValueFlipReserved, &t, rng);
    const uint64_t v = (t.events[0].rdx << 32) | (t.events[0].rax & 0xffffffffu);
    hits += (v & row->reserved_mask) != 0;
  }
  EXPECT_GT(hits, 30);
}

TEST_F(TraceMutatorTest, CrossOverIsDeterministicAndValid) {
  TraceModel other = base_;
  Rng r0(9);
  for (int i = 0; i < 5; ++i) mutator_->Apply(Strategy::kInsertEvent, &other, r0);
  const std::string a = Encode(base_), b = Encode(other);
  std::vector<uint8_t> out1(1 << 16), out2(1 << 16);
  const auto* pa = reinterpret_cast<const uint8_t*>(a.data());
  const auto* pb = reinterpret_cast<const uint8_t*>(b.data());
  const size_t n1 =
      mutator_->CrossOverBytes(pa, a.size(), pb, b.size(), out1.data(), out1.size(), 17);
  const size_t n2 =
      mutator_->CrossOverBytes(pa, a.size(), pb, b.size(), out2.data(), out2.size(), 17);
  ASSERT_EQ(n1, n2);
  ASSERT_GT(n1, 0u);
  EXPECT_TRUE(std::equal(out1.begin(), out1.begin() + n1, out2.begin()));
  EXPECT_TRUE(DecodeTrace(std::string(out1.begin(), out1.begin() + n1)).ok());
}

// libFuzzer stacks mutations on one buffer, so MutateBytes often gets its own last output and
// reuses that model instead of decoding: the outputs must be those of decoding every time.
TEST_F(TraceMutatorTest, ReusedLastOutputGivesTheSameMutationsAsDecoding) {
  const std::string in = Encode(base_);
  const std::string other = Encode(config_.fallback);
  std::vector<uint8_t> chained(in.begin(), in.end()), decoded(in.begin(), in.end());
  chained.resize(1 << 16);
  decoded.resize(1 << 16);
  size_t nc = in.size(), nd = in.size();
  for (uint64_t seed = 0; seed < 300; ++seed) {
    nc = mutator_->MutateBytes(chained.data(), nc, chained.size(), seed);
    // Another input in between: the next call on `decoded` cannot reuse its last output.
    std::vector<uint8_t> scratch(other.begin(), other.end());
    scratch.resize(1 << 16);
    (void)mutator_->MutateBytes(scratch.data(), other.size(), scratch.size(), seed + 1000);
    nd = mutator_->MutateBytes(decoded.data(), nd, decoded.size(), seed);
    ASSERT_EQ(nc, nd) << "seed " << seed;
    ASSERT_TRUE(std::equal(chained.begin(), chained.begin() + nc, decoded.begin()))
        << "seed " << seed;
    nd = mutator_->MutateBytes(decoded.data(), nd, decoded.size(), seed + 5000);
    nc = mutator_->MutateBytes(chained.data(), nc, chained.size(), seed + 5000);
    ASSERT_EQ(nc, nd) << "seed " << seed;
  }
}

// LastOutput is exactly what decoding the output gives (the fuzzer runs it instead).
TEST_F(TraceMutatorTest, LastOutputIsTheDecodedOutput) {
  std::vector<uint8_t> buf(1 << 16), out(1 << 16);
  const std::string in = Encode(base_);
  std::copy(in.begin(), in.end(), buf.begin());
  size_t n = in.size();
  auto expect_decoded = [&](const uint8_t* p, size_t size, uint64_t seed) {
    const absl::string_view bytes(reinterpret_cast<const char*>(p), size);
    const TraceModel* last = mutator_->LastOutput(bytes);
    ASSERT_NE(last, nullptr) << "seed " << seed;
    absl::StatusOr<TraceModel> back = DecodeTrace(bytes, config_.max_events);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(Encode(*last), Encode(*back)) << "seed " << seed;
    // The event records copied from the input are what encoding the model writes.
    EXPECT_EQ(Encode(*last), bytes) << "seed " << seed;
    EXPECT_EQ(last->trailer.event_count, back->trailer.event_count) << "seed " << seed;
    EXPECT_EQ(last->trailer.final_state_digest, back->trailer.final_state_digest);
    ASSERT_EQ(last->events.size(), back->events.size());
    for (size_t k = 0; k < last->events.size(); ++k) {
      EXPECT_TRUE(last->events[k].pending_out == back->events[k].pending_out);
    }
  };
  for (uint64_t seed = 0; seed < 200; ++seed) {
    n = mutator_->MutateBytes(buf.data(), n, buf.size(), seed);
    expect_decoded(buf.data(), n, seed);
    const size_t m =
        mutator_->CrossOverBytes(buf.data(), n, reinterpret_cast<const uint8_t*>(in.data()),
                                 in.size(), out.data(), out.size(), seed);
    if (m == 0) continue;
    expect_decoded(out.data(), m, seed);
    const absl::string_view was(reinterpret_cast<const char*>(buf.data()), n);
    if (was != absl::string_view(reinterpret_cast<const char*>(out.data()), m)) {
      EXPECT_EQ(mutator_->LastOutput(was), nullptr);  // Only the last output is kept.
    }
  }
}

// A mutation keeps the records before the first event it changes byte for byte (copied, not
// encoded again), and the model knows where every record of its output ends.
TEST_F(TraceMutatorTest, OutputModelsKnowTheirRecords) {
  std::vector<uint8_t> buf(1 << 16);
  const std::string in = Encode(base_);
  std::copy(in.begin(), in.end(), buf.begin());
  size_t n = in.size();
  for (uint64_t seed = 0; seed < 200; ++seed) {
    n = mutator_->MutateBytes(buf.data(), n, buf.size(), seed);
    const absl::string_view bytes(reinterpret_cast<const char*>(buf.data()), n);
    const TraceModel* last = mutator_->LastOutput(bytes);
    ASSERT_NE(last, nullptr);
    ASSERT_EQ(last->clean_events, last->events.size()) << "seed " << seed;
    ASSERT_EQ(last->event_ends.size(), last->events.size());
    // Each event record ends where the next starts; the trailer follows the last.
    size_t begin = last->start_bytes.size();
    for (size_t k = 0; k < last->events.size(); ++k) {
      ASSERT_GT(last->event_ends[k], begin) << "seed " << seed << " event " << k;
      begin = last->event_ends[k];
    }
    ASSERT_LT(begin, n);
    absl::StatusOr<TraceModel> back = DecodeTrace(bytes, config_.max_events);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->event_ends, last->event_ends) << "seed " << seed;
  }
}

TEST(TargetsFromIndices, MergesConsecutiveIndicesIntoRanges) {
  std::vector<MsrTarget> t = TargetsFromIndices({0x802, 0x800, 0x801, 0x10, 0xffffffff});
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].first, 0x10u);
  EXPECT_EQ(t[1].first, 0x800u);
  EXPECT_EQ(t[1].last, 0x802u);
  EXPECT_EQ(t[2].last, 0xffffffffu);
}

}  // namespace
}  // namespace fuzz
}  // namespace msrtrace
