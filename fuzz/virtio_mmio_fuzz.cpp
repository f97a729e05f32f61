// The virtio-mmio transport fed by a hostile driver: a sequence of register and config-space reads
// and writes of any offset and size, notifications, and changes to guest memory between them, over
// a virtio-rng or virtio-blk device. Whatever the order (features after DRIVER_OK, queues moved
// while running, resets in the middle), nothing may crash.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "virtio/block/block.h"
#include "virtio/rng/rng.h"
#include "virtio/transport/mmio.h"
#include "virtio_fuzz_memory.h"

namespace {
struct NullTrigger : kiln::virtio::InterruptTrigger {
  void trigger() override {}
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kiln;
  if (size < 2) return 0;
  GuestMemory mem = fuzz::fuzz_memory({});
  std::shared_ptr<virtio::VirtioDevice> dev = fuzz::fuzz_virtio_device(data[0]);
  NullTrigger irq;
  virtio::MmioTransport t(dev, mem, irq);
  // Ops of 8 bytes: kind, size, offset (2), value (4).
  for (std::size_t at = 1; at + 8 <= size; at += 8) {
    const std::uint8_t kind = data[at] % 4;
    const std::size_t len = std::size_t{1} << (data[at + 1] % 4);
    const std::uint64_t off = (data[at + 2] | data[at + 3] << 8) % 0x1000;
    std::uint8_t value[8] = {};
    std::memcpy(value, data + at + 4, 4);
    std::memcpy(value + 4, data + at + 4, 4);
    std::byte buf[8];
    switch (kind) {
      case 0: t.read(off, std::span(buf, len)); break;
      case 1: t.write(off, std::as_bytes(std::span(value, len))); break;
      case 2: t.notify(value[0]); break;
      case 3: (void)mem.write(GuestAddress{(off * 16) % fuzz::kLowSize}, std::as_bytes(std::span(value, 4))); break;
    }
  }
  t.backend_ready();
  return 0;
}
