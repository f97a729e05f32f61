// virtio-blk's request path fed by a hostile driver: a queue laid out by the input over guest
// memory the input fills, requests of any type, sector and shape, on a scratch image with the sync
// engine. A malformed request may break the queue (an error), never kiln; a read-only variant must
// leave the image unchanged.
#include <cstdint>
#include <cstdlib>

#include "virtio/block/block.h"
#include "virtio_fuzz_memory.h"

namespace {
struct NullInterrupt : kiln::virtio::VirtioInterrupt {
  void used_buffers(std::uint16_t) override {}
  void config_changed() override {}
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kiln;
  if (size < 12) return 0;
  const bool read_only = data[9] & 1;
  auto image = virtio::DiskImage::open(fuzz::fuzz_disk_path(), read_only, "fuzz");
  if (!image) std::abort();
  const int fd = image->fd.get();
  virtio::BlockDevice dev({.id = "fuzz", .serial = "fuzz", .cache_unsafe = (data[9] & 2) != 0, .queue_size = 64},
                          std::move(*image), virtio::BlockEngine::create_sync(fd));
  std::vector<virtio::Queue> queues;
  queues.emplace_back(64);
  virtio::Queue& q = queues[0];
  q.size = static_cast<std::uint16_t>(1u << (data[0] % 7));
  auto addr = [&](int i) { return GuestAddress{static_cast<std::uint64_t>(data[2 + 2 * i] | data[3 + 2 * i] << 8) * 4}; };
  q.desc_table = addr(0);
  q.avail_ring = addr(1);
  q.used_ring = addr(2);
  q.ready = true;
  const std::uint64_t features = dev.features() & ~((data[1] & 1 ? 0 : virtio::kFeatureRingEventIdx) |
                                                    (data[1] & 2 ? 0 : virtio::kFeatureRingIndirectDesc) |
                                                    (data[1] & 4 ? 0 : virtio::BlockDevice::kFeatureFlush));
  const GuestMemory mem = fuzz::fuzz_memory({data + 12, size - 12});
  if (!q.check_layout(mem)) return 0;
  q.set_features(features);
  NullInterrupt irq;
  if (!dev.activate({.mem = &mem, .queues = queues, .interrupt = &irq, .features = features})) std::abort();
  if (data[10] & 1) {
    const std::uint8_t wce = data[10] >> 1 & 1;
    dev.write_config(32, std::as_bytes(std::span(&wce, 1)));
  }
  std::byte cfg[64];
  dev.read_config(data[11] % 70, cfg);
  (void)dev.queue_notify(0);
  (void)dev.backend_ready();
  dev.reset();
  return 0;
}
