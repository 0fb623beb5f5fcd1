// Record/replay of userspace MSR routing and host-initiated events on the reference handler
// set: what a trace header's routing and a host event mean end to end (docs/trace-format.md,
// "MSR routing" and "Host-initiated events").
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/core/kvm_save_list.h"
#include "harness/core/test_tmpdir.h"
#include "harness/replay/machine.h"
#include "harness/replay/recorder.h"
#include "harness/replay/replay.h"
#include "harness/trace/trace_file.h"

namespace msrtrace {
namespace {

constexpr uint32_t kPat = 0x277;
constexpr uint32_t kEfer = 0xc0000080;
// The "reference+fifo" set's FIFO device (handlers/fifo.h); an index the in-kernel reference
// set does not know. (harness/ includes no handlers/ header: the sets come from the registry.)
constexpr uint32_t kFifoMsr = 0xabc;

TraceHeader Header() {
  TraceHeader h;
  h.producer = "routing_replay_test";
  h.cpu_profile = "intel-icx";
  h.handler_set = "reference";
  h.vcpu_count = 1;
  return h;
}

struct Session {
  std::unique_ptr<Machine> machine;
  std::unique_ptr<Recorder> recorder;
  std::string path;

  Outcome Rdmsr(uint32_t index) {
    Vcpu& v = machine->vcpus[0];
    v.regs.reg(Gpr::kRcx) = index;
    v.regs.pending = PendingException();
    absl::StatusOr<Outcome> o = recorder->Handle(Exit::Rdmsr(), v, machine->memory);
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? *o : Outcome();
  }
  Outcome Wrmsr(uint32_t index, uint64_t value) {
    Vcpu& v = machine->vcpus[0];
    v.regs.reg(Gpr::kRcx) = index;
    v.regs.reg(Gpr::kRax) = value & 0xffffffffull;
    v.regs.reg(Gpr::kRdx) = value >> 32;
    v.regs.pending = PendingException();
    absl::StatusOr<Outcome> o = recorder->Handle(Exit::Wrmsr(), v, machine->memory);
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? *o : Outcome();
  }
};

// Header() for a recording with host events (format 1.2).
TraceHeader HostHeader() {
  TraceHeader h = Header();
  h.host_events = true;
  return h;
}

Session Start(const TraceHeader& h, const std::string& name) {
  Session s;
  absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(h);
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return s;
  s.machine = std::move(*m);
  s.path = testing_util::TestTempPath(name);
  absl::StatusOr<std::unique_ptr<Recorder>> r =
      Recorder::Start(s.path, h, *s.machine->controller, s.machine->vcpus, s.machine->memory);
  EXPECT_TRUE(r.ok()) << r.status();
  if (r.ok()) s.recorder = std::move(*r);
  return s;
}

ReplayResult Replay(Session& s) {
  EXPECT_TRUE(s.recorder->Close(s.machine->vcpus).ok());
  absl::StatusOr<ReplayResult> r = ReplayFile(s.path);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : ReplayResult();
}

struct KindSink : DivergenceSink {
  Divergence* Add(DivergenceKind kind) override {
    kinds.push_back(kind);
    return nullptr;
  }
  std::vector<DivergenceKind> kinds;
};

// The divergence kinds of `ev` run on a fresh machine for `h`.
std::vector<DivergenceKind> Check(const TraceHeader& h, const ExitEvent& ev) {
  absl::StatusOr<std::unique_ptr<Machine>> m = BuildMachine(h);
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return {};
  KindSink sink;
  ControllerEngine engine((*m)->controller.get());
  ExitChecker checker(m->get(), &engine, &sink);
  EXPECT_TRUE(checker.Run(ev).ok());
  return sink.kinds;
}

ExitEvent FirstEvent(const std::string& path) {
  ExitEvent ev;
  absl::StatusOr<std::unique_ptr<TraceReader>> reader = TraceReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return ev;
  absl::StatusOr<bool> more = (*reader)->Next(&ev);
  EXPECT_TRUE(more.ok() && *more);
  return ev;
}

std::string FirstDivergence(const ReplayResult& r) {
  if (r.divergences.empty()) return "";
  const Divergence& d = r.divergences[0];
  return absl::StrCat(DivergenceKindName(d.kind), " at seq ", d.seq, ": expected ", d.expected,
                      " actual ", d.actual);
}

// The userspace handler set answers FILTER and UNKNOWN exits; the header carries the routing
// and replay reproduces every route (kvm_emulate_rdmsr/wrmsr, kvm_msr_user_space).
TEST(RoutingReplayTest, RoutedTraceReplaysCleanWithItsRoutes) {
  TraceHeader h = Header();
  h.routing.user_space_msr_mask = kMsrExitReasonFilter | kMsrExitReasonUnknown;
  ASSERT_TRUE(DenyListFilter({kPat}, &h.routing.filter).ok());
  h.routing.userspace_handler_set = "reference+fifo";
  Session s = Start(h, "routed.trace");
  ASSERT_NE(s.recorder, nullptr);
  EXPECT_EQ(s.Wrmsr(kPat, 0x0606060606060606ull).route, MsrRoute::kUserspaceFilter);
  EXPECT_EQ(s.Rdmsr(kPat).value, 0x0606060606060606ull);
  EXPECT_EQ(s.Wrmsr(kFifoMsr, 7).route, MsrRoute::kUserspaceUnknown);
  EXPECT_EQ(s.Rdmsr(kEfer).route, MsrRoute::kKernel);
  // The in-kernel PAT is untouched: the userspace set keeps its own state.
  absl::StatusOr<uint64_t> pat =
      s.machine->controller->HostRead(kPat, s.machine->vcpus[0], s.machine->memory);
  ASSERT_TRUE(pat.ok());
  EXPECT_EQ(*pat, 0x0007040600070406ull);
  const ReplayResult r = Replay(s);
  EXPECT_TRUE(r.clean()) << FirstDivergence(r);
  EXPECT_EQ(r.events, 4u);
  EXPECT_EQ(r.header.routing, h.routing);
}

// Replay compares the recorded route: the same trace under a header without the FILTER reason
// takes the filter's #GP path and diverges.
TEST(RoutingReplayTest, ReplayReportsAnotherRoute) {
  TraceHeader h = Header();
  h.routing.user_space_msr_mask = kMsrExitReasonInval;
  ASSERT_TRUE(DenyListFilter({kPat}, &h.routing.filter).ok());
  Session s = Start(h, "route_gp.trace");
  ASSERT_NE(s.recorder, nullptr);
  const Outcome o = s.Rdmsr(kPat);
  EXPECT_EQ(o.kind, Outcome::Kind::kGpInjected);
  EXPECT_EQ(o.route, MsrRoute::kFilterGp);
  const ReplayResult r = Replay(s);
  EXPECT_TRUE(r.clean()) << FirstDivergence(r);

  ExitEvent ev = FirstEvent(s.path);
  EXPECT_EQ(ev.route, MsrRoute::kFilterGp);
  EXPECT_TRUE(Check(h, ev).empty());
  // Claim the recording took the in-kernel path: the route differs.
  ev.route = MsrRoute::kKernel;
  EXPECT_THAT(Check(h, ev), ::testing::ElementsAre(DivergenceKind::kRoute));
}

// KVM_GET_MSRS/KVM_SET_MSRS of the save list in the kernel's order (msrs_to_save, then
// emulated_msrs) is a round trip: the guest-visible state afterwards is what it was.
TEST(HostEventsTest, SaveRestoreRoundTripLeavesGuestStateUnchanged) {
  Session s = Start(HostHeader(), "save_restore.trace");
  ASSERT_NE(s.recorder, nullptr);
  s.Wrmsr(kPat, 0x0000000000070406ull);
  s.Wrmsr(0x174, 0x10);  // SYSENTER_CS
  const uint64_t before = s.machine->Digest();
  const uint64_t recorded = s.recorder->events_recorded();
  ASSERT_TRUE(s.recorder->SaveRestore(s.machine->vcpus[0], s.machine->memory, 0x1000, 0).ok());
  EXPECT_EQ(s.machine->Digest(), before);
  const std::vector<uint32_t> list = KvmSaveRestoreList(*s.machine->controller);
  ASSERT_FALSE(list.empty());
  EXPECT_EQ(list[0], 0x174u);  // msrs_to_save_base starts with SYSENTER_CS.
  EXPECT_GE(s.recorder->events_recorded() - recorded, list.size());
  const ReplayResult r = Replay(s);
  EXPECT_TRUE(r.clean()) << FirstDivergence(r);
}

// A refused host write is a failed KVM_SET_MSRS entry (HOST_FAILED): no register effect, no
// #GP queued, no state change; replay reproduces it.
TEST(HostEventsTest, FailedHostWriteIsRecordedAsHostFailed) {
  Session s = Start(HostHeader(), "host_failed.trace");
  ASSERT_NE(s.recorder, nullptr);
  Vcpu& v = s.machine->vcpus[0];
  const VcpuRegs regs = v.regs;
  // PAT with a reserved memory type (2) is refused even for the host (kvm_pat_valid).
  absl::StatusOr<Outcome> o =
      s.recorder->HostAccess(Access::kWrite, kPat, 0x0202020202020202ull, v, s.machine->memory);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->kind, Outcome::Kind::kGpInjected);  // Refused.
  EXPECT_EQ(v.regs, regs);                         // No #GP queued, RIP unchanged.
  o = s.recorder->HostAccess(Access::kRead, kPat, 0, v, s.machine->memory);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->value, 0x0007040600070406ull);

