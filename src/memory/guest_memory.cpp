#include "memory/guest_memory.h"

#include <algorithm>

namespace kiln {

std::vector<RegionLayout> x86_ram_layout(std::uint64_t ram_size) {
  std::vector<RegionLayout> out;
  const std::uint64_t low = std::min(ram_size, GuestMemory::kMmioHoleStart);
  out.push_back({0, low});
  if (ram_size > low) out.push_back({GuestMemory::kMmioHoleEnd, ram_size - low});
  return out;
}

Result<GuestMemory> GuestMemory::create(std::span<const RegionLayout> layout) {
  GuestMemory mem;
  std::uint64_t prev_end = 0;
  for (const auto& r : layout) {
    if (r.size == 0 || r.size % 4096 != 0 || r.start % 4096 != 0)
      return make_error(std::errc::invalid_argument, "guest memory region at {:#x} size {:#x} is not page aligned",
                        r.start, r.size);
    if (r.start < prev_end || r.start + r.size < r.start)
      return make_error(std::errc::invalid_argument, "guest memory region at {:#x} overlaps or wraps", r.start);
    auto m = Mmap::anonymous(r.size);
    if (!m) return std::unexpected(m.error());
    mem.regions_.push_back(MemoryRegion{GuestAddress{r.start}, std::move(*m)});
    prev_end = r.start + r.size;
  }
  return mem;
}

const MemoryRegion* GuestMemory::find(GuestAddress gpa, std::uint64_t len, std::uint64_t& offset) const {
  for (const auto& r : regions_) {
    if (gpa.value < r.start.value || gpa.value >= r.end()) continue;
    offset = gpa.value - r.start.value;
    // Written so that no sum can overflow: len must fit in what is left of the region.
    if (len > r.size() - offset) return nullptr;
    return &r;
  }
  return nullptr;
}

bool GuestMemory::contains(GuestAddress gpa, std::uint64_t len) const {
  std::uint64_t off = 0;
  return find(gpa, len, off) != nullptr;
}

Result<void> GuestMemory::read(GuestAddress gpa, std::span<std::byte> out) const {
  std::uint64_t off = 0;
  const MemoryRegion* r = find(gpa, out.size(), off);
  if (r == nullptr)
    return make_error(std::errc::bad_address, "guest read of {} bytes at {:#x} is outside guest memory", out.size(),
                      gpa.value);
  std::memcpy(out.data(), r->mapping.data() + off, out.size());
  return {};
}

Result<void> GuestMemory::write(GuestAddress gpa, std::span<const std::byte> in) const {
  std::uint64_t off = 0;
  const MemoryRegion* r = find(gpa, in.size(), off);
  if (r == nullptr)
    return make_error(std::errc::bad_address, "guest write of {} bytes at {:#x} is outside guest memory", in.size(),
                      gpa.value);
  std::memcpy(r->mapping.data() + off, in.data(), in.size());
  return {};
}

Result<void> GuestMemory::fill(GuestAddress gpa, std::byte value, std::uint64_t len) const {
  std::uint64_t off = 0;
  const MemoryRegion* r = find(gpa, len, off);
  if (r == nullptr)
    return make_error(std::errc::bad_address, "guest fill of {} bytes at {:#x} is outside guest memory", len,
                      gpa.value);
  std::memset(r->mapping.data() + off, static_cast<int>(value), len);
  return {};
}

std::uint64_t GuestMemory::total_size() const {
  std::uint64_t t = 0;
  for (const auto& r : regions_) t += r.size();
  return t;
}

std::uint64_t GuestMemory::end_below_4g() const {
  std::uint64_t e = 0;
  for (const auto& r : regions_)
    if (r.start.value < kMmioHoleEnd) e = std::max(e, std::min(r.end(), kMmioHoleStart));
  return e;
}

}  // namespace kiln
