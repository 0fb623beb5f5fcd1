// The C API's contract: callbacks decide and the controller acts (EDX:EAX, RIP, #GP), slots
// are per vCPU, taken indices are refused, errors come back as codes and bounded messages,
// recordings of a C set replay clean (and diverge when the callback changes), golden traces of
// the base set replay clean through an extending set, and the fuzzer's oracles are active.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "msrtrace/msrtrace.h"

namespace {

constexpr uint32_t kCounter = 0x4f000010;  // Per-vCPU counter: WRMSR 1 increments, else #GP.
constexpr uint32_t kScratch = 0x4f000011;  // VM-wide scratch register, bits 63:48 reserved.
constexpr uint32_t kBroken = 0x4f000012;   // Changes state, then faults (a planted bug).
constexpr uint32_t kFailing = 0x4f000013;  // Reports a VMM error.

struct Device {
  uint32_t counter_slot = 0;
  uint32_t scratch_slot = 0;
  uint64_t read_bias = 0;  // Added to counter reads: a "changed handler" for divergence tests.
};

int ReadMsr(void* ctx, msrtrace_access* a, uint32_t index, uint64_t* value) {
  auto* d = static_cast<Device*>(ctx);
  switch (index) {
    case kCounter:
      *value = msrtrace_access_get_slot(a, d->counter_slot) + d->read_bias;
      return MSRTRACE_VERDICT_OK;
    case kScratch:
      *value = msrtrace_access_get_vm_slot(a, d->scratch_slot);
      return MSRTRACE_VERDICT_OK;
    case kBroken:
      *value = 0;
      return MSRTRACE_VERDICT_OK;
    default:
      return MSRTRACE_VERDICT_VMM_ERROR;
  }
}

int WriteMsr(void* ctx, msrtrace_access* a, uint32_t index, uint64_t value) {
  auto* d = static_cast<Device*>(ctx);
  switch (index) {
    case kCounter:
      if (value != 1) return MSRTRACE_VERDICT_GP;
      msrtrace_access_set_slot(a, d->counter_slot,
                               msrtrace_access_get_slot(a, d->counter_slot) + 1);
      return MSRTRACE_VERDICT_OK;
    case kScratch:
      if ((value >> 48) != 0) return MSRTRACE_VERDICT_GP;
      msrtrace_access_set_vm_slot(a, d->scratch_slot, value);
      return MSRTRACE_VERDICT_OK;
    case kBroken:
      msrtrace_access_set_slot(a, d->counter_slot, value);  // Not fault-atomic.
      return MSRTRACE_VERDICT_GP;
    default:
      return MSRTRACE_VERDICT_VMM_ERROR;
  }
}

std::string MakeTempDir() {
  std::string tmpl = ::testing::TempDir() + "capi_test_XXXXXX";
  char* dir = mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr);
  return tmpl;
}

std::string GoldenDir() {
  const char* src = getenv("MSRTRACE_SOURCE_DIR");
  return src == nullptr ? "" : std::string(src) + "/corpus/golden";
}

class CApiTest : public ::testing::Test {
 protected:
  // A set on the reference base: counter + scratch (+ the broken MSR when `broken`).
  msrtrace_handler_set* MakeSet(Device* d, bool broken) {
    msrtrace_handler_set* set = msrtrace_handler_set_create("reference", err_, sizeof err_);
    EXPECT_NE(set, nullptr) << err_;
    EXPECT_EQ(msrtrace_handler_set_add_vcpu_slot(set, "TEST_COUNTER", 0, &d->counter_slot, err_,
                                                 sizeof err_),
              MSRTRACE_OK);
    EXPECT_EQ(msrtrace_handler_set_add_vm_slot(set, "TEST_SCRATCH", 0x5a, &d->scratch_slot, err_,
                                               sizeof err_),
              MSRTRACE_OK);
    EXPECT_EQ(msrtrace_handler_set_add_msr(set, kCounter, kScratch, "TEST_DEVICE", ReadMsr,
                                           WriteMsr, d, err_, sizeof err_),
              MSRTRACE_OK)
        << err_;
    EXPECT_EQ(msrtrace_handler_set_add_msr(set, kFailing, kFailing, "TEST_FAILING", ReadMsr,
                                           WriteMsr, d, err_, sizeof err_),
              MSRTRACE_OK);
    if (broken) {
      EXPECT_EQ(msrtrace_handler_set_add_msr(set, kBroken, kBroken, "TEST_BROKEN", ReadMsr,
                                             WriteMsr, d, err_, sizeof err_),
                MSRTRACE_OK);
    }
    return set;
  }

