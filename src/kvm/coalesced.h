#pragma once
// KVM's coalesced-write ring: guest writes to the zones a VM registers (Vm::coalesce_pio) do not
// exit to kiln; KVM appends each to a ring in a page of every vCPU's mapping, and kiln carries them
// out later, in the order they were made. A write the full ring cannot take exits as usual, so
// the guest never waits on kiln, and nothing is lost as long as the ring is drained before any
// other access to the same device is handled (a read of a register may depend on the writes
// before it).
//
// This view knows the ring's layout only; it works on any page of bytes (a vCPU's mapping, or a
// test's buffer), so it is unit-tested without /dev/kvm.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

namespace kiln::kvm {

struct CoalescedWrite {
  std::uint64_t addr = 0;  // a port, or a guest-physical address
  bool pio = false;
  std::span<const std::byte> data;  // 1-8 bytes; valid during the callback only
};

class CoalescedRing {
 public:
  static constexpr std::size_t kPageSize = 4096;
  // The ring's page, as KVM lays it out: two 32-bit indices, then the entries.
  explicit CoalescedRing(std::span<std::byte, kPageSize> page) : page_(page) {}

  // Entries the ring holds at most (KVM keeps one free to tell full from empty).
  static std::uint32_t capacity();
  [[nodiscard]] bool empty() const;
  // Hands each buffered write to `f`, oldest first, freeing its slot after the call; returns how
  // many. An index KVM left out of range (it never should) ends the drain and is counted in
  // `bad_entries()`; an entry longer than 8 bytes is skipped the same way. Not thread-safe:
  // callers drain under one lock.
  std::size_t drain(const std::function<void(const CoalescedWrite&)>& f);
  [[nodiscard]] std::uint64_t bad_entries() const { return bad_; }

 private:
  std::span<std::byte, kPageSize> page_;
  std::uint64_t bad_ = 0;
};

}  // namespace kiln::kvm
