#pragma once
// The VM's virtio devices on their transport (virtio-mmio, or virtio-pci behind a host bridge), and
// what connects each to KVM and the VMM thread: queue notifications arrive on ioeventfds and are
// served on the VMM's event loop (never on a vCPU thread, which goes straight back to the guest),
// interrupts go out through irqfds (virtio-mmio's line; virtio-pci's MSI-X vectors, each a GSI
// routed to the message the guest programmed), and a block device's io_uring completions wake the
// loop too. Registered with the device manager, so the firmware and the command line describe them.
#include <sys/epoll.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "acpi/tables.h"
#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "bus/range_allocator.h"
#include "config/drive.h"
#include "config/machine_config.h"
#include "config/network.h"
#include "kvm/kvm.h"
#include "virtio/block/block.h"
#include "virtio/net/net.h"
#include "virtio/vsock/vsock.h"
#include "virtio/rng/rng.h"
#include "virtio/transport/mmio.h"
#include "virtio/transport/pci.h"
#include "vmm/device_manager.h"

namespace kiln {

// KVM's GSI routing table, which is set as a whole: the irqchip's default routes and the MSI
// routes of every virtio-pci vector.
class GsiRouter {
 public:
  explicit GsiRouter(const kvm::Vm& vm) : vm_(vm) {}
  // A GSI of its own for one MSI vector (past the IOAPIC's pins).
  Result<std::uint32_t> allocate();
  // `gsi` sends `msi` from now on, or nothing.
  void set(std::uint32_t gsi, std::optional<kvm::MsiMessage> msi);

 private:
  const kvm::Vm& vm_;
  std::mutex mu_;
  std::uint32_t next_ = 24;
  std::map<std::uint32_t, kvm::MsiMessage> routes_;
};

class VirtioDevices {
 public:
  VirtioDevices(const kvm::Vm& vm, const kvm::Capabilities& caps, const GuestMemory& mem, DeviceManager& devices,
                EventLoop* loop, MachineConfig::Transport transport);
  ~VirtioDevices();
  // What the firmware needs for virtio-pci: the host bridge (with every device's INTA route) and
  // the ECAM reservation in the DSDT, and the MCFG's entry. Nothing for virtio-mmio.
  [[nodiscard]] Result<std::vector<acpi::Bytes>> firmware_dsdt() const;
  [[nodiscard]] std::vector<acpi::McfgEntry> mcfg() const;
  VirtioDevices(const VirtioDevices&) = delete;

  // A block device for `drive` on `image` (opened and checked before KVM was touched).
  Result<void> add_block(const DriveConfig& drive, virtio::DiskImage image);
  Result<void> add_rng();
  // A virtio-net interface on `backend` (opened before KVM was touched).
  Result<void> add_net(const NetworkInterfaceConfig& net, std::unique_ptr<virtio::NetBackend> backend);
  // A virtio-vsock device made (and its socket bound) before the VM.
  Result<void> add_vsock(std::shared_ptr<virtio::VsockDevice> dev);
  // A new image for drive `id` while the VM runs: the guest sees the new capacity through a
  // config-change interrupt.
  Result<void> replace_drive_image(const std::string& id, virtio::DiskImage image);

  [[nodiscard]] nlohmann::json metrics() const;

 private:
  struct Slot;
  Result<std::shared_ptr<Slot>> attach(std::string name, std::shared_ptr<virtio::VirtioDevice> device);
  Result<void> attach_mmio(Slot& slot);
  Result<void> attach_pci(Slot& slot);
  Result<void> watch_notifications(const std::shared_ptr<Slot>& slot, const std::vector<std::uint64_t>& addrs,
                                   const std::vector<std::optional<std::uint64_t>>& datamatch);
  struct PciState;
  // `fd` readable → the device's backend_ready(); EPOLLET for a device that drains it itself.
  Result<void> watch_completions(const std::shared_ptr<Slot>& slot, int fd, std::uint32_t events = EPOLLIN);
  // The engine asked for; the sync one, with a warning, where io_uring cannot start.
  static std::unique_ptr<virtio::BlockEngine> make_engine(virtio::BlockEngine::Kind kind, const std::string& drive_id,
                                                          int fd, std::uint16_t depth);

  const kvm::Vm& vm_;
  const kvm::Capabilities& caps_;
  const GuestMemory& mem_;
  DeviceManager& devices_;
  EventLoop* loop_;
  MachineConfig::Transport transport_;
  GsiRouter router_;
  std::unique_ptr<PciState> pci_;
  std::vector<std::shared_ptr<Slot>> slots_;
};

}  // namespace kiln