  // Registers a fresh set under a unique name (registered names are process-wide).
  std::string Register(Device* d, bool broken) {
    static int serial = 0;
    std::string name = "capi-test-" + std::to_string(++serial);
    msrtrace_handler_set* set = MakeSet(d, broken);
    EXPECT_EQ(msrtrace_handler_set_register(set, name.c_str(), "test", err_, sizeof err_),
              MSRTRACE_OK)
        << err_;
    msrtrace_handler_set_destroy(set);  // The registry keeps its own copy.
    return name;
  }

  static msrtrace_regs LongModeRegs() {
    msrtrace_regs r;
    std::memset(&r, 0, sizeof r);
    r.rip = 0x401000;
    r.rflags = 0x2;
    r.cr0 = 0x80000001;
    r.cr4 = 0x20;
    r.efer = 0x500;  // LME | LMA.
    r.cs_l = 1;
    return r;
  }

  int Rdmsr(msrtrace_controller* c, msrtrace_regs* r, uint32_t index, msrtrace_outcome* out) {
    msrtrace_exit e;
    msrtrace_exit_init(&e, 0);
    r->gpr[1] = index;
    r->pending_valid = 0;
    return msrtrace_controller_handle(c, 0, &e, r, out, err_, sizeof err_);
  }
  int Wrmsr(msrtrace_controller* c, msrtrace_regs* r, uint32_t index, uint64_t v,
            msrtrace_outcome* out) {
    msrtrace_exit e;
    msrtrace_exit_init(&e, 1);
    r->gpr[1] = index;
    r->gpr[0] = v & 0xffffffff;
    r->gpr[2] = v >> 32;
    r->pending_valid = 0;
    return msrtrace_controller_handle(c, 0, &e, r, out, err_, sizeof err_);
  }

  char err_[512] = {};
};

TEST_F(CApiTest, AddMsrRefusesAnIndexTakenInTheSetOrByTheBase) {
  Device d;
  msrtrace_handler_set* set = MakeSet(&d, false);
  EXPECT_EQ(msrtrace_handler_set_add_msr(set, kScratch, kScratch, "AGAIN", ReadMsr, WriteMsr, &d,
                                         err_, sizeof err_),
            MSRTRACE_ALREADY_EXISTS);
  EXPECT_EQ(msrtrace_handler_set_add_msr(set, 0x277, 0x277, "MY_PAT", ReadMsr, WriteMsr, &d, err_,
                                         sizeof err_),
            MSRTRACE_ALREADY_EXISTS);  // IA32_PAT belongs to the reference base.
  EXPECT_NE(std::string(err_).find("0x277"), std::string::npos) << err_;
  EXPECT_EQ(msrtrace_handler_set_add_vcpu_slot(set, "TEST_COUNTER", 0, &d.counter_slot, err_,
                                               sizeof err_),
            MSRTRACE_ALREADY_EXISTS);
  msrtrace_handler_set_destroy(set);
}

TEST_F(CApiTest, RdmsrSplitsTheValueIntoEdxEaxAndAdvancesRip) {
  Device d;
  msrtrace_handler_set* set = MakeSet(&d, false);
  msrtrace_controller* c =
      msrtrace_controller_create(set, "intel-icx", MSRTRACE_POLICY_INJECT_GP, 1, err_, sizeof err_);
  ASSERT_NE(c, nullptr) << err_;
  msrtrace_regs r = LongModeRegs();
  msrtrace_outcome out;
  ASSERT_EQ(Wrmsr(c, &r, kScratch, 0x0000123456789abcull, &out), MSRTRACE_OK) << err_;
  EXPECT_EQ(out.kind, static_cast<uint32_t>(MSRTRACE_OUTCOME_RETIRED));
  EXPECT_EQ(r.rip, 0x401002u);
  r.gpr[0] = 0xffffffff00000000ull;  // Upper halves the RDMSR must clear.
  r.gpr[2] = 0xffffffff00000000ull;
  ASSERT_EQ(Rdmsr(c, &r, kScratch, &out), MSRTRACE_OK) << err_;
  EXPECT_EQ(r.gpr[0], 0x56789abcu);
  EXPECT_EQ(r.gpr[2], 0x1234u);
  EXPECT_EQ(r.rip, 0x401004u);
  EXPECT_EQ(out.value, 0x0000123456789abcull);
  EXPECT_EQ(r.pending_valid, 0u);
  msrtrace_controller_destroy(c);
  msrtrace_handler_set_destroy(set);
}

