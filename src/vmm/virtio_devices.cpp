#include "vmm/virtio_devices.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "acpi/tables.h"
#include "base/log.h"
#include "pci/pci.h"
#include "vmm/kvm_irq_line.h"

namespace kiln {

namespace {

// The device's interrupt: an irqfd (a write raises the GSI in the kernel, no ioctl), or where
// KVM has none, a pulse on the irqchip line.
class IrqfdTrigger : public virtio::InterruptTrigger {
 public:
  explicit IrqfdTrigger(int fd) : fd_(fd) {}
  void trigger() override {
    const std::uint64_t one = 1;
    (void)!::write(fd_, &one, sizeof one);
  }

 private:
  int fd_;
};

// Without irqfds: a pulse on the irqchip line (an edge for the IOAPIC).
class LinePulseTrigger : public virtio::InterruptTrigger {
 public:
  LinePulseTrigger(const kvm::Vm& vm, std::uint32_t gsi) : line_(vm, gsi) {}
  void trigger() override {
    line_.set_level(true);
    line_.set_level(false);
  }

 private:
  KvmIrqLine line_;
};

// The trigger a transport is built with before its line is known: it forwards to the real one.
class ForwardTrigger : public virtio::InterruptTrigger {
 public:
  void trigger() override {
    if (to) to->trigger();
  }
  std::unique_ptr<virtio::InterruptTrigger> to;
};

}  // namespace

// ECAM for bus 0 and the window virtio-pci BARs go in: below kiln's virtio-mmio window.
constexpr std::uint64_t kEcamBase = 0xe000'0000;
constexpr std::uint64_t kPciWindowStart = 0xc000'0000, kPciWindowEnd = 0xd000'0000;
// INTx lines: past the ISA IRQs (level-triggered, active low, as _PRT routes them).
constexpr std::uint32_t kPciIntxFrom = 16;

Result<std::uint32_t> GsiRouter::allocate() {
  std::lock_guard lock(mu_);
  if (next_ >= 1024) return plain_error("no GSI left for another MSI-X vector");
  return next_++;
}

void GsiRouter::set(std::uint32_t gsi, std::optional<kvm::MsiMessage> msi) {
  std::lock_guard lock(mu_);
  auto it = routes_.find(gsi);
  if (msi) {
    if (it != routes_.end() && it->second.address == msi->address && it->second.data == msi->data) return;
    routes_[gsi] = *msi;
  } else {
    if (it == routes_.end()) return;
    routes_.erase(it);
  }
  auto table = kvm::Vm::default_gsi_routes();
  for (const auto& [g, m] : routes_) table.push_back({g, m});
  if (auto r = vm_.set_gsi_routing(table); !r) {
    static RateLimit limit;
    if (limit.allow()) SPDLOG_WARN("MSI routing: {}{}", r.error().message(), limit.suppressed_note());
  }
}

namespace {

// A virtio-pci device's MSI-X vectors: a GSI and an irqfd each (or KVM_SIGNAL_MSI without irqfds).
class KvmMsiVectors : public virtio::MsiVectors {
 public:
  KvmMsiVectors(const kvm::Vm& vm, GsiRouter& router, bool irqfd) : vm_(vm), router_(router), irqfd_(irqfd) {}
  Result<void> add_vectors(std::uint16_t n) {
    for (std::uint16_t v = 0; v < n; ++v) {
      KILN_ASSIGN(const std::uint32_t gsi, router_.allocate());
      Vector vec{gsi, {}, {}};
      if (irqfd_) {
        vec.fd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!vec.fd) return errno_error("eventfd");
        KILN_CHECK(vm_.register_irqfd(vec.fd.get(), gsi));
      }
      vectors_.push_back(std::move(vec));
    }
    return {};
  }
  void route(std::uint16_t vector, std::uint64_t address, std::uint32_t data, bool enabled) override {
    if (vector >= vectors_.size()) return;
    Vector& v = vectors_[vector];
    v.msi = kvm::MsiMessage{address, data};
    router_.set(v.gsi, enabled ? std::optional(*v.msi) : std::nullopt);
  }
  void fire(std::uint16_t vector) override {
    if (vector >= vectors_.size()) return;
    Vector& v = vectors_[vector];
    if (v.fd) {
      const std::uint64_t one = 1;
      (void)!::write(v.fd.get(), &one, sizeof one);
    } else if (v.msi) {
      (void)vm_.signal_msi(*v.msi);
    }
  }

