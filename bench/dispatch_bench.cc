// Exit-path cost of msrtrace's Controller against the seed's design (an ordered map from index to
// boxed handler, BTreeMap<u32, Box<dyn Msr>>; docs/design.md, "the seed").
//
// Both controllers get the same handler objects at the same indices (the reference set's index
// layout: a few dozen architectural MSRs, the MCE banks, the KVM PV range and the x2APIC range)
// and apply the same architectural rules; only the lookup structure differs. The access mix
// replays a stream of indices drawn from the registered set plus a share of unknown indices.
//
//   build/default/bench/dispatch_bench --benchmark_repetitions=5
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "harness/core/controller.h"

namespace msrtrace {
namespace {

class StorageMsr : public MsrHandler {
 public:
  explicit StorageMsr(SlotId slot) : slot_(slot) {}
  absl::StatusOr<MsrResult> Read(uint32_t, ExitContext& ctx) override {
    return MsrResult::Ok(ctx.slot(slot_));
  }
  absl::StatusOr<MsrResult> Write(uint32_t, uint64_t v, ExitContext& ctx) override {
    ctx.slot(slot_) = v;
    return MsrResult::Ok();
  }

 private:
  SlotId slot_;
};

// The seed's design: std::map lookup, otherwise the same rules as Controller::Handle.
class MapController {
 public:
  bool Insert(uint32_t index, MsrHandler* h) { return msrs_.emplace(index, h).second; }
  absl::StatusOr<Outcome> Handle(const Exit& exit, Vcpu& vcpu, GuestMemory& mem) {
    const absl::optional<Access> access = MsrAccessOf(exit);
    if (!access) return ExitNotHandledError(exit);
    auto& r = vcpu.regs;
    const auto index = static_cast<uint32_t>(r.reg(Gpr::kRcx));
    Outcome out;
    out.access = *access;
    out.index = index;
    auto it = msrs_.find(index);
    if (it == msrs_.end()) {
      r.pending = PendingException::Gp0();
      out.kind = Outcome::Kind::kGpInjected;
      return out;
    }
    ExitContext ctx(exit, vcpu, vm_slots_, mem, writes_, false);
    const uint64_t value = (r.reg(Gpr::kRdx) << 32) | (r.reg(Gpr::kRax) & 0xffffffffu);
    absl::StatusOr<MsrResult> res = *access == Access::kRead ? it->second->Read(index, ctx)
                                                             : it->second->Write(index, value, ctx);
    if (!res.ok()) return res.status();
    if (res->kind != MsrResult::Kind::kOk) {
      r.pending = PendingException::Gp0();
      out.kind = Outcome::Kind::kGpInjected;
      return out;
    }
    if (*access == Access::kRead) {
      r.reg(Gpr::kRax) = res->value & 0xffffffffu;
      r.reg(Gpr::kRdx) = res->value >> 32;
    }
    r.rip += exit.instruction_length;
    if (!r.in_64bit_mode()) r.rip &= 0xffffffffu;
    out.kind = Outcome::Kind::kRetired;
    return out;
  }

 private:
  std::map<uint32_t, MsrHandler*> msrs_;
  std::vector<uint64_t> vm_slots_;
  WriteLog writes_;
};

std::vector<uint32_t> ReferenceLayoutIndices() {
  std::vector<uint32_t> idx = {
      0x10,       0x11,       0x12,       0x17,       0x1b,       0x3a,       0x3b,
      0x48,       0x49,       0x8b,       0xce,       0xfe,       0x10b,      0x174,
      0x175,      0x176,      0x179,      0x17a,      0x17b,      0x1a0,      0x277,
      0x2ff,      0x6e0,      0xc0000080, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084,
      0xc0000100, 0xc0000101, 0xc0000102, 0xc0000103};
  for (uint32_t i = 0x200; i < 0x210; ++i) idx.push_back(i);
  for (uint32_t i : {0x250u, 0x258u, 0x259u}) idx.push_back(i);
  for (uint32_t i = 0x268; i < 0x270; ++i) idx.push_back(i);
  for (uint32_t i = 0x400; i < 0x400 + 4 * 23; ++i) idx.push_back(i);
  for (uint32_t i = 0x4b564d00; i <= 0x4b564d08; ++i) idx.push_back(i);
  for (uint32_t i = 0x800; i <= 0x8ff; ++i) idx.push_back(i);
  return idx;
}

struct Fixture {
  // `unknown_percent` of the accesses go to unregistered indices (guests probe for MSRs).
  explicit Fixture(int unknown_percent) {
    indices = ReferenceLayoutIndices();
    for (uint32_t i : indices) {
      MsrHandler* h = ctl.Adopt(
          std::make_unique<StorageMsr>(ctl.layout().AddVcpuSlot("S" + std::to_string(i))));
      ctl.Insert(i, h);
      map.Insert(i, h);
    }
    vcpu = ctl.CreateVcpu(0);
    vcpu.regs.efer = kEferLma | kEferLme;
    vcpu.regs.cs_l = true;
    std::mt19937_64 rng(1);
    for (int i = 0; i < 4096; ++i) {
      const bool unknown = static_cast<int>(rng() % 100) < unknown_percent;
      const uint32_t index =
          unknown ? static_cast<uint32_t>(rng()) : indices[rng() % indices.size()];
      stream.push_back(index);
    }
  }
  Controller ctl;
  MapController map;
  Vcpu vcpu;
  SparseMemory mem;
  std::vector<uint32_t> indices;
  std::vector<uint32_t> stream;
};

template <typename C>
void RunExits(benchmark::State& state, C& c, Fixture& f) {
  const Exit rd = Exit::Rdmsr(), wr = Exit::Wrmsr();
  size_t i = 0;
  for (auto _ : state) {
    const uint32_t index = f.stream[i++ & 4095];
    f.vcpu.regs.reg(Gpr::kRcx) = index;
    f.vcpu.regs.reg(Gpr::kRax) = i;
    f.vcpu.regs.pending = {};
    auto out = c.Handle((i & 1) ? rd : wr, f.vcpu, f.mem);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}

// Argument: percentage of accesses to unknown indices.
void BM_ControllerDispatch(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  RunExits(state, f.ctl, f);
}
BENCHMARK(BM_ControllerDispatch)->Arg(0)->Arg(10);

void BM_SeedOrderedMapDispatch(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  RunExits(state, f.map, f);
}
BENCHMARK(BM_SeedOrderedMapDispatch)->Arg(0)->Arg(10);

// Lookup alone, without the handler call and register effects.
void BM_ControllerFind(benchmark::State& state) {
  Fixture f(10);
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(f.ctl.Find(f.stream[i++ & 4095]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ControllerFind);

void BM_StdMapFind(benchmark::State& state) {
  Fixture f(10);
  std::map<uint32_t, MsrHandler*> m;
  for (uint32_t idx : f.indices) m.emplace(idx, f.ctl.Find(idx));
  size_t i = 0;
  for (auto _ : state) {
    auto it = m.find(f.stream[i++ & 4095]);
    benchmark::DoNotOptimize(it);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StdMapFind);

}  // namespace
}  // namespace msrtrace

BENCHMARK_MAIN();
