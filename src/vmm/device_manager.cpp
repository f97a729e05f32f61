#include "vmm/device_manager.h"

namespace kiln {

DeviceManager::DeviceManager(Bus& pio, Bus& mmio, Pools pools)
    : pio_(pio),
      mmio_(mmio),
      ports_("port I/O", 0, 0x10000),
      mmio_window_("MMIO", pools.mmio_start, pools.mmio_end),
      irqs_("interrupt lines", 0, pools.gsi_end),
      gsi_start_(pools.gsi_start) {}

Result<const DeviceInfo*> DeviceManager::add_fixed_pio(std::string name, std::shared_ptr<BusDevice> device,
                                                       std::uint16_t port, std::uint16_t size,
                                                       std::optional<std::uint32_t> irq, acpi::Bytes dsdt) {
  KILN_CHECK(ports_.reserve(port, size, name));
  if (irq) {
    // Edge-triggered ISA lines are not shared: a second device on one is a mistake.
    if (auto r = irqs_.reserve(*irq, 1, name); !r) {
      ports_.release(port);
      return std::unexpected(r.error());
    }
  }
  if (auto r = pio_.insert(std::move(device), port, size); !r) {
    ports_.release(port);
    if (irq) irqs_.release(*irq);
    return std::unexpected(r.error());
  }
  devices_.push_back({std::move(name), DeviceInfo::Space::kPio, port, size, irq, std::move(dsdt), {}});
  return &devices_.back();
}

Result<const DeviceInfo*> DeviceManager::add_fixed_mmio(std::string name, std::shared_ptr<BusDevice> device,
                                                        std::uint64_t base, std::uint64_t size,
                                                        std::optional<std::uint32_t> irq) {
  if (irq) KILN_CHECK(irqs_.reserve(*irq, 1, name));
  if (auto r = mmio_.insert(std::move(device), base, size); !r) {
    if (irq) irqs_.release(*irq);
    return std::unexpected(r.error());
  }
  devices_.push_back({std::move(name), DeviceInfo::Space::kMmio, base, size, irq, {}, {}});
  return &devices_.back();
}

Result<std::uint32_t> DeviceManager::free_irq(std::uint32_t from) {
  KILN_ASSIGN(const std::uint64_t irq, irqs_.allocate(1, 1, "probe", from));
  irqs_.release(irq);
  return static_cast<std::uint32_t>(irq);
}

Result<const DeviceInfo*> DeviceManager::add_mmio(std::string name, std::shared_ptr<BusDevice> device,
                                                  std::uint64_t size, const Describe& describe) {
  constexpr std::uint64_t kPage = 4096;
  const std::uint64_t span = (size + kPage - 1) & ~(kPage - 1);
  KILN_ASSIGN(const std::uint64_t base, mmio_window_.allocate(span, kPage, name));
  auto irq = irqs_.allocate(1, 1, name, gsi_start_);
  if (!irq) {
    mmio_window_.release(base);
    return std::unexpected(irq.error());
  }
  DeviceInfo info{std::move(name), DeviceInfo::Space::kMmio, base, span, static_cast<std::uint32_t>(*irq), {}, {}};
  auto placed = describe ? describe(info) : Result<void>{};
  if (placed) placed = mmio_.insert(std::move(device), base, span);
  if (!placed) {
    mmio_window_.release(base);
    irqs_.release(*irq);
    return std::unexpected(placed.error());
  }
  devices_.push_back(std::move(info));
  return &devices_.back();
}

std::vector<acpi::Bytes> DeviceManager::dsdt_terms() const {
  std::vector<acpi::Bytes> out;
  for (const auto& d : devices_)
    if (!d.dsdt.empty()) out.push_back(d.dsdt);
  return out;
}

std::string DeviceManager::cmdline_args() const {
  std::string out;
  for (const auto& d : devices_) {
    if (d.cmdline.empty()) continue;
    if (!out.empty()) out += ' ';
    out += d.cmdline;
  }
  return out;
}

}  // namespace kiln
