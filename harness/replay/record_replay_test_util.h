// Test helpers shared by recorder_test.cc and replay_test.cc: small handler sets registered by
// name (so replay builds them from a trace header), and trace rewriting.
#ifndef MSRTRACE_HARNESS_RECORD_REPLAY_TEST_UTIL_H_
#define MSRTRACE_HARNESS_RECORD_REPLAY_TEST_UTIL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "harness/core/controller.h"
#include "harness/core/handler_registry.h"
#include "harness/core/status_macros.h"
#include "harness/core/test_tmpdir.h"
#include "harness/replay/recorder.h"
#include "harness/replay/replay.h"
#include "harness/trace/trace_file.h"

namespace msrtrace::testing_util {

inline constexpr uint32_t kStorageMsr = 0x1234;   // Plain storage; bit 63 set -> #GP.
inline constexpr uint32_t kLeakyMsr = 0x1235;     // Changes its slot, then faults (not atomic).
inline constexpr uint32_t kScribbleMsr = 0x1236;  // Writes guest memory at the value, then #GP.
inline constexpr uint32_t kCounterMsr = 0x1237;   // Reads count up in a global (not in state).
inline constexpr uint32_t kClockMsr = 0x1238;     // Reads return exit.host_tsc (volatile).
inline constexpr uint32_t kBrokenMsr = 0x1239;    // Reads fail with a VMM error.
inline constexpr uint32_t kMemoryMsr = 0x123a;    // Writes store the value at GPA 0x5000.

inline uint64_t g_counter = 0;  // State outside the snapshot: nondeterministic across replays.

class TestMsr : public MsrHandler {
 public:
  explicit TestMsr(StateLayout& layout)
      : storage_(layout.AddVcpuSlot("TEST.storage")), leaky_(layout.AddVcpuSlot("TEST.leaky")) {}
  absl::StatusOr<MsrResult> Read(uint32_t index, ExitContext& ctx) override {
    switch (index) {
      case kStorageMsr:
        return MsrResult::Ok(ctx.slot(storage_));
      case kCounterMsr:
        return MsrResult::Ok(++g_counter);
      case kClockMsr:
        return MsrResult::Ok(ctx.exit().host_tsc);
      case kBrokenMsr:
        return absl::InternalError("device on fire");
      default:
        return MsrResult::Ok(ctx.slot(leaky_));
    }
  }
  absl::StatusOr<MsrResult> Write(uint32_t index, uint64_t value, ExitContext& ctx) override {
    switch (index) {
      case kStorageMsr:
        if (value >> 63) return MsrResult::Gp();
        ctx.slot(storage_) = value;
        return MsrResult::Ok();
      case kLeakyMsr:
        ctx.slot(leaky_) = value;  // Bug: commits before deciding to fault.
        return MsrResult::Gp();
      case kScribbleMsr: {
        const uint32_t junk = 0xdeadbeef;
        ctx.WriteGuest(value, &junk, sizeof(junk));  // Bug: writes memory, then faults.
        return MsrResult::Gp();
      }
      case kMemoryMsr:
        ctx.WriteGuest(0x5000, &value, sizeof(value));
        return MsrResult::Ok();
      default:
        return MsrResult::Gp();
    }
  }
  absl::string_view MsrName(uint32_t index) const override {
    return index == kStorageMsr ? "TEST_STORAGE" : "";
  }

 private:
  SlotId storage_, leaky_;
};

inline absl::Status InstallTestSet(Controller& c, const CpuProfile&) {
  MsrHandler* h = c.Adopt(std::make_unique<TestMsr>(c.layout()));
  if (!c.InsertRange(kStorageMsr, kMemoryMsr, h)) return absl::InternalError("taken");
  return absl::OkStatus();
}

// Registers the "test-set" handler set once.
inline void RegisterTestSet() {
  static const bool registered =
      RegisterHandlerSet({"test-set", "record/replay tests", &InstallTestSet});
  (void)registered;
}

inline TraceHeader TestHeader(uint32_t vcpus = 2,
                              UnknownMsrPolicy policy = UnknownMsrPolicy::kInjectGp) {
  TraceHeader h;
  h.producer = "record_replay_test";
  h.cpu_profile = "intel-icx";
  h.handler_set = "test-set";
  h.vcpu_count = vcpus;
  h.unknown_msr_policy = policy;
  return h;
}

// A path in this test process's private temporary directory (harness/core/test_tmpdir.h).
inline std::string TempPath(const std::string& name) { return testing_util::TestTempPath(name); }

// A recording session on a machine built from `header`.
struct Session {
  std::unique_ptr<Machine> machine;
  std::unique_ptr<Recorder> recorder;
  uint64_t tsc = 1000;

  absl::StatusOr<Outcome> Exit(uint32_t v, Access a, uint32_t index, uint64_t value = 0,
                               uint8_t len = 2) {
    Vcpu& cpu = machine->vcpus[v];
    cpu.regs.pending = PendingException{};
    cpu.regs.reg(Gpr::kRcx) = index;
    if (a == Access::kWrite) {
      cpu.regs.reg(Gpr::kRax) = value & 0xffffffffull;
      cpu.regs.reg(Gpr::kRdx) = value >> 32;
    }
    msrtrace::Exit e = a == Access::kRead ? Exit::Rdmsr(len) : Exit::Wrmsr(len);
    e.host_tsc = tsc += 100;
    return recorder->Handle(e, cpu, machine->memory);
  }
};

inline absl::StatusOr<Session> StartSession(const std::string& path, const TraceHeader& header,
                                            RecorderOptions options = {}) {
  RegisterTestSet();
  Session s;
  ASSIGN_OR_RETURN(s.machine, BuildMachine(header));
  for (Vcpu& v : s.machine->vcpus) {
    v.regs.efer = kEferLme | kEferLma;
    v.regs.cs_l = true;
    v.regs.rip = 0x1000 * (v.id + 1);
  }
  ASSIGN_OR_RETURN(s.recorder,
                   Recorder::Start(path, header, *s.machine->controller, s.machine->vcpus,
                                   s.machine->memory, std::move(options)));
  return s;
}

// Copies the trace at `in` to `out`, letting `edit` change each event (return false to drop
// it). The trailer keeps the original final-state digest.
inline absl::Status RewriteTrace(const std::string& in, const std::string& out,
                                 const std::function<bool(ExitEvent&)>& edit) {
  ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> r, TraceReader::Open(in));
  ASSIGN_OR_RETURN(std::unique_ptr<TraceWriter> w,
                   TraceWriter::Create(out, r->header(), r->snapshot()));
  ExitEvent ev;
  while (true) {
    ASSIGN_OR_RETURN(const bool more, r->Next(&ev));
    if (!more) break;
    if (edit(ev)) RETURN_IF_ERROR(w->Append(ev));
  }
  return w->Close(r->end() == TraceEnd::kComplete ? r->trailer().final_state_digest : 0);
}

}  // namespace msrtrace::testing_util

#endif  // MSRTRACE_HARNESS_RECORD_REPLAY_TEST_UTIL_H_
