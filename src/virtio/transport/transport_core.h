#pragma once
// What virtio-mmio and virtio-pci share: feature negotiation, the device status state machine, the
// queues the driver programs, activation at DRIVER_OK, notifications, and DEVICE_NEEDS_RESET when
// the device reports a broken queue (rate-limited log line, counter; the VM and the other devices
// go on, and a reset by the driver brings the device back).
//
// Threads: register accesses come from vCPU threads, notifications and back-end completions from
// the VMM's event loop. Every entry point takes the core's lock, so the device sees one caller at
// a time.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "base/log.h"
#include "virtio/transport/virtio_device.h"

namespace kiln::virtio {

// Counters a transport keeps for metrics.
struct TransportCounters {
  std::atomic<std::uint64_t> notifications{0};
  std::atomic<std::uint64_t> interrupts{0};
  std::atomic<std::uint64_t> needs_reset{0};
  std::atomic<std::uint64_t> resets{0};
  std::atomic<std::uint64_t> activations{0};
};

class TransportCore {
 public:
  TransportCore(std::shared_ptr<VirtioDevice> device, const GuestMemory& mem, VirtioInterrupt& interrupt);

  // The lock every register access and notification holds. The methods below expect it held.
  std::mutex& mutex() { return mu_; }

  [[nodiscard]] VirtioDevice& device() { return *device_; }
  [[nodiscard]] const VirtioDevice& device() const { return *device_; }
  [[nodiscard]] std::uint32_t device_features_word(std::uint32_t sel) const;
  [[nodiscard]] std::uint32_t driver_features_word(std::uint32_t sel) const;
  // Ignored once FEATURES_OK is set.
  void set_driver_features_word(std::uint32_t sel, std::uint32_t value);
  [[nodiscard]] std::uint64_t driver_features() const { return driver_features_; }

  [[nodiscard]] std::uint8_t status() const { return status_; }
  // 0 resets the device; FEATURES_OK is kept only if the driver's features are acceptable;
  // DRIVER_OK checks the queues and activates the device.
  void set_status(std::uint8_t status);
  [[nodiscard]] bool active() const { return active_; }
  [[nodiscard]] bool broken() const { return (status_ & kStatusNeedsReset) != 0; }
  // The driver may change a queue's size, addresses and readiness only now.
  [[nodiscard]] bool queues_writable() const { return (status_ & kStatusDriverOk) == 0; }

  [[nodiscard]] std::size_t num_queues() const { return queues_.size(); }
  // nullptr for an index the device does not have.
  [[nodiscard]] Queue* queue(std::uint32_t index) { return index < queues_.size() ? &queues_[index] : nullptr; }

  // The driver notified queue `index`: passed to an active, unbroken device whose queue it is
  // and is ready; anything else is dropped.
  void notify(std::uint32_t index);
  // The device's back end has completions to handle.
  void backend_ready();

  [[nodiscard]] std::uint32_t config_generation() const { return config_generation_; }
  // The device's config changed on the host's side (a resized disk): the generation moves and,
  // when the driver is running, it gets a config-change interrupt.
  void config_changed();

  // The device reported an error: NEEDS_RESET until the driver resets it.
  void fail(const Error& e);

  [[nodiscard]] const TransportCounters& counters() const { return counters_; }
  void count_interrupt() { counters_.interrupts.fetch_add(1, std::memory_order_relaxed); }

 private:
  void reset();
  void activate();

  std::mutex mu_;
  std::shared_ptr<VirtioDevice> device_;
  const GuestMemory& mem_;
  VirtioInterrupt& interrupt_;
  std::vector<Queue> queues_;
  std::uint64_t driver_features_ = 0;
  std::uint8_t status_ = 0;
  bool active_ = false;
  std::uint32_t config_generation_ = 0;
  TransportCounters counters_;
  RateLimit fail_log_;
};

}  // namespace kiln::virtio
