// The guest-physical memory seam (the seed's Probe). Handlers that write guest memory (kvm-clock
// structures, steal time) go through ExitContext, which logs every write so that replay can
// compare them with a recording.
#ifndef MSRTRACE_HARNESS_GUEST_MEMORY_H_
#define MSRTRACE_HARNESS_GUEST_MEMORY_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"

namespace msrtrace {

inline constexpr uint64_t kPageSize = 4096;

// Guest-physical memory. Implementations decide which addresses are backed; an access to an
// unbacked address fails without side effects. Not thread-safe.
class GuestMemory {
 public:
  virtual ~GuestMemory() = default;
  // Copies `len` bytes at `gpa` into `dst`. Returns false (and leaves `dst` unspecified) when
  // any byte of the range is not backed.
  virtual bool Read(uint64_t gpa, void* dst, size_t len) const = 0;
  // Copies `len` bytes from `src` to `gpa`. Returns false and writes nothing when any byte of
  // the range is not backed.
  virtual bool Write(uint64_t gpa, const void* src, size_t len) = 0;
};

// Sparse in-memory guest RAM: [0, size) is backed; pages are zero until first written and are
// allocated on that first write (so steady-state exits do not allocate).
class SparseMemory : public GuestMemory {
 public:
  static constexpr uint64_t kDefaultSize = 4ull << 30;  // 4 GiB of guest-physical space.
  explicit SparseMemory(uint64_t size = kDefaultSize) : size_(size) {}
  SparseMemory(const SparseMemory& other);
  SparseMemory& operator=(const SparseMemory& other);

  bool Read(uint64_t gpa, void* dst, size_t len) const override;
  bool Write(uint64_t gpa, const void* src, size_t len) override;

  uint64_t size() const { return size_; }
  // Number of pages ever written (allocated).
  size_t PageCount() const { return pages_.size(); }
  // Pages ever written, sorted by guest-physical address (for snapshots and digests).
  std::vector<uint64_t> PageAddresses() const;
  // Calls f(gpa, page bytes) for every page ever written, in no particular order (it may differ
  // between two memories with the same pages); allocates nothing.
  template <typename F>
  void ForEachPage(F&& f) const {
    for (const auto& [gpa, entry] : pages_) f(gpa, static_cast<const uint8_t*>(entry->data.data()));
  }
  // The 4 KiB page at page-aligned `gpa`, or nullptr if it was never written.
  const uint8_t* Page(uint64_t gpa) const;
  // Replaces the page at page-aligned `gpa`. Returns false if gpa is unaligned or not backed.
  bool SetPage(uint64_t gpa, absl::Span<const uint8_t> bytes);
  void Clear() {
    pages_.clear();
    dirty_.clear();
    replaced_ = true;
  }

  // Dirty tracking, for restoring a machine in time proportional to what changed
  // (harness/replay/machine.h): pages written (Write, SetPage) since the last ClearDirty(), each
  // once, in first-write order. replaced() tells that the page set was replaced wholesale since
  // (Clear, assignment), so only a full copy restores it.
  absl::Span<const uint64_t> dirty_pages() const { return dirty_; }
  bool replaced() const { return replaced_; }
  // Puts back, from `image`, every page written since the last ClearDirty() (dropping those
  // `image` lacks), or copies `image` whole when the page set was replaced; then ClearDirty().
  void RollBack(const SparseMemory& image);
  void ClearDirty() {
    for (uint64_t gpa : dirty_) pages_[gpa]->dirty = false;
    dirty_.clear();
    replaced_ = false;
  }

 private:
  using PageData = std::array<uint8_t, kPageSize>;
  struct PageEntry {
    PageData data{};
    bool dirty = false;
  };
  PageEntry& Touch(uint64_t page);
  // Page buffers dropped by RollBack and assignment are kept (up to kMaxSpare) and reused, so a
  // machine reset between runs does not free and allocate the pages each run writes.
  std::unique_ptr<PageEntry> TakeSpare();
  void Recycle(std::unique_ptr<PageEntry> entry);
  static constexpr size_t kMaxSpare = 64;

  uint64_t size_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<PageEntry>> pages_;
  std::vector<std::unique_ptr<PageEntry>> spare_;
  std::vector<uint64_t> dirty_;
  bool replaced_ = false;
};

// One guest-memory write made while handling an exit. `offset` indexes WriteLog::bytes().
struct MemoryWrite {
  uint64_t gpa = 0;
  uint32_t offset = 0;
  uint32_t len = 0;
};

// The guest-memory writes of one exit, in order. Reused across exits: Clear() keeps capacity, so
// the steady state does not allocate.
class WriteLog {
 public:
  void Clear() {
    writes_.clear();
    bytes_.clear();
  }
  void Append(uint64_t gpa, const void* src, size_t len);
  absl::Span<const MemoryWrite> writes() const { return writes_; }
  absl::Span<const uint8_t> bytes() const { return bytes_; }
  absl::Span<const uint8_t> BytesOf(const MemoryWrite& w) const {
    return absl::MakeConstSpan(bytes_).subspan(w.offset, w.len);
  }
  bool empty() const { return writes_.empty(); }
  // Stable digest of (gpa, len, bytes) of every write, in order; 0 when empty.
  uint64_t Digest() const;

 private:
  std::vector<MemoryWrite> writes_;
  std::vector<uint8_t> bytes_;
};

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_GUEST_MEMORY_H_