TEST_F(CApiTest, GpVerdictInjectsGp0AndLeavesRipAndState) {
  Device d;
  msrtrace_handler_set* set = MakeSet(&d, false);
  msrtrace_controller* c =
      msrtrace_controller_create(set, nullptr, MSRTRACE_POLICY_INJECT_GP, 1, err_, sizeof err_);
  ASSERT_NE(c, nullptr) << err_;
  msrtrace_regs r = LongModeRegs();
  msrtrace_outcome out;
  ASSERT_EQ(Wrmsr(c, &r, kCounter, 2, &out), MSRTRACE_OK) << err_;
  EXPECT_EQ(out.kind, static_cast<uint32_t>(MSRTRACE_OUTCOME_GP_INJECTED));
  EXPECT_EQ(r.rip, 0x401000u);
  EXPECT_EQ(r.pending_valid, 1u);
  EXPECT_EQ(r.pending_vector, 13u);
  EXPECT_EQ(r.pending_error_code, 0u);
  uint64_t count = 1;
  ASSERT_EQ(msrtrace_controller_host_read(c, 0, kCounter, &count, err_, sizeof err_), MSRTRACE_OK);
  EXPECT_EQ(count, 0u);
  msrtrace_controller_destroy(c);
  msrtrace_handler_set_destroy(set);
}

TEST_F(CApiTest, SlotsArePerVcpuAndVmSlotsShared) {
  Device d;
  msrtrace_handler_set* set = MakeSet(&d, false);
  msrtrace_controller* c =
      msrtrace_controller_create(set, nullptr, MSRTRACE_POLICY_INJECT_GP, 2, err_, sizeof err_);
  ASSERT_NE(c, nullptr) << err_;
  msrtrace_regs r = LongModeRegs();
  msrtrace_outcome out;
  ASSERT_EQ(Wrmsr(c, &r, kCounter, 1, &out), MSRTRACE_OK);
  ASSERT_EQ(Wrmsr(c, &r, kCounter, 1, &out), MSRTRACE_OK);
  uint64_t v = 0;
  ASSERT_EQ(msrtrace_controller_host_read(c, 0, kCounter, &v, err_, sizeof err_), MSRTRACE_OK);
  EXPECT_EQ(v, 2u);
  ASSERT_EQ(msrtrace_controller_host_read(c, 1, kCounter, &v, err_, sizeof err_), MSRTRACE_OK);
  EXPECT_EQ(v, 0u);
  ASSERT_EQ(msrtrace_controller_host_read(c, 1, kScratch, &v, err_, sizeof err_), MSRTRACE_OK);
  EXPECT_EQ(v, 0x5au);  // The VM-wide slot's reset value.
  msrtrace_controller_destroy(c);
  msrtrace_handler_set_destroy(set);
}

TEST_F(CApiTest, UnsupportedIndexFollowsThePolicyAndVmmErrorFailsTheExit) {
  Device d;
  msrtrace_handler_set* set = MakeSet(&d, false);
  msrtrace_controller* c =
      msrtrace_controller_create(set, nullptr, MSRTRACE_POLICY_IGNORE, 1, err_, sizeof err_);
  ASSERT_NE(c, nullptr) << err_;
  msrtrace_regs r = LongModeRegs();
  msrtrace_outcome out;
  ASSERT_EQ(Rdmsr(c, &r, 0x4f00ffff, &out), MSRTRACE_OK);
  EXPECT_EQ(out.kind, static_cast<uint32_t>(MSRTRACE_OUTCOME_IGNORED));
  EXPECT_EQ(out.unknown_msr, 1u);
  msrtrace_exit e;
  msrtrace_exit_init(&e, 0);
  r.gpr[1] = kFailing;
  const msrtrace_regs before = r;
  EXPECT_EQ(msrtrace_controller_handle(c, 0, &e, &r, &out, err_, sizeof err_), MSRTRACE_INTERNAL);
  EXPECT_NE(std::string(err_).find("TEST_FAILING"), std::string::npos) << err_;
  EXPECT_EQ(std::memcmp(&before, &r, sizeof r), 0) << "registers must be unchanged on an error";
  e.reason = 10;  // CPUID.
  EXPECT_EQ(msrtrace_controller_handle(c, 0, &e, &r, &out, err_, sizeof err_),
            MSRTRACE_NOT_HANDLED);
  e.reason = 31;
  e.instruction_length = 0;
  EXPECT_EQ(msrtrace_controller_handle(c, 0, &e, &r, &out, err_, sizeof err_),
            MSRTRACE_INVALID_ARGUMENT);
  EXPECT_EQ(msrtrace_controller_handle(c, 7, &e, &r, &out, err_, sizeof err_),
            MSRTRACE_INVALID_ARGUMENT);
  msrtrace_controller_destroy(c);
  msrtrace_handler_set_destroy(set);
}