 private:
  struct Vector {
    std::uint32_t gsi;
    UniqueFd fd;
    std::optional<kvm::MsiMessage> msi;
  };
  const kvm::Vm& vm_;
  GsiRouter& router_;
  bool irqfd_;
  std::vector<Vector> vectors_;
};

}  // namespace

struct VirtioDevices::PciState {
  pci::RootBus bus;
  RangeAllocator bars{"PCI BARs", kPciWindowStart, kPciWindowEnd};
  std::vector<acpi::PciIntxRoute> intx;
};

struct VirtioDevices::Slot {
  std::string name;
  std::shared_ptr<virtio::VirtioDevice> device;
  // virtio-mmio
  ForwardTrigger trigger;
  std::shared_ptr<virtio::MmioTransport> mmio;
  UniqueFd irqfd;
  // virtio-pci
  std::shared_ptr<virtio::PciTransport> pci;
  std::unique_ptr<KvmMsiVectors> msi;
  std::unique_ptr<KvmIrqLine> intx;
  std::vector<UniqueFd> notify;  // one per queue
  int completion_fd = -1;        // watched on the loop (owned by the device's engine)
  std::uint64_t base = 0;
  std::uint32_t gsi = 0;

  void notify_queue(std::uint32_t q) { mmio ? mmio->notify(q) : pci->notify(q); }
  void backend_ready() { mmio ? mmio->backend_ready() : pci->backend_ready(); }
  void change_config(const std::function<void(virtio::VirtioDevice&)>& fn) {
    mmio ? mmio->change_config(fn) : pci->change_config(fn);
  }
  [[nodiscard]] const virtio::TransportCounters& counters() const { return mmio ? mmio->counters() : pci->counters(); }
};

VirtioDevices::VirtioDevices(const kvm::Vm& vm, const kvm::Capabilities& caps, const GuestMemory& mem,
                             DeviceManager& devices, EventLoop* loop, MachineConfig::Transport transport)
    : vm_(vm), caps_(caps), mem_(mem), devices_(devices), loop_(loop), transport_(transport), router_(vm) {}

VirtioDevices::~VirtioDevices() {
  if (loop_ == nullptr) return;
  for (const auto& s : slots_) {
    for (const auto& fd : s->notify) (void)loop_->remove(fd.get());
    if (s->completion_fd >= 0) (void)loop_->remove(s->completion_fd);
  }
}

Result<std::shared_ptr<VirtioDevices::Slot>> VirtioDevices::attach(std::string name,
                                                                  std::shared_ptr<virtio::VirtioDevice> device) {
  auto slot = std::make_shared<Slot>();
  slot->name = std::move(name);
  slot->device = std::move(device);
  if (transport_ == MachineConfig::Transport::kPci) {
    KILN_CHECK(attach_pci(*slot));
  } else {
    KILN_CHECK(attach_mmio(*slot));
  }
  // Without ioeventfds (or a loop), a notification is an exit the transport serves itself.
  if (caps_.ioeventfd && loop_ != nullptr) {
    const std::size_t queues = slot->device->queue_max_sizes().size();
    std::vector<std::uint64_t> addrs;
    std::vector<std::optional<std::uint64_t>> match;
    for (std::uint32_t q = 0; q < queues; ++q) {
      if (slot->mmio) {
        addrs.push_back(slot->base + virtio::MmioTransport::kQueueNotify);
        match.emplace_back(q);
      } else {
        addrs.push_back(slot->base + virtio::PciTransport::kNotify + virtio::PciTransport::kNotifyMultiplier * q);
        match.emplace_back(std::nullopt);
      }
    }
    KILN_CHECK(watch_notifications(slot, addrs, match));
  }
  slots_.push_back(slot);
  SPDLOG_DEBUG("{}: virtio-{} at {:#x}, GSI {}", slot->name, slot->mmio ? "mmio" : "pci", slot->base, slot->gsi);
  return slot;
}

