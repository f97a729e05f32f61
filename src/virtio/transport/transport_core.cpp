#include "virtio/transport/transport_core.h"

namespace kiln::virtio {

TransportCore::TransportCore(std::shared_ptr<VirtioDevice> device, const GuestMemory& mem, VirtioInterrupt& interrupt)
    : device_(std::move(device)), mem_(mem), interrupt_(interrupt) {
  for (const std::uint16_t max : device_->queue_max_sizes()) queues_.emplace_back(max);
}

std::uint32_t TransportCore::device_features_word(std::uint32_t sel) const {
  if (sel > 1) return 0;
  return static_cast<std::uint32_t>(device_->features() >> (32 * sel));
}

std::uint32_t TransportCore::driver_features_word(std::uint32_t sel) const {
  if (sel > 1) return 0;
  return static_cast<std::uint32_t>(driver_features_ >> (32 * sel));
}

void TransportCore::set_driver_features_word(std::uint32_t sel, std::uint32_t value) {
  if ((status_ & kStatusFeaturesOk) || sel > 1) return;
  const std::uint64_t mask = 0xffff'ffffull << (32 * sel);
  driver_features_ = (driver_features_ & ~mask) | (static_cast<std::uint64_t>(value) << (32 * sel));
}

void TransportCore::set_status(std::uint8_t status) {
  if (status == 0) {
    reset();
    return;
  }
  // A driver sets bits one step at a time and never clears one (section 2.1); a write that would
  // clear one is ignored, except that NEEDS_RESET is the device's and stays.
  const std::uint8_t keep = status_ & kStatusNeedsReset;
  if ((status & (status_ & ~kStatusNeedsReset)) != (status_ & ~kStatusNeedsReset)) {
    static RateLimit limit;
    if (limit.allow())
      SPDLOG_WARN("{}: the driver cleared device status bits ({:#x} -> {:#x}) without a reset; ignored{}",
                  device_->name(), status_, status, limit.suppressed_note());
    return;
  }
  const std::uint8_t added = status & ~status_;
  if (added & kStatusFeaturesOk) {
    // Features the device did not offer, or a driver without VERSION_1 (kiln has no legacy
    // interface): FEATURES_OK does not stick, which tells the driver it cannot use the device.
    if ((driver_features_ & ~device_->features()) != 0 || !(driver_features_ & kFeatureVersion1)) {
      SPDLOG_WARN("{}: the driver asked for features {:#x} of {:#x} offered; refused", device_->name(),
                  driver_features_, device_->features());
      status = static_cast<std::uint8_t>(status & ~(kStatusFeaturesOk | kStatusDriverOk));
    }
  }
  status_ = static_cast<std::uint8_t>(status | keep);
  if ((added & kStatusDriverOk) && (status_ & kStatusFeaturesOk) && !broken()) activate();
}

void TransportCore::activate() {
  for (std::size_t i = 0; i < queues_.size(); ++i) {
    Queue& q = queues_[i];
    if (!q.ready) continue;
    if (auto r = q.check_layout(mem_); !r) {
      fail(with_context(r.error(), fmt::format("queue {}", i)));
      return;
    }
    q.set_features(driver_features_);
  }
  Activation a{.mem = &mem_, .queues = queues_, .interrupt = &interrupt_, .features = driver_features_};
  if (auto r = device_->activate(a); !r) {
    fail(with_context(r.error(), "activating the device"));
    return;
  }
  active_ = true;
  counters_.activations.fetch_add(1, std::memory_order_relaxed);
}

void TransportCore::reset() {
  if (active_ || (status_ & kStatusDriverOk)) device_->reset();
  for (auto& q : queues_) q.reset();
  driver_features_ = 0;
  status_ = 0;
  active_ = false;
  counters_.resets.fetch_add(1, std::memory_order_relaxed);
}

void TransportCore::notify(std::uint32_t index) {
  counters_.notifications.fetch_add(1, std::memory_order_relaxed);
  if (!active_ || broken() || index >= queues_.size() || !queues_[index].ready) return;
  if (auto r = device_->queue_notify(static_cast<std::uint16_t>(index)); !r)
    fail(with_context(r.error(), fmt::format("queue {}", index)));
}

void TransportCore::backend_ready() {
  if (!active_) return;
  // Completions are finished even on a broken device: they are the host's, and the buffers they
  // fill were checked when their requests were taken.
  if (auto r = device_->backend_ready(); !r) fail(r.error());
}

void TransportCore::config_changed() {
  ++config_generation_;
  if (status_ & kStatusDriverOk) interrupt_.config_changed();
}

void TransportCore::fail(const Error& e) {
  const bool first = !broken();
  status_ |= kStatusNeedsReset;
  counters_.needs_reset.fetch_add(first ? 1 : 0, std::memory_order_relaxed);
  if (fail_log_.allow())
    SPDLOG_WARN("{}: {}; the device needs a reset by its driver (DEVICE_NEEDS_RESET){}", device_->name(), e.message(),
                fail_log_.suppressed_note());
  if (first && (status_ & kStatusDriverOk)) interrupt_.config_changed();
}

}  // namespace kiln::virtio