TEST_F(CApiTest, ErrorsComeBackAsCodesWithBoundedMessages) {
  char small[8];
  std::memset(small, 'x', sizeof small);
  EXPECT_EQ(msrtrace_handler_set_create("no-such-set", small, sizeof small), nullptr);
  EXPECT_EQ(small[7], '\0');
  EXPECT_EQ(std::string(small), "unknown");
  EXPECT_EQ(msrtrace_controller_create_registered("no-such-set", nullptr, MSRTRACE_POLICY_INJECT_GP,
                                                  1, nullptr, 0),
            nullptr);
  EXPECT_STREQ(msrtrace_status_name(MSRTRACE_DIVERGED), "diverged");
  Device d;
  msrtrace_handler_set* set = MakeSet(&d, false);
  EXPECT_EQ(msrtrace_controller_create(set, "no-such-cpu", MSRTRACE_POLICY_INJECT_GP, 1, err_,
                                       sizeof err_),
            nullptr);
  EXPECT_NE(std::string(err_).find("no-such-cpu"), std::string::npos);
  msrtrace_controller* c =
      msrtrace_controller_create(set, nullptr, MSRTRACE_POLICY_INJECT_GP, 1, err_, sizeof err_);
  EXPECT_EQ(msrtrace_recorder_start(c, "x.trace", nullptr, err_, sizeof err_), nullptr)
      << "an unregistered set cannot be named in a trace";
  msrtrace_controller_destroy(c);
  msrtrace_handler_set_destroy(set);
}

TEST_F(CApiTest, RegisteringATakenNameFails) {
  Device d;
  const std::string name = Register(&d, false);
  msrtrace_handler_set* set = MakeSet(&d, false);
  EXPECT_EQ(msrtrace_handler_set_register(set, name.c_str(), "", err_, sizeof err_),
            MSRTRACE_ALREADY_EXISTS);
  EXPECT_EQ(msrtrace_handler_set_register(set, "reference", "", err_, sizeof err_),
            MSRTRACE_ALREADY_EXISTS);
  msrtrace_handler_set_destroy(set);
}

