#include "virtio/transport/pci.h"

#include <cstring>

namespace kiln::virtio {

namespace {
constexpr std::uint8_t kCapVendor = 0x09, kCapMsix = 0x11;
constexpr std::uint8_t kCfgCommon = 1, kCfgNotify = 2, kCfgIsr = 3, kCfgDevice = 4, kCfgPci = 5;
constexpr int kBarIndex = 0;
constexpr std::uint8_t kIsrQueue = 1, kIsrConfig = 2;
constexpr std::uint16_t kMsixEnable = 1u << 15, kMsixMask = 1u << 14;
constexpr std::uint16_t kCommandIntxDisable = 1u << 10;

std::uint32_t class_code(std::uint32_t type) {
  switch (type) {
    case kDeviceBlock: return 0x010000;  // mass storage (QEMU's class for virtio-blk)
    case kDeviceNet: return 0x020000;    // network
    default: return 0xff0000;            // other
  }
}

std::vector<std::uint8_t> vendor_cap(std::uint8_t type, std::uint32_t offset, std::uint32_t length,
                                     std::size_t extra = 0) {
  std::vector<std::uint8_t> c(16 + extra, 0);
  c[0] = kCapVendor;
  c[2] = static_cast<std::uint8_t>(c.size());
  c[3] = type;
  c[4] = kBarIndex;
  std::memcpy(&c[8], &offset, 4);
  std::memcpy(&c[12], &length, 4);
  return c;
}

std::uint64_t load(std::span<const std::byte> d) {
  std::uint64_t v = 0;
  std::memcpy(&v, d.data(), std::min<std::size_t>(d.size(), 8));
  return v;
}
void store(std::span<std::byte> d, std::uint64_t v) { std::memcpy(d.data(), &v, std::min<std::size_t>(d.size(), 8)); }

RateLimit& odd_access() {
  static RateLimit limit;
  return limit;
}
}  // namespace

PciTransport::PciTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& mem, MsiVectors& msi,
                           IrqLine& intx, std::uint64_t bar, std::uint8_t intx_line)
    : core_(std::move(device), mem, *this), msi_(msi), intx_(intx) {
  const std::uint32_t type = core_.device().device_type();
  cfg_.set_ids(0x1af4, static_cast<std::uint16_t>(0x1040 + type), class_code(type), 1, 0x1af4, 0x1100);
  cfg_.set_bar64(kBarIndex, bar, kBarSize);
  cfg_.set_interrupt(1, intx_line);
  cfg_.add_capability(vendor_cap(kCfgCommon, kCommon, 0x38));
  cfg_.add_capability(vendor_cap(kCfgIsr, kIsr, 1));
  cfg_.add_capability(vendor_cap(kCfgDevice, kDeviceCfg, 0x1000));
  auto notify = vendor_cap(kCfgNotify, kNotify, static_cast<std::uint32_t>(kNotifyMultiplier * core_.num_queues()), 4);
  std::memcpy(&notify[16], &kNotifyMultiplier, 4);
  cfg_.add_capability(notify);
  // VIRTIO_PCI_CAP_PCI_CFG: bar, offset, length and the data window are the driver's to write.
  auto pcicfg = vendor_cap(kCfgPci, 0, 0, 4);
  std::vector<std::uint8_t> pcicfg_writable(pcicfg.size(), 0);
  pcicfg_writable[4] = 0xff;
  for (int i = 8; i < 20; ++i) pcicfg_writable[i] = 0xff;
  pci_cfg_cap_ = cfg_.add_capability(pcicfg, pcicfg_writable);
  // MSI-X: a vector per queue and one for config changes.
  const std::uint16_t vectors = static_cast<std::uint16_t>(core_.num_queues() + 1);
  msix_.resize(vectors);
  queue_vectors_.assign(core_.num_queues(), kNoVector);
  std::uint8_t msix[12] = {kCapMsix, 0, static_cast<std::uint8_t>(vectors - 1), 0};
  const std::uint32_t table = kMsixTable | kBarIndex, pba = kMsixPba | kBarIndex;
  std::memcpy(msix + 4, &table, 4);
  std::memcpy(msix + 8, &pba, 4);
  const std::uint8_t msix_writable[12] = {0, 0, 0, 0xc0};
  msix_cap_ = cfg_.add_capability(msix, msix_writable);
}

