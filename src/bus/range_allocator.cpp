#include "bus/range_allocator.h"

#include <algorithm>
#include <bit>

namespace kiln {

RangeAllocator::RangeAllocator(std::string name, std::uint64_t base, std::uint64_t end)
    : name_(std::move(name)), base_(base), end_(end) {}

const RangeAllocator::Allocation* RangeAllocator::overlapping(std::uint64_t start, std::uint64_t size) const {
  // The first allocation that ends after `start`: the one before it (if it reaches start), or it.
  auto it = used_.upper_bound(start);
  if (it != used_.begin()) {
    const auto& prev = std::prev(it)->second;
    if (prev.start + prev.size > start) return &prev;
  }
  if (it != used_.end() && it->second.start < start + size) return &it->second;
  return nullptr;
}

Result<std::uint64_t> RangeAllocator::reserve(std::uint64_t start, std::uint64_t size, std::string_view owner) {
  if (size == 0) return plain_error("{}: '{}' asked for an empty range at {:#x}", name_, owner, start);
  if (start < base_ || start > end_ || size > end_ - start)
    return plain_error("{}: {:#x}+{:#x} for '{}' is outside {:#x}-{:#x}", name_, start, size, owner, base_, end_ - 1);
  if (const Allocation* a = overlapping(start, size))
    return plain_error("{}: {:#x}-{:#x} for '{}' overlaps '{}' at {:#x}-{:#x}", name_, start, start + size - 1, owner,
                       a->owner, a->start, a->start + a->size - 1);
  used_[start] = {start, size, std::string(owner)};
  return start;
}

Result<std::uint64_t> RangeAllocator::allocate(std::uint64_t size, std::uint64_t align, std::string_view owner,
                                               std::uint64_t from) {
  if (size == 0) return plain_error("{}: '{}' asked for an empty range", name_, owner);
  if (align == 0 || !std::has_single_bit(align))
    return plain_error("{}: '{}' asked for alignment {:#x}, which is not a power of two", name_, owner, align);
  auto align_up = [&](std::uint64_t v, std::uint64_t& out) {
    const std::uint64_t r = (v + align - 1) & ~(align - 1);
    if (r < v) return false;  // wrapped
    out = r;
    return true;
  };
  std::uint64_t at = 0;
  if (align_up(std::max(base_, from), at)) {
    // First fit: try each gap, lowest first.
    for (auto it = used_.lower_bound(0);; ++it) {
      const std::uint64_t gap_end = it == used_.end() ? end_ : it->second.start;
      if (at < gap_end && size <= gap_end - at) {
        used_[at] = {at, size, std::string(owner)};
        return at;
      }
      if (it == used_.end()) break;
      if (!align_up(std::max(at, it->second.start + it->second.size), at)) break;
    }
  }
  return plain_error("{}: no room for {:#x} more for '{}' ({:#x}-{:#x} has {} ranges in use)", name_, size, owner, base_,
                     end_ - 1, used_.size());
}

bool RangeAllocator::release(std::uint64_t start) { return used_.erase(start) == 1; }

std::vector<RangeAllocator::Allocation> RangeAllocator::allocations() const {
  std::vector<Allocation> out;
  for (const auto& [start, a] : used_) out.push_back(a);
  return out;
}

}  // namespace kiln