Result<void> VirtioDevices::attach_mmio(Slot& slot) {
  slot.mmio = std::make_shared<virtio::MmioTransport>(slot.device, mem_, slot.trigger);
  const std::uint32_t uid = static_cast<std::uint32_t>(slots_.size());
  KILN_ASSIGN(const DeviceInfo* info,
              devices_.add_mmio(slot.name, slot.mmio, virtio::MmioTransport::kSize,
                                [uid](DeviceInfo& d) -> Result<void> {
                                  d.cmdline = fmt::format("virtio_mmio.device=4K@{:#x}:{}", d.base, *d.irq);
                                  KILN_ASSIGN(d.dsdt, acpi::virtio_mmio_device(uid, static_cast<std::uint32_t>(d.base),
                                                                               static_cast<std::uint32_t>(d.size),
                                                                               *d.irq));
                                  return {};
                                }));
  slot.base = info->base;
  slot.gsi = *info->irq;
  if (caps_.irqfd) {
    slot.irqfd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!slot.irqfd) return errno_error("{}: eventfd", slot.name);
    KILN_CHECK(vm_.register_irqfd(slot.irqfd.get(), slot.gsi));
    slot.trigger.to = std::make_unique<IrqfdTrigger>(slot.irqfd.get());
  } else {
    slot.trigger.to = std::make_unique<LinePulseTrigger>(vm_, slot.gsi);
  }
  return {};
}

Result<void> VirtioDevices::attach_pci(Slot& slot) {
  if (!pci_) {
    pci_ = std::make_unique<PciState>();
    KILN_CHECK(devices_.add_fixed_pio("pci-config", std::make_shared<pci::ConfigPorts>(pci_->bus), 0xcf8, 8));
    KILN_CHECK(devices_.add_fixed_mmio("pci-ecam", std::make_shared<pci::Ecam>(pci_->bus), kEcamBase, pci::Ecam::kSize));
  }
  KILN_ASSIGN(const std::uint64_t bar, pci_->bars.allocate(virtio::PciTransport::kBarSize,
                                                           virtio::PciTransport::kBarSize, slot.name));
  KILN_ASSIGN(const std::uint32_t gsi, devices_.free_irq(kPciIntxFrom));
  slot.base = bar;
  slot.gsi = gsi;
  slot.msi = std::make_unique<KvmMsiVectors>(vm_, router_, caps_.irqfd);
  slot.intx = std::make_unique<KvmIrqLine>(vm_, gsi);
  slot.pci = std::make_shared<virtio::PciTransport>(slot.device, mem_, *slot.msi, *slot.intx, bar,
                                                     static_cast<std::uint8_t>(gsi));
  KILN_CHECK(slot.msi->add_vectors(slot.pci->num_vectors()));
  KILN_ASSIGN(const std::uint8_t dev, pci_->bus.add(slot.pci));
  KILN_CHECK(devices_.add_fixed_mmio(slot.name, slot.pci, bar, virtio::PciTransport::kBarSize, gsi));
  pci_->intx.push_back({dev, gsi});
  return {};
}

Result<void> VirtioDevices::watch_notifications(const std::shared_ptr<Slot>& slot,
                                                const std::vector<std::uint64_t>& addrs,
                                                const std::vector<std::optional<std::uint64_t>>& datamatch) {
  for (std::uint32_t q = 0; q < addrs.size(); ++q) {
    UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!fd) return errno_error("{}: eventfd", slot->name);
    KILN_CHECK(vm_.register_ioeventfd(fd.get(), {.space = kvm::IoEventAddress::Space::kMmio,
                                                 .addr = addrs[q],
                                                 .len = datamatch[q] ? 4u : 0u,
                                                 .datamatch = datamatch[q]}));
    const int raw = fd.get();
    std::weak_ptr<Slot> weak = slot;
    KILN_CHECK(loop_->add(raw, EPOLLIN, [weak, raw, q](std::uint32_t) {
      std::uint64_t n = 0;
      (void)!::read(raw, &n, sizeof n);
      if (auto s = weak.lock()) s->notify_queue(q);
    }));
    slot->notify.push_back(std::move(fd));
  }
  return {};
}