bool PciTransport::msix_enabled() const { return cfg_.word(msix_cap_ + 2) & kMsixEnable; }
bool PciTransport::msix_function_masked() const { return cfg_.word(msix_cap_ + 2) & kMsixMask; }

void PciTransport::config_read(std::uint64_t offset, std::span<std::byte> data) {
  std::lock_guard lock(core_.mutex());
  // The PCI-config capability's data window reads the BAR at the offset the driver set.
  if (offset == pci_cfg_cap_ + 16u && data.size() <= 4) {
    std::uint32_t off = 0, len = 0;
    cfg_.read(pci_cfg_cap_ + 8u, std::as_writable_bytes(std::span(&off, 1)));
    cfg_.read(pci_cfg_cap_ + 12u, std::as_writable_bytes(std::span(&len, 1)));
    std::memset(data.data(), 0, data.size());
    if ((len == 1 || len == 2 || len == 4) && len <= data.size() && off < kBarSize) bar_read_locked(off, data.first(len));
    return;
  }
  cfg_.read(offset, data);
}

void PciTransport::config_write(std::uint64_t offset, std::span<const std::byte> data) {
  std::lock_guard lock(core_.mutex());
  if (offset == pci_cfg_cap_ + 16u && data.size() <= 4) {
    std::uint32_t off = 0, len = 0;
    cfg_.read(pci_cfg_cap_ + 8u, std::as_writable_bytes(std::span(&off, 1)));
    cfg_.read(pci_cfg_cap_ + 12u, std::as_writable_bytes(std::span(&len, 1)));
    if ((len == 1 || len == 2 || len == 4) && len <= data.size() && off < kBarSize) bar_write_locked(off, data.first(len));
    return;
  }
  const bool was_enabled = msix_enabled(), was_masked = msix_function_masked();
  cfg_.write(offset, data);
  if (msix_enabled() != was_enabled || msix_function_masked() != was_masked) update_routes();
  // INTx Disable masks the line; clearing it shows a pending ISR again.
  set_intx(isr_ != 0 && !(cfg_.command() & kCommandIntxDisable) && !msix_enabled());
}

void PciTransport::read(std::uint64_t offset, std::span<std::byte> data) {
  std::lock_guard lock(core_.mutex());
  bar_read_locked(offset, data);
}

void PciTransport::write(std::uint64_t offset, std::span<const std::byte> data) {
  std::lock_guard lock(core_.mutex());
  bar_write_locked(offset, data);
}

void PciTransport::bar_read_locked(std::uint64_t offset, std::span<std::byte> data) {
  std::memset(data.data(), 0, data.size());
  if (data.size() > 8) return;
  if (offset < kCommon + 0x38) {
    store(data, read_common(offset, data.size()));
  } else if (offset == kIsr) {
    // Reading the ISR acknowledges it and lowers INTA.
    data[0] = std::byte{isr_};
    isr_ = 0;
    set_intx(false);
  } else if (offset >= kDeviceCfg && offset < kDeviceCfg + 0x1000) {
    core_.device().read_config(offset - kDeviceCfg, data);
  } else if (offset >= kMsixTable && offset < kMsixTable + 16 * msix_.size()) {
    const MsixEntry& e = msix_[(offset - kMsixTable) / 16];
    const std::uint64_t in = (offset - kMsixTable) % 16;
    std::uint8_t raw[16];
    const std::uint32_t ctrl = e.masked ? 1 : 0;
    std::memcpy(raw, &e.address, 8);
    std::memcpy(raw + 8, &e.data, 4);
    std::memcpy(raw + 12, &ctrl, 4);
    if (in + data.size() <= 16) std::memcpy(data.data(), raw + in, data.size());
  } else if (offset >= kMsixPba && offset < kMsixPba + 8) {
    std::uint64_t bits = 0;
    for (std::size_t i = 0; i < msix_.size(); ++i)
      if (msix_[i].pending) bits |= 1ull << i;
    const std::uint64_t in = offset - kMsixPba;
    if (in + data.size() <= 8) std::memcpy(data.data(), reinterpret_cast<const std::uint8_t*>(&bits) + in, data.size());
  }
}

