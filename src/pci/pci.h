#pragma once
// PCI for kiln's devices: one bus (0) behind a host bridge, its configuration space reached through
// ports 0xCF8/0xCFC (configuration mechanism #1) and through ECAM (the MMIO window the MCFG table
// names). Functions fill a 256-byte configuration space with their header and capabilities; kiln
// assigns their BARs itself, as firmware would, and the guest keeps them (a BAR the guest sizes
// reads back its size; an address written elsewhere is noted and ignored).
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "base/log.h"
#include "bus/bus.h"

namespace kiln::pci {

// The 256-byte configuration space of one function, with the bits the guest may write.
class ConfigSpace {
 public:
  ConfigSpace();
  // Type 0 header fields.
  void set_ids(std::uint16_t vendor, std::uint16_t device, std::uint32_t class_code, std::uint8_t revision,
               std::uint16_t subsystem_vendor, std::uint16_t subsystem);
  // A 64-bit memory BAR `index` (and index + 1) of `size` bytes (a power of two) at `addr`.
  void set_bar64(int index, std::uint64_t addr, std::uint64_t size);
  // The interrupt pin (1 = INTA) and line the guest sees.
  void set_interrupt(std::uint8_t pin, std::uint8_t line);
  // Appends a capability (its first byte is its id; the next-pointer byte is filled in here) and
  // returns its offset. `writable`: per byte of `cap`, the bits the guest may write.
  std::uint8_t add_capability(std::span<const std::uint8_t> cap, std::span<const std::uint8_t> writable = {});

  void read(std::uint64_t offset, std::span<std::byte> data) const;
  // Applies the write mask; BARs answer sizing (all ones) with their size.
  void write(std::uint64_t offset, std::span<const std::byte> data);

  [[nodiscard]] std::uint8_t byte(std::size_t at) const { return bytes_[at]; }
  [[nodiscard]] std::uint16_t word(std::size_t at) const { return static_cast<std::uint16_t>(bytes_[at] | bytes_[at + 1] << 8); }
  [[nodiscard]] std::uint16_t command() const { return word(4); }

 private:
  void put(std::size_t at, std::uint64_t v, int n);
  std::array<std::uint8_t, 256> bytes_{};
  std::array<std::uint8_t, 256> writable_{};
  struct Bar {
    std::uint64_t addr = 0, size = 0;
  };
  std::array<Bar, 6> bars_{};  // 64-bit BARs by their first index
  std::uint8_t last_cap_ = 0;  // offset of the last capability (0: none yet)
  std::uint8_t next_cap_ = 0x40;
};

// A PCI function on bus 0.
class Function {
 public:
  virtual ~Function() = default;
  virtual void config_read(std::uint64_t offset, std::span<std::byte> data) = 0;
  virtual void config_write(std::uint64_t offset, std::span<const std::byte> data) = 0;
};

// Bus 0: the host bridge at device 0 and up to 31 more devices (function 0 each).
class RootBus {
 public:
  RootBus();
  // The next free device number, or an error when all 32 are taken.
  Result<std::uint8_t> add(std::shared_ptr<Function> f);
  // A configuration access: bus, device, function and register; absent functions read all ones.
  void read(std::uint8_t bus, std::uint8_t dev, std::uint8_t fn, std::uint16_t reg, std::span<std::byte> data);
  void write(std::uint8_t bus, std::uint8_t dev, std::uint8_t fn, std::uint16_t reg, std::span<const std::byte> data);

 private:
  std::mutex mu_;
  std::array<std::shared_ptr<Function>, 32> slots_{};
};

// Ports 0xCF8-0xCFF: the address register (0xCF8, 32 bits) and the data window (0xCFC-0xCFF).
class ConfigPorts : public BusDevice {
 public:
  explicit ConfigPorts(RootBus& bus) : bus_(bus) {}
  void read(std::uint64_t offset, std::span<std::byte> data) override;
  void write(std::uint64_t offset, std::span<const std::byte> data) override;

 private:
  RootBus& bus_;
  std::mutex mu_;
  std::uint32_t address_ = 0;
};

// ECAM: 4 KiB of configuration space per function, bus 0 only (1 MiB).
class Ecam : public BusDevice {
 public:
  static constexpr std::uint64_t kSize = 1 << 20;
  explicit Ecam(RootBus& bus) : bus_(bus) {}
  void read(std::uint64_t offset, std::span<std::byte> data) override;
  void write(std::uint64_t offset, std::span<const std::byte> data) override;

 private:
  RootBus& bus_;
};

}  // namespace kiln::pci
