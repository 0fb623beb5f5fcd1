#include "handlers/handler_set.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "handlers/fifo.h"
#include "handlers/msr_table.h"

namespace msrtrace {
namespace {

absl::Status InstallNothing(Controller&, const CpuProfile&) { return absl::OkStatus(); }

TEST(HandlerSetTest, BuiltinSetsAreListedFirst) {
  std::vector<const HandlerSetDef*> sets = ListHandlerSets();
  ASSERT_GE(sets.size(), 2u);
  EXPECT_EQ(sets[0]->name, "reference");
  EXPECT_EQ(sets[1]->name, "reference+fifo");
}

TEST(HandlerSetTest, ReferenceSetInstallsTheTable) {
  const HandlerSetDef* def = FindHandlerSet("reference");
  ASSERT_NE(def, nullptr);
  Controller ctl;
  ASSERT_TRUE(def->install(ctl, DefaultProfile()).ok());
  EXPECT_NE(ctl.Find(0x277), nullptr);
  EXPECT_EQ(ctl.Find(kFifoMsrIndex), nullptr);
}

TEST(HandlerSetTest, ReferencePlusFifoAddsTheFifoAt0xabc) {
  const HandlerSetDef* def = FindHandlerSet("reference+fifo");
  ASSERT_NE(def, nullptr);
  Controller ctl;
  ASSERT_TRUE(def->install(ctl, DefaultProfile()).ok());
  EXPECT_NE(ctl.Find(0x277), nullptr);
  EXPECT_EQ(ctl.MsrName(kFifoMsrIndex), "FIFO_DEVICE");
}

TEST(HandlerSetTest, UnknownNameIsNotFound) { EXPECT_EQ(FindHandlerSet("no-such-set"), nullptr); }

TEST(HandlerSetTest, RegisterRejectsDuplicateName) {
  EXPECT_FALSE(RegisterHandlerSet({"reference", "impostor", &InstallNothing}));
  EXPECT_EQ(FindHandlerSet("reference")->description.find("impostor"), std::string::npos);
}

TEST(HandlerSetTest, RegisterRejectsMissingInstallFunction) {
  EXPECT_FALSE(RegisterHandlerSet({"no-install", "", nullptr}));
  EXPECT_EQ(FindHandlerSet("no-install"), nullptr);
}

TEST(HandlerSetTest, RegisteredSetIsFoundAndPointerStaysValid) {
  ASSERT_TRUE(RegisterHandlerSet({"test-custom", "a test set", &InstallNothing}));
  const HandlerSetDef* def = FindHandlerSet("test-custom");
  ASSERT_NE(def, nullptr);
  for (int i = 0; i < 50; ++i) {
    RegisterHandlerSet({"test-filler-" + std::to_string(i), "", &InstallNothing});
  }
  EXPECT_EQ(FindHandlerSet("test-custom"), def);
  EXPECT_EQ(def->description, "a test set");
}

TEST(HandlerSetTest, ConcurrentRegistrationRegistersEachNameOnce) {
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&wins] {
      for (int i = 0; i < 20; ++i) {
        if (RegisterHandlerSet({"race-" + std::to_string(i), "", &InstallNothing})) ++wins;
        FindHandlerSet("reference");
        ListHandlerSets();
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(wins.load(), 20);
}

}  // namespace
}  // namespace msrtrace
