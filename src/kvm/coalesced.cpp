#include "kvm/coalesced.h"

#include <linux/kvm.h>

#include <atomic>
#include <cstring>

namespace kiln::kvm {

namespace {
// The layout this file reads, checked against the kernel's headers.
constexpr std::size_t kFirstOffset = 0, kLastOffset = 4, kEntriesOffset = 8, kEntrySize = 24;
constexpr std::size_t kAddrOffset = 0, kLenOffset = 8, kPioOffset = 12, kDataOffset = 16;
static_assert(offsetof(kvm_coalesced_mmio_ring, first) == kFirstOffset);
static_assert(offsetof(kvm_coalesced_mmio_ring, last) == kLastOffset);
// (Not offsetof(kvm_coalesced_mmio_ring, coalesced_mmio): compiled as C++, the header's
// __DECLARE_FLEX_ARRAY puts an empty struct before the array and moves it to 16. KVM, in C, puts
// the entries right after the two indices, 8-byte aligned.)
static_assert(kEntriesOffset == 2 * sizeof(std::uint32_t) && kEntriesOffset % alignof(kvm_coalesced_mmio) == 0);
static_assert(sizeof(kvm_coalesced_mmio) == kEntrySize);
static_assert(offsetof(kvm_coalesced_mmio, phys_addr) == kAddrOffset);
static_assert(offsetof(kvm_coalesced_mmio, len) == kLenOffset);
static_assert(offsetof(kvm_coalesced_mmio, pio) == kPioOffset);
static_assert(offsetof(kvm_coalesced_mmio, data) == kDataOffset);
static_assert(sizeof(kvm_coalesced_mmio::data) == 8);
static_assert(alignof(std::uint32_t) <= 4 && std::atomic_ref<std::uint32_t>::required_alignment <= 4);

std::uint32_t* index_at(std::span<std::byte, CoalescedRing::kPageSize> page, std::size_t off) {
  return reinterpret_cast<std::uint32_t*>(page.data() + off);
}
}  // namespace

std::uint32_t CoalescedRing::capacity() {
  return static_cast<std::uint32_t>((kPageSize - kEntriesOffset) / kEntrySize);
}

bool CoalescedRing::empty() const {
  // KVM writes `last`, kiln `first`: a stale `last` only delays a write to the next drain.
  const auto first = std::atomic_ref(*index_at(page_, kFirstOffset)).load(std::memory_order_relaxed);
  const auto last = std::atomic_ref(*index_at(page_, kLastOffset)).load(std::memory_order_acquire);
  return first == last;
}

std::size_t CoalescedRing::drain(const std::function<void(const CoalescedWrite&)>& f) {
  std::atomic_ref first_ref(*index_at(page_, kFirstOffset));
  std::atomic_ref last_ref(*index_at(page_, kLastOffset));
  const std::uint32_t max = capacity();
  std::uint32_t first = first_ref.load(std::memory_order_relaxed);
  std::size_t n = 0;
  for (;;) {
    // Acquire: the entry KVM wrote before it moved `last` past it is visible.
    const std::uint32_t last = last_ref.load(std::memory_order_acquire);
    if (first == last) break;
    if (first >= max || last >= max) {
      ++bad_;
      break;
    }
    const std::byte* e = page_.data() + kEntriesOffset + std::size_t{first} * kEntrySize;
    std::uint64_t addr = 0;
    std::uint32_t len = 0, pio = 0;
    std::memcpy(&addr, e + kAddrOffset, sizeof(addr));
    std::memcpy(&len, e + kLenOffset, sizeof(len));
    std::memcpy(&pio, e + kPioOffset, sizeof(pio));
    std::byte data[8];
    if (len <= sizeof(data)) {
      std::memcpy(data, e + kDataOffset, len);
      f({addr, pio != 0, std::span<const std::byte>(data, len)});
      ++n;
    } else {
      ++bad_;
    }
    first = (first + 1) % max;
    // Release: the slot is read before KVM may fill it again.
    first_ref.store(first, std::memory_order_release);
  }
  return n;
}

}  // namespace kiln::kvm
