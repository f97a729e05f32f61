#include "pci/pci.h"

#include <cstring>

namespace kiln::pci {

namespace {
constexpr std::size_t kStatus = 0x06, kCapPtr = 0x34, kBar0 = 0x10;
constexpr std::uint16_t kStatusCapList = 1 << 4;

// The host bridge: an identity and nothing else.
class HostBridge : public Function {
 public:
  HostBridge() { cfg_.set_ids(0x8086, 0x29c0, 0x060000, 0, 0x1af4, 0x1100); }  // as QEMU's q35 host bridge
  void config_read(std::uint64_t offset, std::span<std::byte> data) override { cfg_.read(offset, data); }
  void config_write(std::uint64_t offset, std::span<const std::byte> data) override { cfg_.write(offset, data); }

 private:
  ConfigSpace cfg_;
};
}  // namespace

ConfigSpace::ConfigSpace() {
  // Command: I/O, memory, bus master, INTx disable are the guest's; the rest read as zero.
  writable_[4] = 0x07;
  writable_[5] = 0x04;
  writable_[0x3c] = 0xff;  // interrupt line: the guest's scratch
}

void ConfigSpace::put(std::size_t at, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) bytes_[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

void ConfigSpace::set_ids(std::uint16_t vendor, std::uint16_t device, std::uint32_t class_code, std::uint8_t revision,
                          std::uint16_t subsystem_vendor, std::uint16_t subsystem) {
  put(0x00, vendor, 2);
  put(0x02, device, 2);
  put(0x08, revision, 1);
  put(0x09, class_code, 3);
  put(0x2c, subsystem_vendor, 2);
  put(0x2e, subsystem, 2);
}

void ConfigSpace::set_bar64(int index, std::uint64_t addr, std::uint64_t size) {
  bars_[index] = {addr, size};
  put(kBar0 + 4 * index, addr | 0x4 /* 64-bit, memory, not prefetchable */, 4);
  put(kBar0 + 4 * (index + 1), addr >> 32, 4);
}

void ConfigSpace::set_interrupt(std::uint8_t pin, std::uint8_t line) {
  bytes_[0x3d] = pin;
  bytes_[0x3c] = line;
}

std::uint8_t ConfigSpace::add_capability(std::span<const std::uint8_t> cap, std::span<const std::uint8_t> writable) {
  const std::uint8_t at = next_cap_;
  std::memcpy(bytes_.data() + at, cap.data(), cap.size());
  for (std::size_t i = 0; i < writable.size() && i < cap.size(); ++i) writable_[at + i] = writable[i];
  bytes_[at + 1] = 0;
  if (last_cap_ == 0) bytes_[kCapPtr] = at;
  else bytes_[last_cap_ + 1] = at;
  last_cap_ = at;
  bytes_[kStatus] |= kStatusCapList;
  next_cap_ = static_cast<std::uint8_t>((at + cap.size() + 3) & ~3u);
  return at;
}

void ConfigSpace::read(std::uint64_t offset, std::span<std::byte> data) const {
  for (std::size_t i = 0; i < data.size(); ++i) {
    const std::uint64_t at = offset + i;
    data[i] = std::byte{at < bytes_.size() ? bytes_[at] : std::uint8_t{0}};
  }
}

void ConfigSpace::write(std::uint64_t offset, std::span<const std::byte> data) {
  if (offset >= kBar0 && offset < kBar0 + 24) {
    // BARs, a dword at a time: all ones asks for the size; other values are addresses, and kiln's
    // devices stay where kiln put them.
    if (data.size() != 4 || offset % 4 != 0) return;
    std::uint32_t v = 0;
    std::memcpy(&v, data.data(), 4);
    const int index = static_cast<int>((offset - kBar0) / 4);
    const int first = (index % 2 == 1 && bars_[index - 1].size) ? index - 1 : index;
    const Bar& bar = bars_[first];
    if (bar.size == 0) return;  // no BAR here: reads as zero
    const bool high = index != first;
    if (v == 0xffff'ffff) {
      const std::uint64_t mask = ~(bar.size - 1);
      put(offset, high ? mask >> 32 : (mask & 0xffff'fff0) | 0x4, 4);
      return;
    }
    const std::uint64_t now = high ? (bar.addr & 0xffff'ffff) | std::uint64_t{v} << 32
                                   : (bar.addr & ~0xffff'ffffull) | (v & ~0xfull);
    if (now != bar.addr && (v & ~0xfu) != 0) {
      static RateLimit limit;
      if (limit.allow())
        SPDLOG_WARN("PCI: the guest moved BAR {} to {:#x}; kiln keeps the device at {:#x}{}", first, now, bar.addr,
                    limit.suppressed_note());
    }
    put(offset, high ? bar.addr >> 32 : (bar.addr & 0xffff'ffff) | 0x4, 4);
    return;
  }
  for (std::size_t i = 0; i < data.size(); ++i) {
    const std::uint64_t at = offset + i;
    if (at >= bytes_.size()) break;
    const auto b = std::to_integer<std::uint8_t>(data[i]);
    bytes_[at] = static_cast<std::uint8_t>((bytes_[at] & ~writable_[at]) | (b & writable_[at]));
  }
}

RootBus::RootBus() { slots_[0] = std::make_shared<HostBridge>(); }

Result<std::uint8_t> RootBus::add(std::shared_ptr<Function> f) {
  std::lock_guard lock(mu_);
  for (std::uint8_t d = 1; d < slots_.size(); ++d) {
    if (slots_[d]) continue;
    slots_[d] = std::move(f);
    return d;
  }
  return plain_error("PCI bus 0 is full: at most 31 devices");
}

void RootBus::read(std::uint8_t bus, std::uint8_t dev, std::uint8_t fn, std::uint16_t reg, std::span<std::byte> data) {
  std::shared_ptr<Function> f;
  {
    std::lock_guard lock(mu_);
    if (bus == 0 && fn == 0 && dev < slots_.size()) f = slots_[dev];
  }
  if (!f) {
    std::memset(data.data(), 0xff, data.size());
    return;
  }
  if (reg >= 256) {  // PCIe extended space: none
    std::memset(data.data(), 0, data.size());
    return;
  }
  f->config_read(reg, data);
}

void RootBus::write(std::uint8_t bus, std::uint8_t dev, std::uint8_t fn, std::uint16_t reg,
                    std::span<const std::byte> data) {
  std::shared_ptr<Function> f;
  {
    std::lock_guard lock(mu_);
    if (bus == 0 && fn == 0 && dev < slots_.size()) f = slots_[dev];
  }
  if (f && reg < 256) f->config_write(reg, data);
}

void ConfigPorts::read(std::uint64_t offset, std::span<std::byte> data) {
  std::lock_guard lock(mu_);
  if (offset == 0 && data.size() == 4) {
    std::memcpy(data.data(), &address_, 4);
    return;
  }
  if (offset >= 4 && (address_ & 0x8000'0000u)) {
    const std::uint16_t reg = static_cast<std::uint16_t>((address_ & 0xfc) | (offset - 4));
    if (reg % 4 + data.size() <= 4) {
      bus_.read(static_cast<std::uint8_t>(address_ >> 16), (address_ >> 11) & 0x1f, (address_ >> 8) & 7, reg, data);
      return;
    }
  }
  std::memset(data.data(), 0xff, data.size());
}

void ConfigPorts::write(std::uint64_t offset, std::span<const std::byte> data) {
  std::lock_guard lock(mu_);
  if (offset == 0 && data.size() == 4) {
    std::memcpy(&address_, data.data(), 4);
    return;
  }
  if (offset >= 4 && (address_ & 0x8000'0000u)) {
    const std::uint16_t reg = static_cast<std::uint16_t>((address_ & 0xfc) | (offset - 4));
    if (reg % 4 + data.size() <= 4)
      bus_.write(static_cast<std::uint8_t>(address_ >> 16), (address_ >> 11) & 0x1f, (address_ >> 8) & 7, reg, data);
  }
}

void Ecam::read(std::uint64_t offset, std::span<std::byte> data) {
  const std::uint16_t reg = offset & 0xfff;
  if (reg % 4 + data.size() > 4) {
    std::memset(data.data(), 0xff, data.size());
    return;
  }
  bus_.read(static_cast<std::uint8_t>(offset >> 20), (offset >> 15) & 0x1f, (offset >> 12) & 7, reg, data);
}

void Ecam::write(std::uint64_t offset, std::span<const std::byte> data) {
  const std::uint16_t reg = offset & 0xfff;
  if (reg % 4 + data.size() > 4) return;
  bus_.write(static_cast<std::uint8_t>(offset >> 20), (offset >> 15) & 0x1f, (offset >> 12) & 7, reg, data);
}

}  // namespace kiln::pci
