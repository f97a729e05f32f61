#include "virtio/queue/queue.h"

#include <atomic>
#include <bit>
#include <limits>

namespace kiln::virtio {

namespace {

// A descriptor as the driver writes it (little-endian, as x86 is).
struct RawDescriptor {
  std::uint64_t addr;
  std::uint32_t len;
  std::uint16_t flags;
  std::uint16_t next;
};
static_assert(sizeof(RawDescriptor) == 16);

constexpr std::uint64_t kUsedElemSize = 8;

Result<void> check_area(const GuestMemory& mem, const char* what, GuestAddress at, std::uint64_t len,
                        std::uint64_t align) {
  if (at.value % align != 0)
    return plain_error("{} at {:#x} is not aligned to {} bytes", what, at.value, align);
  if (!mem.contains(at, len))
    return plain_error("{} at {:#x} ({} bytes) is not inside guest RAM", what, at.value, len);
  return {};
}

}  // namespace

Result<void> Queue::check_layout(const GuestMemory& mem) const {
  if (size == 0 || !std::has_single_bit(size))
    return plain_error("queue size {} is not a power of two", size);
  if (size > max_size_) return plain_error("queue size {} is larger than the device's maximum {}", size, max_size_);
  KILN_CHECK(check_area(mem, "the descriptor table", desc_table, 16ull * size, 16));
  KILN_CHECK(check_area(mem, "the available ring", avail_ring, 6 + 2ull * size, 2));
  KILN_CHECK(check_area(mem, "the used ring", used_ring, 6 + kUsedElemSize * size, 4));
  return {};
}

void Queue::set_features(std::uint64_t acked) {
  event_idx_ = (acked & kFeatureRingEventIdx) != 0;
  indirect_ = (acked & kFeatureRingIndirectDesc) != 0;
}

void Queue::reset() {
  size = 0;
  ready = false;
  desc_table = avail_ring = used_ring = {};
  event_idx_ = indirect_ = false;
  notify_off_ = false;
  next_avail_ = next_used_ = 0;
  signalled_used_.reset();
}

Result<std::uint16_t> Queue::avail_idx(const GuestMemory& mem) const {
  KILN_ASSIGN(const auto idx, mem.load_acquire<std::uint16_t>(GuestAddress{avail_ring.value + 2}));
  // The driver can be at most a whole ring ahead of what the device has taken.
  if (static_cast<std::uint16_t>(idx - next_avail_) > size)
    return plain_error("the available index {} is {} ahead of the device's {} (queue size {})", idx,
                       static_cast<std::uint16_t>(idx - next_avail_), next_avail_, size);
  return idx;
}

Result<std::optional<DescriptorChain>> Queue::pop(const GuestMemory& mem) {
  if (!ready || size == 0) return plain_error("the queue is used before it was made ready");
  KILN_ASSIGN(const std::uint16_t idx, avail_idx(mem));
  if (idx == next_avail_) return std::optional<DescriptorChain>{};
  // The acquire load of the index orders this read of the ring entry (and the descriptors) after it.
  const GuestAddress slot{avail_ring.value + 4 + 2ull * (next_avail_ % size)};
  KILN_ASSIGN(const auto head, mem.read_obj<std::uint16_t>(slot));
  DescriptorChain chain;
  chain.head = head;
  KILN_CHECK(walk_chain(mem, head, chain));
  ++next_avail_;
  if (!event_idx_ && !notify_off_) {
    // Busy with the ring: no notifications until enable_notification() (the used ring's flags;
    // with EVENT_IDX the avail_event kiln left behind does the same).
    KILN_CHECK(mem.store_release<std::uint16_t>(used_ring, kUsedNoNotify));
    notify_off_ = true;
  }
  return std::optional<DescriptorChain>(std::move(chain));
}

Result<void> Queue::walk_chain(const GuestMemory& mem, std::uint16_t head, DescriptorChain& chain) const {
  GuestAddress table = desc_table;
  std::uint32_t table_len = size;
  bool in_indirect = false;
  std::uint32_t index = head;
  // Every descriptor of a chain, indirect ones included, counts against the queue size: a loop
  // ends there, and so does the memory a chain can take.
  std::uint32_t budget = size;
  std::uint64_t readable = 0, writable = 0;
  for (;;) {
    if (index >= table_len)
      return plain_error("descriptor index {} is outside the {} of {} entries (chain head {})", index,
                         in_indirect ? "indirect table" : "descriptor table", table_len, head);
    if (budget-- == 0) return plain_error("the chain at head {} is longer than the queue size {} (a loop?)", head, size);
    KILN_ASSIGN(const auto d, mem.read_obj<RawDescriptor>(GuestAddress{table.value + 16ull * index}));
    if (d.flags & kDescIndirect) {
      if (!indirect_) return plain_error("an indirect descriptor (chain head {}) without INDIRECT_DESC negotiated", head);
      if (in_indirect) return plain_error("an indirect descriptor inside an indirect table (chain head {})", head);
      if (d.flags & kDescNext) return plain_error("an indirect descriptor with NEXT set (chain head {})", head);
      if (d.len == 0 || d.len % 16 != 0)
        return plain_error("indirect table length {} is not a non-zero multiple of 16 (chain head {})", d.len, head);
      KILN_CHECK(check_area(mem, "an indirect table", GuestAddress{d.addr}, d.len, 1));
      table = GuestAddress{d.addr};
      table_len = d.len / 16;
      in_indirect = true;
      index = 0;
      continue;
    }
    if (d.len > 0) {
      if (!mem.contains(GuestAddress{d.addr}, d.len))
        return plain_error("a buffer at {:#x} ({} bytes) is not inside guest RAM (chain head {})", d.addr, d.len, head);
      const Buffer b{GuestAddress{d.addr}, d.len};
      if (d.flags & kDescWrite) {
        writable += d.len;
        chain.writable.push_back(b);
      } else {
        if (!chain.writable.empty())
          return plain_error("a device-readable buffer follows a device-writable one (chain head {})", head);
        readable += d.len;
        chain.readable.push_back(b);
      }
      if (readable + writable > std::numeric_limits<std::uint32_t>::max())
        return plain_error("the chain at head {} is longer than 4 GiB", head);
    } else if (!(d.flags & kDescWrite) && !chain.writable.empty()) {
      return plain_error("a device-readable buffer follows a device-writable one (chain head {})", head);
    }
    if (!(d.flags & kDescNext)) break;
    index = d.next;
  }
  chain.readable_len = static_cast<std::uint32_t>(readable);
  chain.writable_len = static_cast<std::uint32_t>(writable);
  return {};
}

Result<void> Queue::add_used(const GuestMemory& mem, std::uint16_t head, std::uint32_t written) {
  if (!ready || size == 0) return plain_error("the queue is used before it was made ready");
  if (head >= size) return plain_error("used chain head {} is outside the queue of {}", head, size);
  const GuestAddress elem{used_ring.value + 4 + kUsedElemSize * (next_used_ % size)};
  struct {
    std::uint32_t id, len;
  } e{head, written};
  KILN_CHECK(mem.write_obj(elem, e));
  // The release store publishes the element before the index that covers it.
  ++next_used_;
  return mem.store_release<std::uint16_t>(GuestAddress{used_ring.value + 2}, next_used_);
}

Result<bool> Queue::needs_interrupt(const GuestMemory& mem) {
  const std::uint16_t now = next_used_;
  if (now == signalled_used_.value_or(0)) return false;  // nothing used since the last decision
  if (!event_idx_) {
    signalled_used_ = now;
    // The used index was stored with release; the flag read must not move before it.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    KILN_ASSIGN(const auto flags, mem.load_acquire<std::uint16_t>(avail_ring));
    return (flags & kAvailNoInterrupt) == 0;
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  KILN_ASSIGN(const auto used_event, mem.load_acquire<std::uint16_t>(GuestAddress{avail_ring.value + 4 + 2ull * size}));
  const std::optional<std::uint16_t> old = signalled_used_;
  signalled_used_ = now;
  if (!old) return true;
  // The driver asked for an interrupt once the used index passes used_event (vring_need_event).
  return static_cast<std::uint16_t>(now - used_event - 1) < static_cast<std::uint16_t>(now - *old);
}

Result<bool> Queue::enable_notification(const GuestMemory& mem) {
  if (event_idx_) {
    KILN_CHECK(mem.store_release<std::uint16_t>(GuestAddress{used_ring.value + 4 + kUsedElemSize * size}, next_avail_));
    // The avail_event store must be visible before the index is read again, or a chain the
    // driver adds in between is neither seen nor notified.
    std::atomic_thread_fence(std::memory_order_seq_cst);
  } else if (notify_off_) {
    KILN_CHECK(mem.store_release<std::uint16_t>(used_ring, 0));
    notify_off_ = false;
    std::atomic_thread_fence(std::memory_order_seq_cst);  // as above, for the flag
  }
  KILN_ASSIGN(const std::uint16_t idx, avail_idx(mem));
  return idx != next_avail_;
}

Result<void> read_readable(const GuestMemory& mem, const DescriptorChain& chain, std::span<std::byte> out) {
  if (out.size() < chain.readable_len) return plain_error("a chain of {} readable bytes does not fit in {}", chain.readable_len, out.size());
  std::size_t at = 0;
  for (const Buffer& b : chain.readable) {
    KILN_CHECK(mem.read(b.addr, out.subspan(at, b.len)));
    at += b.len;
  }
  return {};
}

}  // namespace kiln::virtio
