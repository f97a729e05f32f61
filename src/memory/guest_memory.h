#pragma once
// Guest physical memory: a set of regions, each backed by an anonymous host mapping or a memfd.
// The guest's memory is copied in and out, never handed out by reference, except: to KVM, which
// needs the host address of each region; as ring indices, loaded and stored atomically in place
// with acquire/release order; and as checked iovecs for preadv/pwritev and io_uring, which a
// device hands to the kernel and drops before it touches the buffers again. Every access is
// checked for range and overflow. Writes by kiln can be recorded in a dirty-page bitmap.
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "base/mmap.h"
#include "base/unique_fd.h"

namespace kiln {

struct GuestAddress {
  std::uint64_t value = 0;
  constexpr auto operator<=>(const GuestAddress&) const = default;
};

struct MemoryRegion {
  GuestAddress start;
  Mmap mapping;
  UniqueFd memfd;  // the backing file of a memfd-backed region (for snapshots and sharing)
  // One bit per 4 KiB page written by kiln since the bitmap was last taken; empty when not tracked.
  std::unique_ptr<std::atomic<std::uint64_t>[]> dirty;
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

  enum class Backing { kAnonymous, kMemfd };
  static Result<GuestMemory> create(std::span<const RegionLayout> layout, Backing backing = Backing::kAnonymous);
  static constexpr std::uint64_t kPageSize = 4096;

  [[nodiscard]] Result<void> read(GuestAddress gpa, std::span<std::byte> out) const;
  [[nodiscard]] Result<void> write(GuestAddress gpa, std::span<const std::byte> in) const;
  [[nodiscard]] Result<void> fill(GuestAddress gpa, std::byte value, std::uint64_t len) const;

  template <class T>
    requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<T> read_obj(GuestAddress gpa) const {
    T v;
    KILN_CHECK(read(gpa, std::as_writable_bytes(std::span(&v, 1))));
    return v;
  }
  template <class T>
    requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<void> write_obj(GuestAddress gpa, const T& v) const {
    return write(gpa, std::as_bytes(std::span(&v, 1)));
  }

  // A ring index or flag that the guest reads or writes concurrently: naturally aligned 2, 4 or 8
  // bytes, loaded with acquire and stored with release order (the virtio rings' barriers).
  template <class T>
    requires(std::is_integral_v<T> && (sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8))
  [[nodiscard]] Result<T> load_acquire(GuestAddress gpa) const {
    KILN_ASSIGN(std::byte* p, aligned_host_address(gpa, sizeof(T)));
    return std::atomic_ref<T>(*reinterpret_cast<T*>(p)).load(std::memory_order_acquire);
  }
  template <class T>
    requires(std::is_integral_v<T> && (sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8))
  [[nodiscard]] Result<void> store_release(GuestAddress gpa, T value) const {
    KILN_ASSIGN(std::byte* p, aligned_host_address(gpa, sizeof(T)));
    std::atomic_ref<T>(*reinterpret_cast<T*>(p)).store(value, std::memory_order_release);
    mark_dirty(gpa, sizeof(T));
    return {};
  }

  // The host buffers holding guest [gpa, gpa+len): one iovec per region it crosses (adjacent
  // regions only: a range over a hole is an error). `for_write`: the device will write them, so the
  // pages are marked dirty now. A zero length gives no iovec.
  [[nodiscard]] Result<std::vector<iovec>> iovecs(GuestAddress gpa, std::uint64_t len, bool for_write) const;

  // Dirty-page tracking of kiln's own writes (KVM tracks the guest's): from now on every write,
  // fill, store_release and writable iovec marks its pages. take_dirty_bitmap(i) returns region
  // i's bitmap (bit n = page n) and clears it.
  void track_dirty_pages();
  [[nodiscard]] bool tracking_dirty_pages() const { return !regions_.empty() && regions_[0].dirty != nullptr; }
  [[nodiscard]] std::vector<std::uint64_t> take_dirty_bitmap(std::size_t region) const;

  // True if [gpa, gpa+len) lies inside one region (no wrap-around).
  [[nodiscard]] bool contains(GuestAddress gpa, std::uint64_t len) const;
  [[nodiscard]] const std::vector<MemoryRegion>& regions() const { return regions_; }
  [[nodiscard]] std::uint64_t total_size() const;
  // Highest guest address + 1 of RAM that lies below 4 GiB.
  [[nodiscard]] std::uint64_t end_below_4g() const;

 private:
  // The region and offset holding [gpa, gpa+len), or nullptr if it is not all inside one region.
  const MemoryRegion* find(GuestAddress gpa, std::uint64_t len, std::uint64_t& offset) const;
  Result<std::byte*> aligned_host_address(GuestAddress gpa, std::uint64_t size) const;
  void mark_dirty(const MemoryRegion& r, std::uint64_t offset, std::uint64_t len) const;
  void mark_dirty(GuestAddress gpa, std::uint64_t len) const;
  std::vector<MemoryRegion> regions_;
};

}  // namespace kiln
