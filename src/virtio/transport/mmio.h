#pragma once
// The virtio-mmio transport, version 2 (virtio 1.x, section 4.2): a 4 KiB register window on the
// MMIO bus. The guest finds it through the kernel command line (virtio_mmio.device=) or the DSDT
// (LNRO0005). Its interrupt is one edge-triggered line with a status register saying why.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "bus/bus.h"
#include "virtio/transport/transport_core.h"

namespace kiln::virtio {

// An edge-triggered interrupt line (an irqfd in the VMM).
class InterruptTrigger {
 public:
  virtual ~InterruptTrigger() = default;
  virtual void trigger() = 0;
};

class MmioTransport : public BusDevice, private VirtioInterrupt {
 public:
  static constexpr std::uint64_t kSize = 0x1000;
  static constexpr std::uint64_t kQueueNotify = 0x050;  // where an ioeventfd takes the notifications
  static constexpr std::uint64_t kConfig = 0x100;

  MmioTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& mem, InterruptTrigger& irq);

  void read(std::uint64_t offset, std::span<std::byte> data) override;
  void write(std::uint64_t offset, std::span<const std::byte> data) override;

  // A notification that did not come through a register write (an ioeventfd): serve it.
  void notify(std::uint32_t queue);
  void backend_ready();
  // The host changed the device's config (`fn` runs under the transport's lock).
  void change_config(const std::function<void(VirtioDevice&)>& fn);

  [[nodiscard]] const TransportCounters& counters() const { return core_.counters(); }
  [[nodiscard]] std::uint8_t status();
  [[nodiscard]] std::uint32_t interrupt_status() const { return interrupt_status_.load(); }

 private:
  void used_buffers(std::uint16_t queue) override;
  void config_changed() override;
  std::uint32_t read_register(std::uint64_t offset);
  void write_register(std::uint64_t offset, std::uint32_t value);

  TransportCore core_;
  InterruptTrigger& irq_;
  std::atomic<std::uint32_t> interrupt_status_{0};
  std::uint32_t device_features_sel_ = 0;
  std::uint32_t driver_features_sel_ = 0;
  std::uint32_t queue_sel_ = 0;
};

}  // namespace kiln::virtio
