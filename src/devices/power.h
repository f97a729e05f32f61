#pragma once
// The platform's power devices: the hardware-reduced ACPI sleep and reset registers the FADT
// points at, and a pvpanic port (QEMU's ISA pvpanic, which Linux's pvpanic driver binds through
// the DSDT's QEMU0001 device) through which a guest reports its panic.
#include <cstdint>
#include <functional>

#include "bus/bus.h"

namespace kiln {

// Three byte registers. The FADT and the DSDT's \_S5 are built from these constants.
class AcpiPowerDevice : public BusDevice {
 public:
  static constexpr std::uint64_t kSleepControl = 0, kSleepStatus = 1, kReset = 2, kSize = 3;  // offsets
  static constexpr std::uint8_t kSleepEnable = 1u << 5;
  static constexpr std::uint8_t kSleepTypeSoftOff = 5;  // SLP_TYP in bits 4:2 of a sleep-control write
  static constexpr std::uint8_t kResetValue = 0x0f;
  struct Callbacks {
    std::function<void()> power_off;
    std::function<void()> reset;
    std::function<void(std::uint8_t)> unsupported_sleep;  // S1-S4: kiln cannot suspend a guest
  };
  explicit AcpiPowerDevice(Callbacks cb) : cb_(std::move(cb)) {}
  void read(std::uint64_t offset, std::span<std::byte> data) override;
  void write(std::uint64_t offset, std::span<const std::byte> data) override;

 private:
  Callbacks cb_;
};

class PvPanicDevice : public BusDevice {
 public:
  static constexpr std::uint8_t kPanicked = 1u << 0;
  static constexpr std::uint8_t kCrashLoaded = 1u << 1;
  struct Callbacks {
    std::function<void()> panicked;
    std::function<void()> crash_loaded;  // a kdump kernel takes over: the VM goes on
  };
  explicit PvPanicDevice(Callbacks cb) : cb_(std::move(cb)) {}
  // Reads give the events the device supports.
  void read(std::uint64_t offset, std::span<std::byte> data) override;
  void write(std::uint64_t offset, std::span<const std::byte> data) override;

 private:
  Callbacks cb_;
};

}  // namespace kiln
