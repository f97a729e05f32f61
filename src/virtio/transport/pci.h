#pragma once
// The virtio-pci transport, modern interface only (virtio 1.x, section 4.1): a PCI function with
// the virtio vendor capabilities (common, notify, ISR, device and PCI-config access) pointing into
// one 64-bit memory BAR, which also holds the MSI-X table and PBA. Interrupts are MSI-X messages
// (one vector per queue and one for config changes, as Linux asks) or, while MSI-X is off, the
// level-triggered INTA line with the ISR register saying why.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "bus/bus.h"
#include "devices/irq_line.h"
#include "pci/pci.h"
#include "virtio/transport/transport_core.h"

namespace kiln::virtio {

// What the VMM gives a virtio-pci device for its MSI-X vectors: a route per vector (the message
// the guest programmed; KVM's GSI routing), and a way to send one (an irqfd).
class MsiVectors {
 public:
  virtual ~MsiVectors() = default;
  // Vector `vector` sends `address`/`data` from now on; `enabled` false: it sends nothing.
  virtual void route(std::uint16_t vector, std::uint64_t address, std::uint32_t data, bool enabled) = 0;
  virtual void fire(std::uint16_t vector) = 0;
};

class PciTransport : public pci::Function, public BusDevice, private VirtioInterrupt {
 public:
  // The BAR's layout.
  static constexpr std::uint64_t kBarSize = 0x8000;
  static constexpr std::uint64_t kCommon = 0x0000, kIsr = 0x1000, kDeviceCfg = 0x2000, kNotify = 0x3000,
                                 kMsixTable = 0x4000, kMsixPba = 0x5000;
  static constexpr std::uint32_t kNotifyMultiplier = 4;  // queue q is notified at kNotify + 4 * q
  static constexpr std::uint16_t kNoVector = 0xffff;

  // `bar`: the guest-physical address kiln gave the BAR; `intx_line`: the GSI INTA is routed to.
  PciTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& mem, MsiVectors& msi, IrqLine& intx,
               std::uint64_t bar, std::uint8_t intx_line);

  // PCI configuration space.
  void config_read(std::uint64_t offset, std::span<std::byte> data) override;
  void config_write(std::uint64_t offset, std::span<const std::byte> data) override;
  // The BAR.
  void read(std::uint64_t offset, std::span<std::byte> data) override;
  void write(std::uint64_t offset, std::span<const std::byte> data) override;

  void notify(std::uint32_t queue);
  void backend_ready();
  void change_config(const std::function<void(VirtioDevice&)>& fn);

  [[nodiscard]] std::uint16_t num_vectors() const { return static_cast<std::uint16_t>(msix_.size()); }
  [[nodiscard]] std::size_t num_queues() const { return core_.num_queues(); }
  [[nodiscard]] const TransportCounters& counters() const { return core_.counters(); }

 private:
  struct MsixEntry {
    std::uint64_t address = 0;
    std::uint32_t data = 0;
    bool masked = true;
    bool pending = false;
  };
  void used_buffers(std::uint16_t queue) override;
  void config_changed() override;
  void signal(std::uint16_t vector);
  void raise_intx(std::uint8_t why);
  void set_intx(bool high);
  void update_routes();
  [[nodiscard]] bool msix_enabled() const;
  [[nodiscard]] bool msix_function_masked() const;
  std::uint64_t read_common(std::uint64_t offset, std::size_t size);
  void write_common(std::uint64_t offset, std::size_t size, std::uint64_t value);
  void bar_read_locked(std::uint64_t offset, std::span<std::byte> data);
  void bar_write_locked(std::uint64_t offset, std::span<const std::byte> data);
  std::uint16_t checked_vector(std::uint16_t v) const { return v < msix_.size() ? v : kNoVector; }

  TransportCore core_;
  MsiVectors& msi_;
  IrqLine& intx_;
  pci::ConfigSpace cfg_;
  std::uint8_t msix_cap_ = 0, pci_cfg_cap_ = 0;
  std::vector<MsixEntry> msix_;
  std::uint16_t config_vector_ = kNoVector;
  std::vector<std::uint16_t> queue_vectors_;
  std::uint8_t isr_ = 0;
  bool intx_high_ = false;  // what INTA was last set to
  std::uint32_t device_features_sel_ = 0, driver_features_sel_ = 0;
  std::uint16_t queue_sel_ = 0;
  bool routes_enabled_ = false;
};

}  // namespace kiln::virtio
