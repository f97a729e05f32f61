#pragma once
// The driver side of a split virtqueue, writing into a GuestMemory as a guest's driver would: for
// unit tests and fuzz targets of the queue and the devices. It can write well-formed chains and,
// through the raw accessors, anything a hostile driver could.
#include <cstdint>
#include <vector>

#include "memory/guest_memory.h"
#include "virtio/queue/queue.h"

namespace kiln::virtio {

class MockDriver {
 public:
  struct Segment {
    std::uint64_t addr;
    std::uint32_t len;
    bool writable = false;
  };

  // Places a queue of `size` entries at `base` (descriptor table, then the available ring, then
  // the used ring at the next 4-byte boundary) and programs `q` with it, ready.
  MockDriver(const GuestMemory& mem, Queue& q, std::uint16_t size, std::uint64_t base);

  // Writes a chain of direct descriptors starting at descriptor `first` (each next one after it,
  // wrapping) and makes it available. Returns its head.
  std::uint16_t add_chain(const std::vector<Segment>& segs, std::uint16_t first = 0xffff);
  // One descriptor at `desc` pointing to an indirect table at `table` holding `segs`.
  std::uint16_t add_indirect_chain(const std::vector<Segment>& segs, std::uint64_t table, std::uint16_t desc = 0xffff);

  // Raw access, for malformed queues.
  void write_descriptor(std::uint16_t index, std::uint64_t addr, std::uint32_t len, std::uint16_t flags,
                        std::uint16_t next);
  void write_descriptor_at(std::uint64_t gpa, std::uint64_t addr, std::uint32_t len, std::uint16_t flags,
                           std::uint16_t next);
  // Puts `head` in the available ring's next slot and publishes it (avail idx + 1).
  void make_available(std::uint16_t head);
  void set_avail_idx(std::uint16_t idx);
  void set_avail_flags(std::uint16_t flags);
  void set_used_event(std::uint16_t v);

  [[nodiscard]] std::uint16_t avail_idx() const { return avail_idx_; }
  [[nodiscard]] std::uint16_t used_idx() const;
  [[nodiscard]] std::uint16_t avail_event() const;
  struct UsedElem {
    std::uint32_t id, len;
  };
  // The used ring's element for used index `i` (mod size).
  [[nodiscard]] UsedElem used(std::uint16_t i) const;
  [[nodiscard]] std::uint64_t used_ring_end() const { return used_ + 6 + 8ull * size_; }

 private:
  const GuestMemory& mem_;
  std::uint16_t size_;
  std::uint64_t desc_, avail_, used_;
  std::uint16_t avail_idx_ = 0;
  std::uint16_t next_desc_ = 0;
};

}  // namespace kiln::virtio