TEST_F(CApiTest, RecordingReplaysCleanAndDivergesWhenTheHandlerChanges) {
  Device d;
  const std::string name = Register(&d, false);
  msrtrace_controller* c = msrtrace_controller_create_registered(
      name.c_str(), "intel-icx", MSRTRACE_POLICY_INJECT_GP, 1, err_, sizeof err_);
  ASSERT_NE(c, nullptr) << err_;
  const std::string dir = MakeTempDir();
  const std::string path = dir + "/c.trace";
  msrtrace_recorder* rec = msrtrace_recorder_start(c, path.c_str(), "capi_test", err_, sizeof err_);
  ASSERT_NE(rec, nullptr) << err_;
  msrtrace_regs r = LongModeRegs();
  msrtrace_exit w;
  msrtrace_exit_init(&w, 1);
  msrtrace_exit rd;
  msrtrace_exit_init(&rd, 0);
  msrtrace_outcome out;
  const struct {
    const msrtrace_exit* exit;
    uint32_t index;
    uint64_t value;
  } steps[] = {{&w, kCounter, 1},
               {&w, kCounter, 1},
               {&w, kCounter, 3},
               {&rd, kCounter, 0},
               {&w, kScratch, 77},
               {&rd, kScratch, 0},
               {&rd, 0x277, 0},
               {&rd, 0x4f00ffff, 0},
               // Retired after a #GP whose vector fields the caller leaves behind with only
               // pending_valid cleared: they must not become state (the final digest).
               {&rd, 0x277, 0}};
  for (const auto& s : steps) {
    r.gpr[1] = s.index;
    r.gpr[0] = s.value & 0xffffffff;
    r.gpr[2] = s.value >> 32;
    r.pending_valid = 0;
    ASSERT_EQ(msrtrace_recorder_handle(rec, 0, s.exit, &r, &out, err_, sizeof err_), MSRTRACE_OK)
        << err_;
  }
  EXPECT_EQ(msrtrace_recorder_events(rec), 9u);
  ASSERT_EQ(msrtrace_recorder_close(rec, err_, sizeof err_), MSRTRACE_OK) << err_;
  msrtrace_recorder_destroy(rec);
  msrtrace_controller_destroy(c);

  msrtrace_replay_result result;
  ASSERT_EQ(msrtrace_replay_file(path.c_str(), nullptr, 2, 1, &result, err_, sizeof err_),
            MSRTRACE_OK)
      << err_;
  EXPECT_EQ(result.events, 9u);
  EXPECT_EQ(result.faults, 2u);
  EXPECT_EQ(result.complete, 1u);

  d.read_bias = 1;  // The handler now reads one more than it recorded.
  EXPECT_EQ(msrtrace_replay_file(path.c_str(), nullptr, 1, 0, &result, err_, sizeof err_),
            MSRTRACE_DIVERGED);
  EXPECT_GE(result.divergences, 1u);
  EXPECT_NE(std::string(err_).find("TEST_DEVICE"), std::string::npos) << err_;
  d.read_bias = 0;
  unlink(path.c_str());
  rmdir(dir.c_str());
}

TEST_F(CApiTest, GoldenTracesOfTheBaseReplayCleanThroughTheExtendingSet) {
  const std::string golden = GoldenDir();
  ASSERT_FALSE(golden.empty()) << "run through ctest (it sets MSRTRACE_SOURCE_DIR)";
  Device d;
  const std::string name = Register(&d, false);
  for (const char* file : {"linux-boot-intel-icx.trace", "random-amd-zen3.trace",
                           "table-sweep-intel-minimal.trace", "faults.trace"}) {
    const std::string path = golden + "/" + file;
    msrtrace_replay_result result;
    EXPECT_EQ(msrtrace_replay_file(path.c_str(), name.c_str(), 2, 1, &result, err_, sizeof err_),
              MSRTRACE_OK)
        << file << ": " << err_;
    EXPECT_GT(result.events, 0u) << file;
  }
  EXPECT_EQ(msrtrace_replay_file((golden + "/no-such.trace").c_str(), nullptr, 1, 0, nullptr, err_,
                                 sizeof err_),
            MSRTRACE_NOT_FOUND);
}

TEST_F(CApiTest, FuzzerRunsGoldenSeedsCleanOnACorrectSet) {
  Device d;
  const std::string name = Register(&d, false);
  msrtrace_fuzzer* f = msrtrace_fuzzer_create(name.c_str(), err_, sizeof err_);
  ASSERT_NE(f, nullptr) << err_;
  const std::string golden = GoldenDir();
  const char* seeds[] = {golden.c_str()};
  msrtrace_fuzz_stats stats;
  EXPECT_EQ(msrtrace_fuzzer_run(f, seeds, 1, 100, 1, &stats, err_, sizeof err_), MSRTRACE_OK)
      << err_;
  EXPECT_GE(stats.seeds, 10u);
  EXPECT_EQ(stats.runs, stats.seeds + 100);
  msrtrace_fuzzer_destroy(f);
}

TEST_F(CApiTest, FuzzerOraclesFindAHandlerThatIsNotFaultAtomic) {
  Device d;
  const std::string name = Register(&d, true);
  msrtrace_fuzzer* f = msrtrace_fuzzer_create(name.c_str(), err_, sizeof err_);
  ASSERT_NE(f, nullptr) << err_;
  msrtrace_fuzz_stats stats;
  ASSERT_EQ(msrtrace_fuzzer_run(f, nullptr, 0, 20000, 1, &stats, err_, sizeof err_),
            MSRTRACE_FINDING);
  EXPECT_NE(std::string(err_).find("fault-atomicity"), std::string::npos) << err_;
  msrtrace_fuzzer_destroy(f);
}

}  // namespace
