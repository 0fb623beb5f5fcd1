#include "handlers/handler_set.h"

#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "handlers/fifo.h"
#include "handlers/msr_table.h"
#include "harness/status_macros.h"

namespace msrtrace {
namespace {

absl::Status InstallReferenceWithFifo(Controller& controller, const CpuProfile& profile) {
  RETURN_IF_ERROR(InstallReferenceHandlers(controller, profile));
  return InstallFifo(controller, kFifoMsrIndex);
}

// Definitions live in unique_ptrs so the pointers FindHandlerSet returns stay valid while the
// registry grows. Entries are never removed.
class Registry {
 public:
  Registry() {
    sets_.push_back(std::make_unique<HandlerSetDef>(HandlerSetDef{
        "reference", "Linux KVM's MSR emulation for the CPU profile", &InstallReferenceHandlers}));
    sets_.push_back(std::make_unique<HandlerSetDef>(
        HandlerSetDef{"reference+fifo", "the reference set plus the seed's FIFO device at 0xabc",
                      &InstallReferenceWithFifo}));
  }

  bool Add(HandlerSetDef def) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (def.install == nullptr || FindLocked(def.name) != nullptr) return false;
    sets_.push_back(std::make_unique<HandlerSetDef>(std::move(def)));
    return true;
  }
  const HandlerSetDef* Find(absl::string_view name) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return FindLocked(name);
  }
  std::vector<const HandlerSetDef*> List() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    std::vector<const HandlerSetDef*> out;
    out.reserve(sets_.size());
    for (const auto& s : sets_) out.push_back(s.get());
    return out;
  }

 private:
  const HandlerSetDef* FindLocked(absl::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& s : sets_) {
      if (s->name == name) return s.get();
    }
    return nullptr;
  }

  absl::Mutex mu_;
  std::vector<std::unique_ptr<HandlerSetDef>> sets_ ABSL_GUARDED_BY(mu_);
};

Registry& GetRegistry() {
  static Registry* registry = new Registry();  // Thread-safe init; never destroyed.
  return *registry;
}

}  // namespace

bool RegisterHandlerSet(HandlerSetDef def) { return GetRegistry().Add(std::move(def)); }

const HandlerSetDef* FindHandlerSet(absl::string_view name) { return GetRegistry().Find(name); }

std::vector<const HandlerSetDef*> ListHandlerSets() { return GetRegistry().List(); }

}  // namespace msrtrace
