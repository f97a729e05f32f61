// The virtio-pci transport fed by a hostile driver: PCI configuration reads and writes (BAR sizing,
// the MSI-X capability, the PCI-config access window), BAR accesses of any offset and size (common
// config, ISR, device config, notifications, the MSI-X table and PBA) and changes to guest memory,
// in any order, over a virtio-rng or virtio-blk device. Nothing may crash.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "virtio/block/block.h"
#include "virtio/rng/rng.h"
#include "virtio/transport/pci.h"
#include "virtio_fuzz_memory.h"

namespace {
struct NullMsi : kiln::virtio::MsiVectors {
  void route(std::uint16_t, std::uint64_t, std::uint32_t, bool) override {}
  void fire(std::uint16_t) override {}
};
struct NullLine : kiln::IrqLine {
  void set_level(bool) override {}
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kiln;
  if (size < 2) return 0;
  GuestMemory mem = fuzz::fuzz_memory({});
  std::shared_ptr<virtio::VirtioDevice> dev = fuzz::fuzz_virtio_device(data[0]);
  NullMsi msi;
  NullLine line;
  virtio::PciTransport t(dev, mem, msi, line, 0xc000'0000, 16);
  // Ops of 8 bytes: kind, size, offset (2), value (4).
  for (std::size_t at = 1; at + 8 <= size; at += 8) {
    const std::uint8_t kind = data[at] % 6;
    const std::size_t len = std::size_t{1} << (data[at + 1] % 4);
    const std::uint64_t off = data[at + 2] | data[at + 3] << 8;
    std::uint8_t value[8] = {};
    std::memcpy(value, data + at + 4, 4);
    std::memcpy(value + 4, data + at + 4, 4);
    std::byte buf[8];
    switch (kind) {
      case 0: t.config_read(off % 256, std::span(buf, len)); break;
      case 1: t.config_write(off % 256, std::as_bytes(std::span(value, len))); break;
      case 2: t.read(off % virtio::PciTransport::kBarSize, std::span(buf, len)); break;
      case 3: t.write(off % virtio::PciTransport::kBarSize, std::as_bytes(std::span(value, len))); break;
      case 4: t.notify(value[0]); break;
      case 5: (void)mem.write(GuestAddress{(off * 16) % fuzz::kLowSize}, std::as_bytes(std::span(value, 4))); break;
    }
  }
  t.backend_ready();
  return 0;
}
