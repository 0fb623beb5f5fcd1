// The planted-bug self-test: each deliberately broken engine or handler (planted_bugs.h) must be
// found by its oracle within a short, bounded, seeded fuzzing loop (the mutator and oracles of
// the exit-sequence fuzzer, in process, so this also runs in GCC builds). The same loop on the
// unbroken reference engine must find nothing: the oracles do not cry wolf.
#include "fuzz/planted_bugs.h"

#include <string>

#include "fuzz/fuzz_setup.h"
#include "fuzz/oracles.h"
#include "fuzz/trace_mutator.h"
#include "gtest/gtest.h"

namespace msrtrace {
namespace fuzz {
namespace {

// Mutated inputs per bug: the architectural bugs are found in < 100, the table-conformance and
// vCPU-isolation ones in a few thousand (the mutator picks among every row of the profile).
constexpr int kBudget = 30000;
constexpr int kControlBudget = 1000;  // Inputs of the unbroken control run.

struct Found {
  int iterations = -1;  // -1: not found.
  absl::optional<OracleFailure> failure;
  TraceModel input;
};

Found FuzzLoop(const char* handler_set, EngineFactory factory, int budget,
               const TraceModel* start = nullptr) {
  Found found;
  absl::StatusOr<MutatorConfig> config = MakeMutatorConfig(handler_set);
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return found;
  TraceMutator mutator(*config);
  OracleRunner runner(std::move(factory), MakeOracleOptions());
  const TraceModel& first = start != nullptr ? *start : config->fallback;
  TraceModel cur = first;
  for (int i = 0; i < budget; ++i) {
    TraceModel next = cur;
    Rng rng(static_cast<uint64_t>(i));
    mutator.Mutate(&next, rng);
    absl::StatusOr<absl::optional<OracleFailure>> r = runner.Check(next);
    if (r.ok() && r->has_value()) {
      found.iterations = i;
      found.failure = **r;
      found.input = next;
      return found;
    }
    // Back to the start now and then, as libFuzzer keeps its seeds in the corpus.
    cur = next.events.size() < 24 && i % 4 != 3 ? next : first;
  }
  return found;
}

class PlantedBugTest : public ::testing::TestWithParam<PlantedBug> {};

TEST_P(PlantedBugTest, IsFoundByItsOracleWithinTheBudget) {
  const PlantedBug bug = GetParam();
  absl::StatusOr<TraceModel> start = PlantedStartTrace(bug);
  ASSERT_TRUE(start.ok()) << start.status();
  Found f = FuzzLoop(PlantedHandlerSet(bug), PlantedEngineFactory(bug), kBudget, &*start);
  ASSERT_GE(f.iterations, 0) << PlantedBugName(bug) << " not found in " << kBudget << " inputs";
  EXPECT_EQ(f.failure->oracle, OracleFor(bug))
      << FormatFailure(*f.failure, f.input, "planted_bugs_test");
  std::printf("%s: found by %s after %d inputs\n", PlantedBugName(bug),
              OracleName(f.failure->oracle), f.iterations + 1);
}

INSTANTIATE_TEST_SUITE_P(
    AllPlantedBugs, PlantedBugTest,
    ::testing::Values(PlantedBug::kRipNotAdvanced, PlantedBug::kUpperHalvesNotCleared,
                      PlantedBug::kIndexFromFullRcx, PlantedBug::kStateChangedBeforeGp,
                      PlantedBug::kReadsHostClock, PlantedBug::kTscAuxReadDropsBit0,
                      PlantedBug::kMtrrDefTypeReservedAccepted,
                      PlantedBug::kKernelGsBaseRoutedToGsBase, PlantedBug::kPatWriteBroadcast,
                      PlantedBug::kMiscEnableReadOnlyWritable,
                      PlantedBug::kTscWriteAdjustsEveryVcpu, PlantedBug::kDispatchEcxXor1),
    [](const ::testing::TestParamInfo<PlantedBug>& info) {
      std::string name = PlantedBugName(info.param);
      for (char& c : name) {
        if (c == '-') c = '_';
      }
      return name;
    });

TEST(PlantedBugs, EveryBugHasADistinctNameAndAnOracle) {
  for (int i = 0; i < kNumPlantedBugs; ++i) {
    const auto bug = static_cast<PlantedBug>(i);
    EXPECT_EQ(ParsePlantedBug(PlantedBugName(bug)), bug);
    EXPECT_NE(OracleFor(bug), Oracle::kCount);
  }
}

TEST(PlantedBugs, TheReferenceEngineHasNoFindingsInTheSameLoop) {
  Found f = FuzzLoop("reference", ReferenceEngineFactory(), kControlBudget);
  EXPECT_LT(f.iterations, 0) << FormatFailure(*f.failure, f.input, "planted_bugs_test");
}

TEST(PlantedBugs, TheReferenceEngineHasNoFindingsFromEveryStartTrace) {
  for (int i = 0; i < kNumPlantedBugs; ++i) {
    const auto bug = static_cast<PlantedBug>(i);
    absl::StatusOr<TraceModel> start = PlantedStartTrace(bug);
    ASSERT_TRUE(start.ok()) << start.status();
    start->header.handler_set = "reference";
    Found f = FuzzLoop("reference", ReferenceEngineFactory(), kControlBudget / 4, &*start);
    EXPECT_LT(f.iterations, 0) << PlantedBugName(bug) << ": "
                               << FormatFailure(*f.failure, f.input, "planted_bugs_test");
  }
}

}  // namespace
}  // namespace fuzz
}  // namespace msrtrace
