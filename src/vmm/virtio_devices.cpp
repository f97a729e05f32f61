#include "vmm/virtio_devices.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "acpi/tables.h"
#include "base/log.h"

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

class LinePulseTrigger : public virtio::InterruptTrigger {
 public:
  LinePulseTrigger(const kvm::Vm& vm, std::uint32_t gsi) : vm_(vm), gsi_(gsi) {}
  void trigger() override {
    (void)vm_.set_irq_line(gsi_, true);
    (void)vm_.set_irq_line(gsi_, false);
  }

 private:
  const kvm::Vm& vm_;
  std::uint32_t gsi_;
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

struct VirtioDevices::Slot {
  std::string name;
  std::shared_ptr<virtio::VirtioDevice> device;
  ForwardTrigger trigger;
  std::shared_ptr<virtio::MmioTransport> transport;
  UniqueFd irqfd;
  std::vector<UniqueFd> notify;  // one per queue
  int completion_fd = -1;        // watched on the loop (owned by the device's engine)
  std::uint64_t base = 0;
  std::uint32_t gsi = 0;
};

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
  slot->device = device;
  slot->transport = std::make_shared<virtio::MmioTransport>(device, mem_, slot->trigger);
  const std::uint32_t uid = static_cast<std::uint32_t>(slots_.size());
  KILN_ASSIGN(const DeviceInfo* info,
              devices_.add_mmio(slot->name, slot->transport, virtio::MmioTransport::kSize,
                                [uid](DeviceInfo& d) -> Result<void> {
                                  d.cmdline = fmt::format("virtio_mmio.device=4K@{:#x}:{}", d.base, *d.irq);
                                  KILN_ASSIGN(d.dsdt, acpi::virtio_mmio_device(uid, static_cast<std::uint32_t>(d.base),
                                                                               static_cast<std::uint32_t>(d.size),
                                                                               *d.irq));
                                  return {};
                                }));
  slot->base = info->base;
  slot->gsi = *info->irq;
  if (caps_.irqfd) {
    slot->irqfd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!slot->irqfd) return errno_error("{}: eventfd", slot->name);
    KILN_CHECK(vm_.register_irqfd(slot->irqfd.get(), slot->gsi));
    slot->trigger.to = std::make_unique<IrqfdTrigger>(slot->irqfd.get());
  } else {
    slot->trigger.to = std::make_unique<LinePulseTrigger>(vm_, slot->gsi);
  }
  // Without ioeventfds (or a loop), a notification is an MMIO exit the transport serves itself.
  if (caps_.ioeventfd && loop_ != nullptr) {
    const std::size_t queues = device->queue_max_sizes().size();
    for (std::uint32_t q = 0; q < queues; ++q) {
      UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
      if (!fd) return errno_error("{}: eventfd", slot->name);
      KILN_CHECK(vm_.register_ioeventfd(fd.get(), {.space = kvm::IoEventAddress::Space::kMmio,
                                                   .addr = slot->base + virtio::MmioTransport::kQueueNotify,
                                                   .len = 4,
                                                   .datamatch = q}));
      const int raw = fd.get();
      std::weak_ptr<Slot> weak = slot;
      KILN_CHECK(loop_->add(raw, EPOLLIN, [weak, raw, q](std::uint32_t) {
        std::uint64_t n = 0;
        (void)!::read(raw, &n, sizeof n);
        if (auto s = weak.lock()) s->transport->notify(q);
      }));
      slot->notify.push_back(std::move(fd));
    }
  }
  slots_.push_back(slot);
  SPDLOG_DEBUG("{}: virtio-mmio at {:#x}, GSI {}", slot->name, slot->base, slot->gsi);
  return slot;
}

Result<void> VirtioDevices::watch_completions(const std::shared_ptr<Slot>& slot, int fd) {
  slot->completion_fd = -1;
  if (fd < 0 || loop_ == nullptr) return {};
  std::weak_ptr<Slot> weak = slot;
  KILN_CHECK(loop_->add(fd, EPOLLIN, [weak](std::uint32_t) {
    if (auto s = weak.lock()) s->transport->backend_ready();
  }));
  slot->completion_fd = fd;
  return {};
}

Result<std::unique_ptr<virtio::BlockEngine>> VirtioDevices::make_engine(const DriveConfig& d, int fd,
                                                                        std::uint16_t depth) {
  if (d.io_engine == DriveConfig::IoEngine::kSync) return virtio::BlockEngine::create_sync(fd);
  auto e = virtio::BlockEngine::create_uring(fd, depth);
  if (e) return std::move(*e);
  SPDLOG_WARN("drive {}: io_uring is not available ({}); using the sync engine", d.drive_id, e.error().message());
  return virtio::BlockEngine::create_sync(fd);
}

Result<void> VirtioDevices::add_block(const DriveConfig& drive, virtio::DiskImage image) {
  virtio::BlockConfig cfg{.id = drive.drive_id,
                          .serial = drive.serial.value_or(drive.drive_id),
                          .cache_unsafe = drive.cache_type == DriveConfig::Cache::kUnsafe};
  KILN_ASSIGN(auto engine, make_engine(drive, image.fd.get(), cfg.queue_size));
  auto dev = std::make_shared<virtio::BlockDevice>(std::move(cfg), std::move(image), std::move(engine));
  KILN_ASSIGN(auto slot, attach("virtio-blk " + drive.drive_id, dev));
  return watch_completions(slot, dev->completion_fd());
}

Result<void> VirtioDevices::add_rng() {
  KILN_ASSIGN(auto slot, attach("virtio-rng", std::make_shared<virtio::RngDevice>()));
  (void)slot;
  return {};
}

Result<void> VirtioDevices::replace_drive_image(const std::string& id, virtio::DiskImage image) {
  for (const auto& s : slots_) {
    auto* blk = dynamic_cast<virtio::BlockDevice*>(s->device.get());
    if (blk == nullptr || s->name != "virtio-blk " + id) continue;
    DriveConfig d;
    d.drive_id = id;
    d.io_engine = blk->engine().kind() == virtio::BlockEngine::Kind::kUring ? DriveConfig::IoEngine::kAsync
                                                                             : DriveConfig::IoEngine::kSync;
    KILN_ASSIGN(auto engine, make_engine(d, image.fd.get(), 256));
    // The old engine's fd closes with it: off the loop first.
    if (s->completion_fd >= 0 && loop_ != nullptr) (void)loop_->remove(s->completion_fd);
    s->completion_fd = -1;
    s->transport->change_config([&](virtio::VirtioDevice&) { blk->replace_image(std::move(image), std::move(engine)); });
    return watch_completions(s, blk->completion_fd());
  }
  return plain_error("no drive '{}' in this VM", id);
}

nlohmann::json VirtioDevices::metrics() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& s : slots_) {
    const auto& t = s->transport->counters();
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
    } else if (const auto* rng = dynamic_cast<const virtio::RngDevice*>(s->device.get())) {
      j["bytes"] = rng->bytes_served();
    }
    out[s->name] = std::move(j);
  }
  return out;
}

}  // namespace kiln
