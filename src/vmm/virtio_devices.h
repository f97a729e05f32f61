#pragma once
// The VM's virtio devices on the virtio-mmio transport, and what connects each to KVM and the VMM
// thread: queue notifications arrive on ioeventfds and are served on the VMM's event loop (never on
// a vCPU thread, which goes straight back to the guest), the device's interrupt goes out through
// an irqfd, and a block device's io_uring completions wake the loop too. Registered with the
// device manager, so the firmware and the command line describe them.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "config/drive.h"
#include "kvm/kvm.h"
#include "virtio/block/block.h"
#include "virtio/rng/rng.h"
#include "virtio/transport/mmio.h"
#include "vmm/device_manager.h"

namespace kiln {

class VirtioDevices {
 public:
  VirtioDevices(const kvm::Vm& vm, const kvm::Capabilities& caps, const GuestMemory& mem, DeviceManager& devices,
                EventLoop* loop)
      : vm_(vm), caps_(caps), mem_(mem), devices_(devices), loop_(loop) {}
  ~VirtioDevices();
  VirtioDevices(const VirtioDevices&) = delete;

  // A block device for `drive` on `image` (opened and checked before KVM was touched).
  Result<void> add_block(const DriveConfig& drive, virtio::DiskImage image);
  Result<void> add_rng();
  // A new image for drive `id` while the VM runs: the guest sees the new capacity through a
  // config-change interrupt.
  Result<void> replace_drive_image(const std::string& id, virtio::DiskImage image);

  [[nodiscard]] nlohmann::json metrics() const;

 private:
  struct Slot;
  Result<std::shared_ptr<Slot>> attach(std::string name, std::shared_ptr<virtio::VirtioDevice> device);
  Result<void> watch_completions(const std::shared_ptr<Slot>& slot, int fd);
  static Result<std::unique_ptr<virtio::BlockEngine>> make_engine(const DriveConfig& d, int fd,
                                                                   std::uint16_t depth);

  const kvm::Vm& vm_;
  const kvm::Capabilities& caps_;
  const GuestMemory& mem_;
  DeviceManager& devices_;
  EventLoop* loop_;
  std::vector<std::shared_ptr<Slot>> slots_;
};

}  // namespace kiln
