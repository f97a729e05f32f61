#include "bus/bus.h"

#include <algorithm>
#include <cstring>

namespace kiln {

Result<void> Bus::insert(std::shared_ptr<BusDevice> device, std::uint64_t base, std::uint64_t len) {
  if (len == 0 || base + (len - 1) < base)
    return make_error(std::errc::invalid_argument, "{} bus: bad range {:#x}+{:#x}", name_, base, len);
  std::unique_lock lock(mu_);
  const std::uint64_t last = base + (len - 1);  // inclusive, so a range may end at 2^64
  auto next = ranges_.lower_bound(base);
  if (next != ranges_.end() && next->first <= last)
    return make_error(std::errc::address_in_use, "{} bus: {:#x}+{:#x} overlaps the device at {:#x}", name_, base,
                      len, next->first);
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + (prev->second.len - 1) >= base)
      return make_error(std::errc::address_in_use, "{} bus: {:#x}+{:#x} overlaps the device at {:#x}", name_, base,
                        len, prev->first);
  }
  ranges_.emplace(base, Range{len, std::move(device)});
  return {};
}

std::shared_ptr<BusDevice> Bus::find(std::uint64_t addr, std::uint64_t len, std::uint64_t& offset) const {
  std::shared_lock lock(mu_);
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return nullptr;
  --it;
  offset = addr - it->first;
  if (offset >= it->second.len || len > it->second.len - offset) return nullptr;
  return it->second.device;
}

bool Bus::read(std::uint64_t addr, std::span<std::byte> data) const {
  std::uint64_t off = 0;
  if (auto dev = find(addr, data.size(), off)) {
    dev->read(off, data);
    return true;
  }
  std::ranges::fill(data, std::byte{0xff});
  unclaimed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

bool Bus::write(std::uint64_t addr, std::span<const std::byte> data) const {
  std::uint64_t off = 0;
  if (auto dev = find(addr, data.size(), off)) {
    dev->write(off, data);
    return true;
  }
  unclaimed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace kiln
