#pragma once
// virtio-rng (virtio 1.x, section 5.4): one queue of device-writable buffers, filled from the
// host's getrandom(2). A request is filled up to kMaxPerRequest bytes (the driver asks for tens
// of bytes; a huge buffer must not hold the VMM thread).
#include <atomic>
#include <cstdint>

#include "virtio/transport/virtio_device.h"

namespace kiln::virtio {

class RngDevice : public VirtioDevice {
 public:
  static constexpr std::uint32_t kMaxPerRequest = 64 * 1024;
  static constexpr std::uint16_t kQueueSize = 256;

  [[nodiscard]] std::uint32_t device_type() const override { return kDeviceRng; }
  [[nodiscard]] std::string name() const override { return "virtio-rng"; }
  [[nodiscard]] std::uint64_t features() const override;
  [[nodiscard]] std::vector<std::uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
  void read_config(std::uint64_t offset, std::span<std::byte> data) const override;
  void write_config(std::uint64_t, std::span<const std::byte>) override {}
  [[nodiscard]] Result<void> activate(const Activation& a) override;
  [[nodiscard]] Result<void> queue_notify(std::uint16_t index) override;
  void reset() override { act_ = {}; }

  [[nodiscard]] std::uint64_t bytes_served() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  Activation act_;
  std::atomic<std::uint64_t> bytes_{0};
};

}  // namespace kiln::virtio
