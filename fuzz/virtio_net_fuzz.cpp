// virtio-net fed by a hostile driver: both queues laid out by the input over guest memory the input
// fills, transmit chains of any shape and header, receive buffers of any size, with frames of
// input-chosen sizes and offload headers arriving from a back end that may also refuse what is sent
// and may or may not offer offloads. A broken queue may be an error, never a crash, a hang or an
// unbounded allocation; a frame reaches the back end only whole, with only the offloads it offers.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>

#include "virtio/net/net.h"
#include "virtio_fuzz_memory.h"

namespace {
using namespace kiln;

struct NullInterrupt : virtio::VirtioInterrupt {
  void used_buffers(std::uint16_t) override {}
  void config_changed() override {}
};

class FuzzBackend : public virtio::NetBackend {
 public:
  std::string describe() const override { return "fuzz"; }
  std::uint64_t offloads() const override { return offers; }
  Result<bool> send(const virtio::NetHeader& h, std::span<const std::byte> f) override {
    if (f.size() < 14 || f.size() > virtio::kMaxFrame) std::abort();  // the device sends frames only
    // ... with only the offloads this back end offers
    if ((h.flags & virtio::kNetHdrNeedsCsum) && !(offers & virtio::kNetFCsum)) std::abort();
    if (h.gso_type != virtio::kNetGsoNone && !(offers & virtio::kNetHostSegmentation)) std::abort();
    return !full;
  }
  Result<std::size_t> receive(std::span<std::byte> buf) override {
    if (incoming.empty()) return 0;
    const std::size_t n = incoming.front();
    incoming.pop_front();
    if (sizeof(virtio::NetHeader) + n > buf.size()) std::abort();
    std::memset(buf.data() + sizeof(virtio::NetHeader), 0x5a, n);
    // Any header the host's side may give, sensible or not.
    virtio::NetHeader h;
    h.flags = static_cast<std::uint8_t>(n);
    h.gso_type = static_cast<std::uint8_t>(n >> 3);
    h.csum_start = static_cast<std::uint16_t>(n * 7);
    h.csum_offset = static_cast<std::uint16_t>(n >> 5);
    std::memcpy(buf.data(), &h, sizeof h);
    return n;
  }
  int rx_fd() const override { return -1; }
  std::deque<std::size_t> incoming;
  bool full = false;
  std::uint64_t offers = 0;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kHead = 20;
  if (size < kHead) return 0;
  auto backend = std::make_unique<FuzzBackend>();
  FuzzBackend& b = *backend;
  b.full = data[3] & 1;
  b.offers = data[3] & 2 ? virtio::kNetOffloads : 0;
  // Frames from the outside: data[4] of them, sizes from data[5] (up to the largest frame).
  for (int i = 0; i < data[4] % 16; ++i) b.incoming.push_back(14 + (std::size_t{data[5]} * 257 * (i + 1)) % virtio::kMaxFrame);
  auto dev = virtio::NetDevice::create({.id = "fuzz", .mac = virtio::MacAddress{6, 0, 0, 0, 0, 1}, .queue_size = 64},
                                       std::move(backend));
  if (!dev) std::abort();
  std::vector<virtio::Queue> queues;
  queues.emplace_back(64);
  queues.emplace_back(64);
  auto addr = [&](int i) { return GuestAddress{static_cast<std::uint64_t>(data[6 + 2 * i] | data[7 + 2 * i] << 8) * 4}; };
  for (int qi = 0; qi < 2; ++qi) {
    virtio::Queue& q = queues[static_cast<std::size_t>(qi)];
    q.size = static_cast<std::uint16_t>(1u << (data[qi] % 7));
    q.desc_table = addr(3 * qi);
    q.avail_ring = addr(3 * qi + 1);
    q.used_ring = addr(3 * qi + 2);
    q.ready = true;
  }
  const std::uint64_t features = (*dev)->features() & ~((data[2] & 1 ? 0 : virtio::kFeatureRingEventIdx) |
                                                        (data[2] & 2 ? 0 : virtio::kFeatureRingIndirectDesc) |
                                                        (data[2] & 4 ? 0 : virtio::NetDevice::kFeatureMrgRxbuf) |
                                                        (data[2] & 8 ? 0 : virtio::kNetOffloads));
  const GuestMemory mem = fuzz::fuzz_memory({data + kHead, size - kHead});
  for (auto& q : queues) {
    if (!q.check_layout(mem)) return 0;
    q.set_features(features);
  }
  NullInterrupt irq;
  if (!(*dev)->activate({.mem = &mem, .queues = queues, .interrupt = &irq, .features = features})) std::abort();
  std::byte cfg[16];
  (*dev)->read_config(data[18] % 20, cfg);
  if (data[19] & 1) {
    (void)(*dev)->queue_notify(virtio::NetDevice::kRxQueue);
    (void)(*dev)->queue_notify(virtio::NetDevice::kTxQueue);
  } else {
    (void)(*dev)->queue_notify(virtio::NetDevice::kTxQueue);
    (void)(*dev)->queue_notify(virtio::NetDevice::kRxQueue);
  }
  for (int i = 0; i < 4; ++i) (void)(*dev)->backend_ready();
  (*dev)->reset();
  // The checksum helper on the same bytes.
  std::vector<std::byte> frame(std::min<std::size_t>(size - kHead, 2048));
  std::memcpy(frame.data(), data + kHead, frame.size());
  (void)virtio::complete_checksum(frame, static_cast<std::uint16_t>(data[6] | data[7] << 8),
                                  static_cast<std::uint16_t>(data[8] | data[9] << 8));
  return 0;
}
