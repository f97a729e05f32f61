#pragma once
// Single-port devices: the boot timer (a guest marks a moment; kiln logs the time since exec,
// Firecracker's idea) and the debug-exit port (a test guest writes a status and kiln exits with
// it, QEMU's isa-debug-exit idea).
#include <cstdint>
#include <functional>

#include "bus/bus.h"

namespace kiln {

class BootTimerDevice : public BusDevice {
 public:
  static constexpr std::uint8_t kMagic = 123;
  explicit BootTimerDevice(std::function<void()> on_mark) : on_mark_(std::move(on_mark)) {}
  void read(std::uint64_t, std::span<std::byte> data) override;
  void write(std::uint64_t, std::span<const std::byte> data) override;

 private:
  std::function<void()> on_mark_;
};

class DebugExitDevice : public BusDevice {
 public:
  explicit DebugExitDevice(std::function<void(std::uint8_t)> on_exit) : on_exit_(std::move(on_exit)) {}
  void read(std::uint64_t, std::span<std::byte> data) override;
  void write(std::uint64_t, std::span<const std::byte> data) override;

 private:
  std::function<void(std::uint8_t)> on_exit_;
};

}  // namespace kiln
