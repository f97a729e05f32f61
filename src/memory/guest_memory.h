#pragma once
// Guest physical memory: a set of regions, each backed by an anonymous host mapping. The guest's
// memory is only copied in and out, never handed out by reference (except to KVM, which needs the
// host address of each region); every access is checked for range and overflow.
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "base/mmap.h"

namespace kiln {

struct GuestAddress {
  std::uint64_t value = 0;
  constexpr auto operator<=>(const GuestAddress&) const = default;
};

struct MemoryRegion {
  GuestAddress start;
  Mmap mapping;
  [[nodiscard]] std::uint64_t size() const { return mapping.size(); }
  [[nodiscard]] std::uint64_t end() const { return start.value + size(); }  // exclusive
};

// Where the regions of a VM with `size` bytes of RAM go: below the MMIO hole, then above 4 GiB.
struct RegionLayout {
  std::uint64_t start;
  std::uint64_t size;
};
std::vector<RegionLayout> x86_ram_layout(std::uint64_t ram_size);

class GuestMemory {
 public:
  // Start of the MMIO hole below 4 GiB (devices, LAPIC, IOAPIC live above it).
  static constexpr std::uint64_t kMmioHoleStart = 0xC000'0000;
  static constexpr std::uint64_t kMmioHoleEnd = 0x1'0000'0000;

  static Result<GuestMemory> create(std::span<const RegionLayout> layout);

  [[nodiscard]] Result<void> read(GuestAddress gpa, std::span<std::byte> out) const;
  [[nodiscard]] Result<void> write(GuestAddress gpa, std::span<const std::byte> in) const;
  [[nodiscard]] Result<void> fill(GuestAddress gpa, std::byte value, std::uint64_t len) const;

  template <class T>
    requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<T> read_obj(GuestAddress gpa) const {
    T v;
    KILN_TRY(read(gpa, std::as_writable_bytes(std::span(&v, 1))));
    return v;
  }
  template <class T>
    requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<void> write_obj(GuestAddress gpa, const T& v) const {
    return write(gpa, std::as_bytes(std::span(&v, 1)));
  }

  // True if [gpa, gpa+len) lies inside one region (no wrap-around).
  [[nodiscard]] bool contains(GuestAddress gpa, std::uint64_t len) const;
  [[nodiscard]] const std::vector<MemoryRegion>& regions() const { return regions_; }
  [[nodiscard]] std::uint64_t total_size() const;
  // Highest guest address + 1 of RAM that lies below 4 GiB.
  [[nodiscard]] std::uint64_t end_below_4g() const;

 private:
  // The region and offset holding [gpa, gpa+len), or nullptr if it is not all inside one region.
  const MemoryRegion* find(GuestAddress gpa, std::uint64_t len, std::uint64_t& offset) const;
  std::vector<MemoryRegion> regions_;
};

}  // namespace kiln
