// A split virtqueue fed by a hostile driver: the queue's size, features and ring addresses come from
// the input, and the rest of the input is guest memory (descriptors, rings, indirect tables). The
// device side pops, returns chains and decides interrupts until the queue is empty or broken; a
// chain it accepts is never longer than the queue, and nothing it does may crash or run unbounded.
#include <cstdint>
#include <cstdlib>

#include "virtio/queue/queue.h"
#include "virtio_fuzz_memory.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kiln;
  if (size < 12) return 0;
  virtio::Queue q(256);
  q.size = static_cast<std::uint16_t>(data[0] & 0x80 ? data[0] : 1u << (data[0] % 9));
  q.set_features((data[1] & 1 ? virtio::kFeatureRingEventIdx : 0) | (data[1] & 2 ? virtio::kFeatureRingIndirectDesc : 0));
  auto addr = [&](int i) { return GuestAddress{static_cast<std::uint64_t>(data[2 + 2 * i] | data[3 + 2 * i] << 8) * 4}; };
  q.desc_table = addr(0);
  q.avail_ring = addr(1);
  q.used_ring = addr(2);
  q.ready = true;
  const unsigned rounds = data[8] % 64 + 1;
  const GuestMemory mem = fuzz::fuzz_memory({data + 12, size - 12});
  if (!q.check_layout(mem)) return 0;
  for (unsigned r = 0; r < rounds; ++r) {
    for (unsigned n = 0; n < 2 * 256u; ++n) {
      auto chain = q.pop(mem);
      if (!chain) return 0;  // broken: the device would need a reset
      if (!*chain) break;
      if ((*chain)->readable.size() + (*chain)->writable.size() > q.size) std::abort();
      if (!q.add_used(mem, (*chain)->head, (*chain)->writable_len)) return 0;
    }
    if (!q.needs_interrupt(mem)) return 0;
    auto more = q.enable_notification(mem);
    if (!more || !*more) break;
  }
  return 0;
}
