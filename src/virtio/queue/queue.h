#pragma once
// A split virtqueue, device side (virtio 1.x, section 2.7): the descriptor table, the available
// ring the driver fills and the used ring the device returns chains on. It knows no transport and
// no KVM; it reaches guest memory only through GuestMemory's checked accessors, the ring indices
// with acquire/release order.
//
// The guest is hostile: every chain is checked before a device sees it (indices, loops, nested or
// malformed indirect tables, lengths, buffers outside RAM, readable after writable), and so is the
// layout the driver gave. An error from here means the queue is broken: the device model puts the
// device in DEVICE_NEEDS_RESET and stops using it until the driver resets it.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/error.h"
#include "memory/guest_memory.h"

namespace kiln::virtio {

// Feature bits every kiln device may offer (the device adds its own below bit 24).
inline constexpr std::uint64_t kFeatureRingIndirectDesc = 1ull << 28;
inline constexpr std::uint64_t kFeatureRingEventIdx = 1ull << 29;
inline constexpr std::uint64_t kFeatureVersion1 = 1ull << 32;

// Descriptor flags.
inline constexpr std::uint16_t kDescNext = 1;
inline constexpr std::uint16_t kDescWrite = 2;
inline constexpr std::uint16_t kDescIndirect = 4;
// The available ring's flag asking for no interrupt (without EVENT_IDX).
inline constexpr std::uint16_t kAvailNoInterrupt = 1;
inline constexpr std::uint16_t kUsedNoNotify = 1;

// One guest buffer of a chain, inside guest RAM (checked).
struct Buffer {
  GuestAddress addr;
  std::uint32_t len = 0;
};

// A chain the driver made available: its device-readable buffers, then its device-writable ones.
struct DescriptorChain {
  std::uint16_t head = 0;
  std::vector<Buffer> readable;
  std::vector<Buffer> writable;
  std::uint32_t readable_len = 0;
  std::uint32_t writable_len = 0;
};

class Queue {
 public:
  // Largest size a split queue can have.
  static constexpr std::uint16_t kMaxSize = 32768;

  explicit Queue(std::uint16_t max_size) : max_size_(max_size) {}

  // What the driver programs through the transport. `size` is the driver's choice (at most
  // max_size()); the addresses are guest-physical.
  std::uint16_t size = 0;
  bool ready = false;
  GuestAddress desc_table, avail_ring, used_ring;

  [[nodiscard]] std::uint16_t max_size() const { return max_size_; }

  // Checks what the driver programmed: a size that is a power of two and at most max_size(), and
  // the three areas aligned and inside guest RAM. Called when the device is activated.
  [[nodiscard]] Result<void> check_layout(const GuestMemory& mem) const;
  // The negotiated features that change how the rings are read: EVENT_IDX and INDIRECT_DESC.
  void set_features(std::uint64_t acked);

  // The next chain the driver made available, checked, or nullopt when there is none.
  [[nodiscard]] Result<std::optional<DescriptorChain>> pop(const GuestMemory& mem);
  // Puts chain `head` on the used ring with `written` bytes written into its writable buffers.
  [[nodiscard]] Result<void> add_used(const GuestMemory& mem, std::uint16_t head, std::uint32_t written);
  // Whether the driver wants an interrupt for the chains used since the last call that said yes
  // (EVENT_IDX's used_event, else the available ring's NO_INTERRUPT flag). False when none were.
  [[nodiscard]] Result<bool> needs_interrupt(const GuestMemory& mem);
  // Asks the driver to notify at its next chain: with EVENT_IDX through avail_event (the next
  // index kiln will read), else by clearing the used ring's NO_NOTIFY flag, which pop() sets while
  // the device is busy with the ring. Returns whether chains are available already, so a device
  // loops until this says no.
  [[nodiscard]] Result<bool> enable_notification(const GuestMemory& mem);

  // Back to the state after the device was created (the driver reset the device).
  void reset();

  // Where the device is in the rings (for snapshots, and for tests).
  [[nodiscard]] std::uint16_t next_avail() const { return next_avail_; }
  [[nodiscard]] std::uint16_t next_used() const { return next_used_; }

 private:
  [[nodiscard]] Result<std::uint16_t> avail_idx(const GuestMemory& mem) const;
  [[nodiscard]] Result<void> walk_chain(const GuestMemory& mem, std::uint16_t head, DescriptorChain& chain) const;

  std::uint16_t max_size_;
  bool event_idx_ = false;
  bool indirect_ = false;
  bool notify_off_ = false;  // without EVENT_IDX: the used ring's flags say NO_NOTIFY
  std::uint16_t next_avail_ = 0;
  std::uint16_t next_used_ = 0;
  // The used index at the last interrupt decision (EVENT_IDX); none right after a reset.
  std::optional<std::uint16_t> signalled_used_;
};

// Copies a chain's device-readable bytes, in order, into `out` (readable_len bytes of room).
[[nodiscard]] Result<void> read_readable(const GuestMemory& mem, const DescriptorChain& chain, std::span<std::byte> out);

// Hands each chain available on `q` to `handle` (which puts it on the used ring), at most `budget`
// of them, re-enabling notifications when the queue runs dry. True when the budget ran out (more
// may be there: the device goes on later, so one queue cannot hold the loop).
template <class Handle>
[[nodiscard]] Result<bool> drain(Queue& q, const GuestMemory& mem, int budget, Handle&& handle) {
  for (int done = 0; done < budget;) {
    KILN_ASSIGN(auto chain, q.pop(mem));
    if (!chain) {
      KILN_ASSIGN(const bool more, q.enable_notification(mem));
      if (!more) return false;
      continue;
    }
    ++done;
    KILN_CHECK(handle(*chain));
  }
  return true;
}

}  // namespace kiln::virtio
