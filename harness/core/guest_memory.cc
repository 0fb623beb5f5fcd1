#include "harness/core/guest_memory.h"

#include <algorithm>
#include <cstring>

#include "harness/core/digest.h"

namespace msrtrace {

SparseMemory::SparseMemory(const SparseMemory& other) : size_(other.size_) { *this = other; }

SparseMemory& SparseMemory::operator=(const SparseMemory& other) {
  if (this == &other) return *this;
  size_ = other.size_;
  for (auto& entry : pages_) Recycle(std::move(entry.second));
  pages_.clear();
  dirty_.clear();
  for (const auto& [gpa, page] : other.pages_) {
    std::unique_ptr<PageEntry> entry = TakeSpare();
    entry->data = page->data;
    entry->dirty = false;
    pages_.emplace(gpa, std::move(entry));
  }
  replaced_ = true;
  return *this;
}

bool SparseMemory::Read(uint64_t gpa, void* dst, size_t len) const {
  if (len > size_ || gpa > size_ - len) return false;
  auto* out = static_cast<uint8_t*>(dst);
  while (len > 0) {
    const uint64_t page = gpa & ~(kPageSize - 1);
    const size_t in_page = std::min<size_t>(len, kPageSize - (gpa - page));
    auto it = pages_.find(page);
    if (it == pages_.end()) {
      std::memset(out, 0, in_page);
    } else {
      std::memcpy(out, it->second->data.data() + (gpa - page), in_page);
    }
    out += in_page;
    gpa += in_page;
    len -= in_page;
  }
  return true;
}

bool SparseMemory::Write(uint64_t gpa, const void* src, size_t len) {
  if (len > size_ || gpa > size_ - len) return false;
  const auto* in = static_cast<const uint8_t*>(src);
  while (len > 0) {
    const uint64_t page = gpa & ~(kPageSize - 1);
    const size_t in_page = std::min<size_t>(len, kPageSize - (gpa - page));
    std::memcpy(Touch(page).data.data() + (gpa - page), in, in_page);
    in += in_page;
    gpa += in_page;
    len -= in_page;
  }
  return true;
}

std::vector<uint64_t> SparseMemory::PageAddresses() const {
  std::vector<uint64_t> out;
  out.reserve(pages_.size());
  for (const auto& entry : pages_) out.push_back(entry.first);
  std::sort(out.begin(), out.end());
  return out;
}

const uint8_t* SparseMemory::Page(uint64_t gpa) const {
  auto it = pages_.find(gpa);
  return it == pages_.end() ? nullptr : it->second->data.data();
}

bool SparseMemory::SetPage(uint64_t gpa, absl::Span<const uint8_t> bytes) {
  if ((gpa & (kPageSize - 1)) != 0 || bytes.size() != kPageSize) return false;
  if (gpa > size_ - kPageSize) return false;
  std::memcpy(Touch(gpa).data.data(), bytes.data(), kPageSize);
  return true;
}

void SparseMemory::RollBack(const SparseMemory& image) {
  if (replaced_) {
    *this = image;
  } else {
    for (uint64_t gpa : dirty_) {
      const uint8_t* from = image.Page(gpa);
      if (from != nullptr) {
        PageEntry& e = *pages_[gpa];
        std::memcpy(e.data.data(), from, kPageSize);
        e.dirty = false;
      } else {
        // Not in the image: gone, so pages do not pile up across resets (the buffer is kept).
        auto it = pages_.find(gpa);
        Recycle(std::move(it->second));
        pages_.erase(it);
      }
    }
  }
  dirty_.clear();
  replaced_ = false;
}

std::unique_ptr<SparseMemory::PageEntry> SparseMemory::TakeSpare() {
  if (spare_.empty()) return std::make_unique<PageEntry>();
  std::unique_ptr<PageEntry> entry = std::move(spare_.back());
  spare_.pop_back();
  return entry;
}

void SparseMemory::Recycle(std::unique_ptr<PageEntry> entry) {
  if (entry != nullptr && spare_.size() < kMaxSpare) spare_.push_back(std::move(entry));
}

SparseMemory::PageEntry& SparseMemory::Touch(uint64_t page) {
  auto& slot = pages_[page];
  if (slot == nullptr) {
    slot = TakeSpare();
    slot->data.fill(0);  // A page is zero until first written.
    slot->dirty = false;
  }
  if (!slot->dirty) {
    slot->dirty = true;
    dirty_.push_back(page);
  }
  return *slot;
}

void WriteLog::Append(uint64_t gpa, const void* src, size_t len) {
  const auto* p = static_cast<const uint8_t*>(src);
  writes_.push_back(
      MemoryWrite{gpa, static_cast<uint32_t>(bytes_.size()), static_cast<uint32_t>(len)});
  bytes_.insert(bytes_.end(), p, p + len);
}

uint64_t WriteLog::Digest() const {
  if (writes_.empty()) return 0;
  msrtrace::Digest d;
  for (const MemoryWrite& w : writes_) {
    d.U64(w.gpa).U64(w.len).Bytes(bytes_.data() + w.offset, w.len);
  }
  return d.value();
}

}  // namespace msrtrace
