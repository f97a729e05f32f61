#include "virtio/queue/mock_driver.h"

#include <cstdlib>

namespace kiln::virtio {

namespace {
template <class T>
void put(const GuestMemory& mem, std::uint64_t gpa, T v) {
  if (!mem.write_obj(GuestAddress{gpa}, v)) std::abort();  // the test's own layout is wrong
}
template <class T>
T get(const GuestMemory& mem, std::uint64_t gpa) {
  auto v = mem.read_obj<T>(GuestAddress{gpa});
  if (!v) std::abort();
  return *v;
}
}  // namespace

MockDriver::MockDriver(const GuestMemory& mem, Queue& q, std::uint16_t size, std::uint64_t base)
    : mem_(mem), size_(size), desc_(base), avail_(base + 16ull * size), used_(((avail_ + 6 + 2ull * size) + 3) & ~3ull) {
  if (!mem.fill(GuestAddress{base}, std::byte{0}, used_ring_end() - base)) std::abort();
  q.size = size;
  q.desc_table = GuestAddress{desc_};
  q.avail_ring = GuestAddress{avail_};
  q.used_ring = GuestAddress{used_};
  q.ready = true;
}

void MockDriver::write_descriptor_at(std::uint64_t gpa, std::uint64_t addr, std::uint32_t len, std::uint16_t flags,
                                     std::uint16_t next) {
  put(mem_, gpa, addr);
  put(mem_, gpa + 8, len);
  put(mem_, gpa + 12, flags);
  put(mem_, gpa + 14, next);
}

void MockDriver::write_descriptor(std::uint16_t index, std::uint64_t addr, std::uint32_t len, std::uint16_t flags,
                                  std::uint16_t next) {
  write_descriptor_at(desc_ + 16ull * index, addr, len, flags, next);
}

std::uint16_t MockDriver::add_chain(const std::vector<Segment>& segs, std::uint16_t first) {
  const std::uint16_t head = first == 0xffff ? next_desc_ : first;
  std::uint16_t i = head;
  for (std::size_t n = 0; n < segs.size(); ++n) {
    const std::uint16_t next = static_cast<std::uint16_t>((i + 1) % size_);
    const bool last = n + 1 == segs.size();
    write_descriptor(i, segs[n].addr, segs[n].len,
                     static_cast<std::uint16_t>((last ? 0 : kDescNext) | (segs[n].writable ? kDescWrite : 0)),
                     last ? 0 : next);
    i = next;
  }
  next_desc_ = i;
  make_available(head);
  return head;
}

std::uint16_t MockDriver::add_indirect_chain(const std::vector<Segment>& segs, std::uint64_t table, std::uint16_t desc) {
  for (std::size_t n = 0; n < segs.size(); ++n) {
    const bool last = n + 1 == segs.size();
    write_descriptor_at(table + 16 * n, segs[n].addr, segs[n].len,
                        static_cast<std::uint16_t>((last ? 0 : kDescNext) | (segs[n].writable ? kDescWrite : 0)),
                        last ? 0 : static_cast<std::uint16_t>(n + 1));
  }
  const std::uint16_t head = desc == 0xffff ? next_desc_ : desc;
  write_descriptor(head, table, static_cast<std::uint32_t>(16 * segs.size()), kDescIndirect, 0);
  next_desc_ = static_cast<std::uint16_t>((head + 1) % size_);
  make_available(head);
  return head;
}

void MockDriver::make_available(std::uint16_t head) {
  put(mem_, avail_ + 4 + 2ull * (avail_idx_ % size_), head);
  set_avail_idx(static_cast<std::uint16_t>(avail_idx_ + 1));
}

void MockDriver::set_avail_idx(std::uint16_t idx) {
  avail_idx_ = idx;
  if (!mem_.store_release<std::uint16_t>(GuestAddress{avail_ + 2}, idx)) std::abort();
}

void MockDriver::set_avail_flags(std::uint16_t flags) { put(mem_, avail_, flags); }
void MockDriver::set_used_event(std::uint16_t v) { put(mem_, avail_ + 4 + 2ull * size_, v); }
std::uint16_t MockDriver::used_idx() const { return get<std::uint16_t>(mem_, used_ + 2); }
std::uint16_t MockDriver::avail_event() const { return get<std::uint16_t>(mem_, used_ + 4 + 8ull * size_); }
MockDriver::UsedElem MockDriver::used(std::uint16_t i) const {
  const std::uint64_t at = used_ + 4 + 8ull * (i % size_);
  return {get<std::uint32_t>(mem_, at), get<std::uint32_t>(mem_, at + 4)};
}

}  // namespace kiln::virtio
