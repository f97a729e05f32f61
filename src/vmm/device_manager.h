#pragma once
// The one list of the VM's devices. It hands out their port ranges, MMIO windows and interrupt
// lines (fixed ones for a PC's legacy devices, allocated ones for the rest, never overlapping),
// puts them on the buses, and keeps what the firmware (DSDT entries), the kernel command line and,
// later, snapshots and metrics need of each. A new device is one registration here.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "acpi/tables.h"
#include "base/error.h"
#include "bus/bus.h"
#include "bus/range_allocator.h"

namespace kiln {

struct DeviceInfo {
  std::string name;
  enum class Space { kPio, kMmio } space = Space::kPio;
  std::uint64_t base = 0, size = 0;
  std::optional<std::uint32_t> irq;  // ISA IRQ or GSI
  acpi::Bytes dsdt;                  // its DSDT entry, if the guest finds it through ACPI
  std::string cmdline;               // what the kernel command line needs to find it, if anything
};

class DeviceManager {
 public:
  struct Pools {
    std::uint64_t mmio_start, mmio_end;  // the window for allocated MMIO ranges
    std::uint32_t gsi_start, gsi_end;    // the interrupt lines to allocate from
  };
  DeviceManager(Bus& pio, Bus& mmio, Pools pools);

  // A device at fixed ports (a PC's legacy devices), with its fixed IRQ if it has one.
  Result<const DeviceInfo*> add_fixed_pio(std::string name, std::shared_ptr<BusDevice> device, std::uint16_t port,
                                          std::uint16_t size, std::optional<std::uint32_t> irq = std::nullopt,
                                          acpi::Bytes dsdt = {});
  // A device at a fixed MMIO range (PCI's ECAM, a BAR the caller placed), with its interrupt line
  // if it has one (taken here: see free_irq).
  Result<const DeviceInfo*> add_fixed_mmio(std::string name, std::shared_ptr<BusDevice> device, std::uint64_t base,
                                           std::uint64_t size, std::optional<std::uint32_t> irq = std::nullopt);
  // The lowest interrupt line at or above `from` that no device has (not taken until a device is
  // added with it).
  Result<std::uint32_t> free_irq(std::uint32_t from);
  // A device whose MMIO range (page-aligned) and interrupt line are allocated here; `describe`
  // fills in, from the range and the line, its DSDT entry and the command line's entry for it.
  using Describe = std::function<Result<void>(DeviceInfo&)>;
  Result<const DeviceInfo*> add_mmio(std::string name, std::shared_ptr<BusDevice> device, std::uint64_t size,
                                     const Describe& describe = {});

  // In the order they were added; the pointers the add_ calls return stay valid.
  [[nodiscard]] const std::deque<DeviceInfo>& devices() const { return devices_; }
  // The DSDT entries, in the order the devices were added.
  [[nodiscard]] std::vector<acpi::Bytes> dsdt_terms() const;
  // The kernel command line's device arguments, space-separated.
  [[nodiscard]] std::string cmdline_args() const;

 private:
  Bus& pio_;
  Bus& mmio_;
  RangeAllocator ports_, mmio_window_, irqs_;
  std::uint32_t gsi_start_;
  std::deque<DeviceInfo> devices_;
};

}  // namespace kiln