Result<std::vector<acpi::Bytes>> VirtioDevices::firmware_dsdt() const {
  std::vector<acpi::Bytes> out;
  if (!pci_) return out;
  KILN_ASSIGN(auto bridge, acpi::pci_host_bridge(static_cast<std::uint32_t>(kPciWindowStart),
                                                 static_cast<std::uint32_t>(kPciWindowEnd - 1), pci_->intx));
  out.push_back(std::move(bridge));
  KILN_ASSIGN(auto ecam, acpi::ecam_reservation(static_cast<std::uint32_t>(kEcamBase),
                                                static_cast<std::uint32_t>(pci::Ecam::kSize)));
  out.push_back(std::move(ecam));
  return out;
}

std::vector<acpi::McfgEntry> VirtioDevices::mcfg() const {
  if (!pci_) return {};
  return {acpi::McfgEntry{.ecam_base = kEcamBase, .segment = 0, .start_bus = 0, .end_bus = 0}};
}

Result<void> VirtioDevices::watch_completions(const std::shared_ptr<Slot>& slot, int fd, std::uint32_t events) {
  slot->completion_fd = -1;
  if (fd < 0 || loop_ == nullptr) return {};
  std::weak_ptr<Slot> weak = slot;
  KILN_CHECK(loop_->add(fd, events, [weak](std::uint32_t) {
    if (auto s = weak.lock()) s->backend_ready();
  }));
  slot->completion_fd = fd;
  return {};
}

std::unique_ptr<virtio::BlockEngine> VirtioDevices::make_engine(virtio::BlockEngine::Kind kind,
                                                                const std::string& drive_id, int fd,
                                                                std::uint16_t depth) {
  if (kind == virtio::BlockEngine::Kind::kSync) return virtio::BlockEngine::create_sync(fd);
  auto e = virtio::BlockEngine::create_uring(fd, depth);
  if (e) return std::move(*e);
  SPDLOG_WARN("drive {}: io_uring is not available ({}); using the sync engine", drive_id, e.error().message());
  return virtio::BlockEngine::create_sync(fd);
}

Result<void> VirtioDevices::add_block(const DriveConfig& drive, virtio::DiskImage image) {
  virtio::BlockConfig cfg{.id = drive.drive_id,
                          .serial = drive.serial.value_or(drive.drive_id),
                          .cache_unsafe = drive.cache_type == DriveConfig::Cache::kUnsafe};
  auto engine = make_engine(drive.io_engine == DriveConfig::IoEngine::kSync ? virtio::BlockEngine::Kind::kSync
                                                                            : virtio::BlockEngine::Kind::kUring,
                            drive.drive_id, image.fd.get(), cfg.queue_size);
  auto dev = std::make_shared<virtio::BlockDevice>(std::move(cfg), std::move(image), std::move(engine));
  KILN_ASSIGN(auto slot, attach("virtio-blk " + drive.drive_id, dev));
  return watch_completions(slot, dev->completion_fd());
}

Result<void> VirtioDevices::add_rng() {
  KILN_ASSIGN(auto slot, attach("virtio-rng", std::make_shared<virtio::RngDevice>()));
  (void)slot;
  return {};
}

Result<void> VirtioDevices::add_net(const NetworkInterfaceConfig& net, std::unique_ptr<virtio::NetBackend> backend) {
  virtio::NetConfig cfg{.id = net.iface_id};
  if (net.guest_mac) cfg.mac = virtio::parse_mac(*net.guest_mac).value();  // checked with the config
  const std::string what = backend->describe();
  KILN_ASSIGN(std::shared_ptr<virtio::NetDevice> dev, virtio::NetDevice::create(std::move(cfg), std::move(backend)));
  KILN_ASSIGN(auto slot, attach("virtio-net " + net.iface_id, dev));
  SPDLOG_INFO("network interface {}: virtio-net on {}{}", net.iface_id, what,
              net.guest_mac ? ", MAC " + *net.guest_mac : std::string());
  // The device drains its back end itself: edge-triggered, or the loop would spin while the guest
  // has no buffers.
  return watch_completions(slot, dev->event_fd(), EPOLLIN | EPOLLET);
}

