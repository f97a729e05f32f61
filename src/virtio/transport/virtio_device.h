#pragma once
// The interface between a virtio device and its transport (virtio-mmio or virtio-pci): a device
// offers features, queues and a config space, is activated with its queues once the driver is
// ready, and is told when a queue was notified. It never knows which transport carries it.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "memory/guest_memory.h"
#include "virtio/queue/queue.h"

namespace kiln::virtio {

// Device types (virtio 1.x, section 5).
inline constexpr std::uint32_t kDeviceNet = 1;
inline constexpr std::uint32_t kDeviceBlock = 2;
inline constexpr std::uint32_t kDeviceRng = 4;
inline constexpr std::uint32_t kDeviceVsock = 19;

// Device status bits (section 2.1).
inline constexpr std::uint8_t kStatusAcknowledge = 1;
inline constexpr std::uint8_t kStatusDriver = 2;
inline constexpr std::uint8_t kStatusDriverOk = 4;
inline constexpr std::uint8_t kStatusFeaturesOk = 8;
inline constexpr std::uint8_t kStatusNeedsReset = 64;
inline constexpr std::uint8_t kStatusFailed = 128;

// How a device tells its driver something happened; the transport implements it (virtio-mmio:
// its interrupt status register and line; virtio-pci: MSI-X vectors or INTx).
class VirtioInterrupt {
 public:
  virtual ~VirtioInterrupt() = default;
  virtual void used_buffers(std::uint16_t queue) = 0;
  virtual void config_changed() = 0;
};

// What a device gets when the driver sets DRIVER_OK: the queues the driver laid out (checked),
// guest memory, its interrupt and the features both sides agreed on. Valid until reset().
struct Activation {
  const GuestMemory* mem = nullptr;
  std::span<Queue> queues;
  VirtioInterrupt* interrupt = nullptr;
  std::uint64_t features = 0;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;
  [[nodiscard]] virtual std::uint32_t device_type() const = 0;
  // For log lines: "virtio-blk rootfs".
  [[nodiscard]] virtual std::string name() const = 0;
  // What the device offers (VERSION_1 and the ring features included).
  [[nodiscard]] virtual std::uint64_t features() const = 0;
  // One entry per queue: its largest size.
  [[nodiscard]] virtual std::vector<std::uint16_t> queue_max_sizes() const = 0;
  // The device-specific config space; reads past its end see zeros, writes there are dropped.
  virtual void read_config(std::uint64_t offset, std::span<std::byte> data) const = 0;
  virtual void write_config(std::uint64_t offset, std::span<const std::byte> data) = 0;
  // The driver is ready. An error fails the activation (the device stays inactive, NEEDS_RESET).
  [[nodiscard]] virtual Result<void> activate(const Activation& a) = 0;
  // The driver notified queue `index` (a valid index of an active device). An error is a broken
  // queue or request: the transport puts the device in NEEDS_RESET and stops calling it.
  [[nodiscard]] virtual Result<void> queue_notify(std::uint16_t index) = 0;
  // The device's back end has work to finish (its completion fd became readable).
  [[nodiscard]] virtual Result<void> backend_ready() { return {}; }
  // The driver reset the device: requests in flight are finished first (they write guest memory),
  // then everything the activation gave is forgotten.
  virtual void reset() = 0;
};

}  // namespace kiln::virtio