  const ReplayResult r = Replay(s);
  EXPECT_TRUE(r.clean()) << FirstDivergence(r);
  const ExitEvent ev = FirstEvent(s.path);
  EXPECT_TRUE(ev.host_initiated);
  EXPECT_EQ(ev.kind, RecordedKind::kHostFailed);
}

// A host event whose recorded value disagrees with the handler is a value divergence (the
// host path is compared like a guest exit's).
TEST(HostEventsTest, HostReadValueIsCompared) {
  Session s = Start(HostHeader(), "host_value.trace");
  ASSERT_NE(s.recorder, nullptr);
  ASSERT_TRUE(
      s.recorder->HostAccess(Access::kRead, kPat, 0, s.machine->vcpus[0], s.machine->memory).ok());
  ASSERT_TRUE(s.recorder->Close(s.machine->vcpus).ok());
  ExitEvent ev = FirstEvent(s.path);
  EXPECT_TRUE(Check(Header(), ev).empty());
  ev.rax_out ^= 1;
  EXPECT_THAT(Check(Header(), ev), ::testing::ElementsAre(DivergenceKind::kValue));
}

// A recording started without host_events refuses a host event (a reader before format 1.2
// would take it for a guest exit): the recording fails and says why.
TEST(HostEventsTest, RecordingNotDeclaringHostEventsRefusesThem) {
  Session s = Start(Header(), "undeclared.trace");
  ASSERT_NE(s.recorder, nullptr);
  (void)s.recorder->HostAccess(Access::kRead, kPat, 0, s.machine->vcpus[0], s.machine->memory);
  const absl::Status st = s.recorder->Close(s.machine->vcpus);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("host-initiated"));
}

// The version a recording is written with: 1.2 with routing or host events, else 1.0.
TEST(HostEventsTest, RoutedAndHostRecordingsAreFormat12) {
  TraceHeader routed = Header();
  routed.routing.user_space_msr_mask = kMsrExitReasonUnknown;
  for (const auto& [h, minor] : {std::pair<TraceHeader, uint32_t>{Header(), 0},
                                 {routed, kHostEventsMinor},
                                 {HostHeader(), kHostEventsMinor}}) {
    Session s = Start(h, "version.trace");
    ASSERT_NE(s.recorder, nullptr);
    s.Rdmsr(kEfer);
    ASSERT_TRUE(s.recorder->Close(s.machine->vcpus).ok());
    absl::StatusOr<std::unique_ptr<TraceReader>> reader = TraceReader::Open(s.path);
    ASSERT_TRUE(reader.ok()) << reader.status();
    EXPECT_EQ((*reader)->header().format_minor, minor);
  }
}

}  // namespace
}  // namespace msrtrace