void PciTransport::bar_write_locked(std::uint64_t offset, std::span<const std::byte> data) {
  if (data.empty() || data.size() > 8) return;
  const std::uint64_t v = load(data);
  if (offset < kCommon + 0x38) {
    write_common(offset, data.size(), v);
  } else if (offset >= kDeviceCfg && offset < kDeviceCfg + 0x1000) {
    core_.device().write_config(offset - kDeviceCfg, data);
  } else if (offset >= kNotify && offset < kNotify + kNotifyMultiplier * core_.num_queues()) {
    core_.notify(static_cast<std::uint32_t>((offset - kNotify) / kNotifyMultiplier));
  } else if (offset >= kMsixTable && offset < kMsixTable + 16 * msix_.size()) {
    const std::size_t index = (offset - kMsixTable) / 16;
    MsixEntry& e = msix_[index];
    const std::uint64_t in = (offset - kMsixTable) % 16;
    if (in == 0 && data.size() == 8) e.address = v;
    else if (in == 0 && data.size() == 4) e.address = (e.address & ~0xffff'ffffull) | (v & 0xffff'ffff);
    else if (in == 4 && data.size() == 4) e.address = (e.address & 0xffff'ffffull) | (v << 32);
    else if (in == 8 && data.size() == 4) e.data = static_cast<std::uint32_t>(v);
    else if (in == 12 && data.size() == 4) e.masked = (v & 1) != 0;
    else if (odd_access().allow())
      SPDLOG_WARN("{}: a {}-byte MSI-X table write at {:#x}; dropped{}", core_.device().name(), data.size(), offset,
                  odd_access().suppressed_note());
    msi_.route(static_cast<std::uint16_t>(index), e.address, e.data, routes_enabled_ && !e.masked);
    // A message held back while its vector was masked goes out once it is not.
    if (!e.masked && e.pending && msix_enabled() && !msix_function_masked()) {
      e.pending = false;
      msi_.fire(static_cast<std::uint16_t>(index));
    }
  }
}

std::uint64_t PciTransport::read_common(std::uint64_t offset, std::size_t size) {
  Queue* q = core_.queue(queue_sel_);
  std::uint8_t raw[0x38] = {};
  auto put = [&](std::size_t at, std::uint64_t v, std::size_t n) { std::memcpy(raw + at, &v, n); };
  put(0x00, device_features_sel_, 4);
  put(0x04, core_.device_features_word(device_features_sel_), 4);
  put(0x08, driver_features_sel_, 4);
  put(0x0c, core_.driver_features_word(driver_features_sel_), 4);
  put(0x10, config_vector_, 2);
  put(0x12, core_.num_queues(), 2);
  put(0x14, core_.status(), 1);
  put(0x15, core_.config_generation(), 1);
  put(0x16, queue_sel_, 2);
  if (q != nullptr) {
    put(0x18, q->ready || q->size ? q->size : q->max_size(), 2);
    put(0x1a, queue_vectors_[queue_sel_], 2);
    put(0x1c, q->ready ? 1 : 0, 2);
    put(0x1e, queue_sel_, 2);
    put(0x20, q->desc_table.value, 8);
    put(0x28, q->avail_ring.value, 8);
    put(0x30, q->used_ring.value, 8);
  }
  std::uint64_t v = 0;
  if (offset + size <= sizeof raw) std::memcpy(&v, raw + offset, size);
  return v;
}

void PciTransport::write_common(std::uint64_t offset, std::size_t size, std::uint64_t v) {
  Queue* q = core_.queue(queue_sel_);
  Queue* settable = q != nullptr && core_.queues_writable() && !q->ready ? q : nullptr;
  auto set_half = [&](GuestAddress& a, bool high) {
    if (settable == nullptr) return;
    if (size == 8 && !high) a.value = v;
    else if (size == 4) a.value = high ? (a.value & 0xffff'ffffull) | (v << 32) : (a.value & ~0xffff'ffffull) | v;
  };
  switch (offset) {
    case 0x00: device_features_sel_ = static_cast<std::uint32_t>(v); break;
    case 0x08: driver_features_sel_ = static_cast<std::uint32_t>(v); break;
    case 0x0c: core_.set_driver_features_word(driver_features_sel_, static_cast<std::uint32_t>(v)); break;
    case 0x10: config_vector_ = checked_vector(static_cast<std::uint16_t>(v)); break;
    case 0x14:
      core_.set_status(static_cast<std::uint8_t>(v));
      if ((v & 0xff) == 0) {
        isr_ = 0;
        set_intx(false);
        config_vector_ = kNoVector;
        queue_vectors_.assign(queue_vectors_.size(), kNoVector);
      }
      break;
    case 0x16: queue_sel_ = static_cast<std::uint16_t>(v); break;
    case 0x18:
      if (settable != nullptr) settable->size = static_cast<std::uint16_t>(v);
      break;
    case 0x1a:
      if (q != nullptr) queue_vectors_[queue_sel_] = checked_vector(static_cast<std::uint16_t>(v));
      break;
    case 0x1c:
      if (settable != nullptr && (v & 1)) {
        if (settable->size == 0) settable->size = settable->max_size();
        settable->ready = true;
      }
      break;
    case 0x20: if (q) set_half(q->desc_table, false); break;
    case 0x24: if (q) set_half(q->desc_table, true); break;
    case 0x28: if (q) set_half(q->avail_ring, false); break;
    case 0x2c: if (q) set_half(q->avail_ring, true); break;
    case 0x30: if (q) set_half(q->used_ring, false); break;
    case 0x34: if (q) set_half(q->used_ring, true); break;
    default:
      if (odd_access().allow())
        SPDLOG_WARN("{}: a {}-byte write to common config offset {:#x}; dropped{}", core_.device().name(), size, offset,
                    odd_access().suppressed_note());
      break;
  }
}

void PciTransport::update_routes() {
  routes_enabled_ = msix_enabled() && !msix_function_masked();
  for (std::size_t i = 0; i < msix_.size(); ++i) {
    MsixEntry& e = msix_[i];
    msi_.route(static_cast<std::uint16_t>(i), e.address, e.data, routes_enabled_ && !e.masked);
    if (routes_enabled_ && !e.masked && e.pending) {
      e.pending = false;
      msi_.fire(static_cast<std::uint16_t>(i));
    }
  }
}

void PciTransport::signal(std::uint16_t vector) {
  if (vector >= msix_.size()) return;
  MsixEntry& e = msix_[vector];
  if (!routes_enabled_ || e.masked) {
    e.pending = true;
    return;
  }
  core_.count_interrupt();
  msi_.fire(vector);
}

void PciTransport::raise_intx(std::uint8_t why) {
  isr_ |= why;
  if (cfg_.command() & kCommandIntxDisable) return;
  core_.count_interrupt();
  set_intx(true);
}

void PciTransport::set_intx(bool high) {
  // The line is level-triggered: it stays high until the guest reads the ISR, so raising it again
  // changes nothing for the guest, and each KVM_IRQ_LINE costs a system call (measured here:
  // half the rate of 4 KiB reads at queue depth 1 with MSI-X off).
  if (high == intx_high_) return;
  intx_high_ = high;
  intx_.set_level(high);
}

void PciTransport::used_buffers(std::uint16_t queue) {
  if (msix_enabled()) signal(queue < queue_vectors_.size() ? queue_vectors_[queue] : kNoVector);
  else raise_intx(kIsrQueue);
}

void PciTransport::config_changed() {
  if (msix_enabled()) signal(config_vector_);
  else raise_intx(kIsrConfig);
}

void PciTransport::notify(std::uint32_t queue) {
  std::lock_guard lock(core_.mutex());
  core_.notify(queue);
}

void PciTransport::backend_ready() {
  std::lock_guard lock(core_.mutex());
  core_.backend_ready();
}

void PciTransport::change_config(const std::function<void(VirtioDevice&)>& fn) {
  std::lock_guard lock(core_.mutex());
  fn(core_.device());
  core_.config_changed();
}

}  // namespace kiln::virtio
