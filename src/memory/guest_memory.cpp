#include "memory/guest_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <limits>

namespace kiln {

std::vector<RegionLayout> x86_ram_layout(std::uint64_t ram_size) {
  std::vector<RegionLayout> out;
  const std::uint64_t low = std::min(ram_size, GuestMemory::kMmioHoleStart);
  out.push_back({0, low});
  if (ram_size > low) out.push_back({GuestMemory::kMmioHoleEnd, ram_size - low});
  return out;
}

Result<GuestMemory> GuestMemory::create(std::span<const RegionLayout> layout, Backing backing) {
  GuestMemory mem;
  std::uint64_t prev_end = 0;
  for (const auto& r : layout) {
    if (r.size == 0 || r.size % 4096 != 0 || r.start % 4096 != 0)
      return make_error(std::errc::invalid_argument, "guest memory region at {:#x} size {:#x} is not page aligned",
                        r.start, r.size);
    if (r.start < prev_end || r.start + r.size < r.start)
      return make_error(std::errc::invalid_argument, "guest memory region at {:#x} overlaps or wraps", r.start);
    if (backing == Backing::kMemfd) {
      UniqueFd fd(::memfd_create("kiln-guest-ram", MFD_CLOEXEC));
      if (!fd) return errno_error("memfd_create for guest memory at {:#x}", r.start);
      if (::ftruncate(fd.get(), static_cast<off_t>(r.size)) != 0)
        return errno_error("sizing the guest memory file to {:#x} bytes", r.size);
      auto m = Mmap::shared_fd(fd.get(), r.size);
      if (!m) return std::unexpected(m.error());
      mem.regions_.push_back(MemoryRegion{GuestAddress{r.start}, std::move(*m), std::move(fd), nullptr});
    } else {
      auto m = Mmap::anonymous(r.size);
      if (!m) return std::unexpected(m.error());
      mem.regions_.push_back(MemoryRegion{GuestAddress{r.start}, std::move(*m), UniqueFd(), nullptr});
    }
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
  if (!out.empty()) std::memcpy(out.data(), r->mapping.data() + off, out.size());  // an empty span may be null
  return {};
}

Result<void> GuestMemory::write(GuestAddress gpa, std::span<const std::byte> in) const {
  std::uint64_t off = 0;
  const MemoryRegion* r = find(gpa, in.size(), off);
  if (r == nullptr)
    return make_error(std::errc::bad_address, "guest write of {} bytes at {:#x} is outside guest memory", in.size(),
                      gpa.value);
  if (in.empty()) return {};  // its data may be null, which memcpy may not get
  std::memcpy(r->mapping.data() + off, in.data(), in.size());
  mark_dirty(*r, off, in.size());
  return {};
}

Result<void> GuestMemory::fill(GuestAddress gpa, std::byte value, std::uint64_t len) const {
  std::uint64_t off = 0;
  const MemoryRegion* r = find(gpa, len, off);
  if (r == nullptr)
    return make_error(std::errc::bad_address, "guest fill of {} bytes at {:#x} is outside guest memory", len,
                      gpa.value);
  std::memset(r->mapping.data() + off, static_cast<int>(value), len);
  mark_dirty(*r, off, len);
  return {};
}

Result<std::byte*> GuestMemory::aligned_host_address(GuestAddress gpa, std::uint64_t size) const {
  if (gpa.value % size != 0)
    return make_error(std::errc::invalid_argument, "guest atomic access of {} bytes at {:#x} is not aligned", size,
                      gpa.value);
  std::uint64_t off = 0;
  const MemoryRegion* r = find(gpa, size, off);
  if (r == nullptr)
    return make_error(std::errc::bad_address, "guest atomic access of {} bytes at {:#x} is outside guest memory", size,
                      gpa.value);
  return r->mapping.data() + off;
}

Result<std::vector<iovec>> GuestMemory::iovecs(GuestAddress gpa, std::uint64_t len, bool for_write) const {
  std::vector<iovec> out;
  std::uint64_t at = gpa.value;
  std::uint64_t left = len;
  if (len > std::numeric_limits<std::uint64_t>::max() - gpa.value)
    return make_error(std::errc::bad_address, "guest buffer of {} bytes at {:#x} wraps around", len, gpa.value);
  while (left > 0) {
    std::uint64_t off = 0;
    const MemoryRegion* r = find(GuestAddress{at}, 1, off);
    if (r == nullptr)
      return make_error(std::errc::bad_address, "guest buffer of {} bytes at {:#x}: {:#x} is outside guest memory", len,
                        gpa.value, at);
    const std::uint64_t n = std::min(left, r->size() - off);
    out.push_back({r->mapping.data() + off, n});
    if (for_write) mark_dirty(*r, off, n);
    at += n;
    left -= n;
  }
  return out;
}

void GuestMemory::track_dirty_pages() {
  for (auto& r : regions_) {
    if (r.dirty) continue;
    const std::uint64_t words = (r.size() / kPageSize + 63) / 64;
    r.dirty = std::make_unique<std::atomic<std::uint64_t>[]>(words);
  }
}

std::vector<std::uint64_t> GuestMemory::take_dirty_bitmap(std::size_t region) const {
  if (region >= regions_.size() || !regions_[region].dirty) return {};
  const auto& r = regions_[region];
  std::vector<std::uint64_t> out((r.size() / kPageSize + 63) / 64);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = r.dirty[i].exchange(0, std::memory_order_acq_rel);
  return out;
}

void GuestMemory::mark_dirty(const MemoryRegion& r, std::uint64_t offset, std::uint64_t len) const {
  if (!r.dirty || len == 0) return;
  for (std::uint64_t page = offset / kPageSize; page <= (offset + len - 1) / kPageSize; ++page)
    r.dirty[page / 64].fetch_or(1ull << (page % 64), std::memory_order_relaxed);
}

void GuestMemory::mark_dirty(GuestAddress gpa, std::uint64_t len) const {
  std::uint64_t off = 0;
  if (const MemoryRegion* r = find(gpa, len, off)) mark_dirty(*r, off, len);
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
