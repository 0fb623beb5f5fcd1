#include "harness/core/handler_registry.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace msrtrace {
namespace {

// Definitions live in unique_ptrs so the pointers FindHandlerSet returns stay valid while the
// registry grows. Entries are never removed.
class Registry {
 public:
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
  void AddCatalog(ProfileCatalog c) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (c != nullptr && std::find(catalogs_.begin(), catalogs_.end(), c) == catalogs_.end()) {
      catalogs_.push_back(c);
    }
  }
  std::vector<ProfileCatalog> Catalogs() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return catalogs_;
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
  std::vector<ProfileCatalog> catalogs_ ABSL_GUARDED_BY(mu_);
};

Registry& GetRegistry() {
  static Registry* registry = new Registry();  // Thread-safe init; never destroyed.
  return *registry;
}

}  // namespace

bool RegisterHandlerSet(HandlerSetDef def) { return GetRegistry().Add(std::move(def)); }

const HandlerSetDef* FindHandlerSet(absl::string_view name) { return GetRegistry().Find(name); }

std::vector<const HandlerSetDef*> ListHandlerSets() { return GetRegistry().List(); }

void RegisterProfileCatalog(ProfileCatalog catalog) { GetRegistry().AddCatalog(catalog); }

const CpuProfile* FindRegisteredProfile(absl::string_view name) {
  for (ProfileCatalog c : GetRegistry().Catalogs()) {
    for (const CpuProfile& p : c()) {
      if (p.name == name) return &p;
    }
  }
  return nullptr;
}

std::vector<std::string> RegisteredProfileNames() {
  std::vector<std::string> out;
  for (ProfileCatalog c : GetRegistry().Catalogs()) {
    for (const CpuProfile& p : c()) out.push_back(p.name);
  }
  return out;
}

}  // namespace msrtrace
