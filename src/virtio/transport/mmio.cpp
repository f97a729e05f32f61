#include "virtio/transport/mmio.h"

#include <cstring>

namespace kiln::virtio {

namespace {
constexpr std::uint32_t kMagic = 0x74726976;  // "virt"
constexpr std::uint32_t kVersion = 2;
constexpr std::uint32_t kVendor = 0x4e4c494b;  // "KILN"

// Register offsets (section 4.2.2).
enum : std::uint64_t {
  kMagicValue = 0x000,
  kVersionReg = 0x004,
  kDeviceId = 0x008,
  kVendorId = 0x00c,
  kDeviceFeatures = 0x010,
  kDeviceFeaturesSel = 0x014,
  kDriverFeatures = 0x020,
  kDriverFeaturesSel = 0x024,
  kQueueSel = 0x030,
  kQueueNumMax = 0x034,
  kQueueNum = 0x038,
  kQueueReady = 0x044,
  kQueueNotifyReg = 0x050,
  kInterruptStatus = 0x060,
  kInterruptAck = 0x064,
  kStatus = 0x070,
  kQueueDescLow = 0x080,
  kQueueDescHigh = 0x084,
  kQueueDriverLow = 0x090,
  kQueueDriverHigh = 0x094,
  kQueueDeviceLow = 0x0a0,
  kQueueDeviceHigh = 0x0a4,
  kShmLenLow = 0x0b4,
  kShmLenHigh = 0x0b8,
  kConfigGeneration = 0x0fc,
};

constexpr std::uint32_t kInterruptUsedBuffer = 1;
constexpr std::uint32_t kInterruptConfigChange = 2;

void set_low(GuestAddress& a, std::uint32_t v) { a.value = (a.value & ~0xffff'ffffull) | v; }
void set_high(GuestAddress& a, std::uint32_t v) { a.value = (a.value & 0xffff'ffffull) | (std::uint64_t{v} << 32); }

RateLimit& odd_access_limit() {
  static RateLimit limit;
  return limit;
}
}  // namespace

MmioTransport::MmioTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& mem, InterruptTrigger& irq)
    : core_(std::move(device), mem, *this), irq_(irq) {}

std::uint8_t MmioTransport::status() {
  std::lock_guard lock(core_.mutex());
  return core_.status();
}

void MmioTransport::read(std::uint64_t offset, std::span<std::byte> data) {
  std::lock_guard lock(core_.mutex());
  if (offset >= kConfig) {
    core_.device().read_config(offset - kConfig, data);
    return;
  }
  std::memset(data.data(), 0, data.size());
  if (data.size() != 4 || offset % 4 != 0) {
    if (odd_access_limit().allow())
      SPDLOG_WARN("{}: a {}-byte read of register {:#x} (registers are 4 bytes wide); reads as 0{}",
                  core_.device().name(), data.size(), offset, odd_access_limit().suppressed_note());
    return;
  }
  const std::uint32_t v = read_register(offset);
  std::memcpy(data.data(), &v, 4);
}

void MmioTransport::write(std::uint64_t offset, std::span<const std::byte> data) {
  std::lock_guard lock(core_.mutex());
  if (offset >= kConfig) {
    // Config space is the driver's to write only where the device says so (the device decides).
    core_.device().write_config(offset - kConfig, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    if (odd_access_limit().allow())
      SPDLOG_WARN("{}: a {}-byte write to register {:#x} (registers are 4 bytes wide); dropped{}",
                  core_.device().name(), data.size(), offset, odd_access_limit().suppressed_note());
    return;
  }
  std::uint32_t v = 0;
  std::memcpy(&v, data.data(), 4);
  write_register(offset, v);
}

std::uint32_t MmioTransport::read_register(std::uint64_t offset) {
  Queue* q = core_.queue(queue_sel_);
  switch (offset) {
    case kMagicValue: return kMagic;
    case kVersionReg: return kVersion;
    case kDeviceId: return core_.device().device_type();
    case kVendorId: return kVendor;
    case kDeviceFeatures: return core_.device_features_word(device_features_sel_);
    case kQueueNumMax: return q ? q->max_size() : 0;
    case kQueueReady: return q && q->ready ? 1 : 0;
    case kInterruptStatus: return interrupt_status_.load();
    case kStatus: return core_.status();
    case kConfigGeneration: return core_.config_generation();
    // No shared memory regions: a length of all ones says so.
    case kShmLenLow:
    case kShmLenHigh: return 0xffff'ffff;
    default: return 0;
  }
}

void MmioTransport::write_register(std::uint64_t offset, std::uint32_t v) {
  Queue* q = core_.queue(queue_sel_);
  // Queue registers change only before DRIVER_OK and while the queue is not ready.
  auto queue_setting = [&]() -> Queue* { return q && core_.queues_writable() && !q->ready ? q : nullptr; };
  switch (offset) {
    case kDeviceFeaturesSel: device_features_sel_ = v; break;
    case kDriverFeatures: core_.set_driver_features_word(driver_features_sel_, v); break;
    case kDriverFeaturesSel: driver_features_sel_ = v; break;
    case kQueueSel: queue_sel_ = v; break;
    case kQueueNum:
      if (auto* s = queue_setting()) s->size = static_cast<std::uint16_t>(std::min<std::uint32_t>(v, 0xffff));
      break;
    case kQueueReady:
      if (q && core_.queues_writable()) q->ready = (v & 1) != 0;
      break;
    case kQueueNotifyReg: core_.notify(v & 0xffff); break;
    case kInterruptAck: interrupt_status_.fetch_and(~v); break;
    case kStatus:
      core_.set_status(static_cast<std::uint8_t>(v));
      if (v == 0) interrupt_status_.store(0);
      break;
    case kQueueDescLow: if (auto* s = queue_setting()) set_low(s->desc_table, v); break;
    case kQueueDescHigh: if (auto* s = queue_setting()) set_high(s->desc_table, v); break;
    case kQueueDriverLow: if (auto* s = queue_setting()) set_low(s->avail_ring, v); break;
    case kQueueDriverHigh: if (auto* s = queue_setting()) set_high(s->avail_ring, v); break;
    case kQueueDeviceLow: if (auto* s = queue_setting()) set_low(s->used_ring, v); break;
    case kQueueDeviceHigh: if (auto* s = queue_setting()) set_high(s->used_ring, v); break;
    default: break;  // read-only or reserved: dropped
  }
}

void MmioTransport::notify(std::uint32_t queue) {
  std::lock_guard lock(core_.mutex());
  core_.notify(queue);
}

void MmioTransport::backend_ready() {
  std::lock_guard lock(core_.mutex());
  core_.backend_ready();
}

void MmioTransport::change_config(const std::function<void(VirtioDevice&)>& fn) {
  std::lock_guard lock(core_.mutex());
  fn(core_.device());
  core_.config_changed();
}

void MmioTransport::used_buffers(std::uint16_t) {
  interrupt_status_.fetch_or(kInterruptUsedBuffer);
  core_.count_interrupt();
  irq_.trigger();
}

void MmioTransport::config_changed() {
  interrupt_status_.fetch_or(kInterruptConfigChange);
  core_.count_interrupt();
  irq_.trigger();
}

}  // namespace kiln::virtio