Result<void> VirtioDevices::add_vsock(std::shared_ptr<virtio::VsockDevice> dev) {
  KILN_ASSIGN(auto slot, attach("virtio-vsock", dev));
  SPDLOG_INFO("vsock: guest CID {}, host programs connect to {} (guest connections to port P: {}_P)",
              dev->config().guest_cid, dev->config().uds_path, dev->config().uds_path);
  return watch_completions(slot, dev->event_fd(), EPOLLIN | EPOLLET);
}

Result<void> VirtioDevices::replace_drive_image(const std::string& id, virtio::DiskImage image) {
  for (const auto& s : slots_) {
    auto* blk = dynamic_cast<virtio::BlockDevice*>(s->device.get());
    if (blk == nullptr || s->name != "virtio-blk " + id) continue;
    // The same kind of engine, as deep as the queue.
    auto engine = make_engine(blk->engine().kind(), id, image.fd.get(), blk->queue_max_sizes().front());
    // The old engine's fd closes with it: off the loop first.
    if (s->completion_fd >= 0 && loop_ != nullptr) (void)loop_->remove(s->completion_fd);
    s->completion_fd = -1;
    s->change_config([&](virtio::VirtioDevice&) { blk->replace_image(std::move(image), std::move(engine)); });
    return watch_completions(s, blk->completion_fd());
  }
  return plain_error("no drive '{}' in this VM", id);
}

nlohmann::json VirtioDevices::metrics() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& s : slots_) {
    const auto& t = s->counters();
    nlohmann::json j = {{"notifications", t.notifications.load()},
                        {"interrupts", t.interrupts.load()},
                        {"needs_reset", t.needs_reset.load()},
                        {"resets", t.resets.load()},
                        {"activations", t.activations.load()}};
    if (const auto* blk = dynamic_cast<const virtio::BlockDevice*>(s->device.get())) {
      const auto& c = blk->counters();
      j.update({{"reads", c.reads.load()},
                {"writes", c.writes.load()},
                {"flushes", c.flushes.load()},
                {"read_bytes", c.read_bytes.load()},
                {"write_bytes", c.write_bytes.load()},
                {"discards", c.discards.load()},
                {"write_zeroes", c.write_zeroes.load()},
                {"get_ids", c.get_ids.load()},
                {"io_errors", c.io_errors.load()},
                {"unsupported", c.unsupported.load()},
                {"fdatasyncs", blk->engine().fdatasyncs()}});
    } else if (const auto* net = dynamic_cast<const virtio::NetDevice*>(s->device.get())) {
      const auto& c = net->counters();
      j.update({{"rx_frames", c.rx_frames.load()},
                {"rx_bytes", c.rx_bytes.load()},
                {"tx_frames", c.tx_frames.load()},
                {"tx_bytes", c.tx_bytes.load()},
                {"rx_dropped", c.rx_dropped.load()},
                {"tx_dropped", c.tx_dropped.load()},
                {"tx_malformed", c.tx_malformed.load()},
                {"rx_no_buffers", c.rx_no_buffers.load()}});
    } else if (const auto* vs = dynamic_cast<const virtio::VsockDevice*>(s->device.get())) {
      const auto& c = vs->counters();
      j.update({{"rx_packets", c.rx_packets.load()},
                {"tx_packets", c.tx_packets.load()},
                {"rx_bytes", c.rx_bytes.load()},
                {"tx_bytes", c.tx_bytes.load()},
                {"connections", c.connections.load()},
                {"refused", c.refused.load()},
                {"resets", c.resets.load()},
                {"tx_malformed", c.tx_malformed.load()}});
    } else if (const auto* rng = dynamic_cast<const virtio::RngDevice*>(s->device.get())) {
      j["bytes"] = rng->bytes_served();
    }
    out[s->name] = std::move(j);
  }
  return out;
}

}  // namespace kiln
