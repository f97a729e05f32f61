#pragma once
// The BusDevice adapter every byte-register device core shares: it serializes access to the core
// (vCPU threads and the VMM thread call concurrently) and sends each byte of an access to
// consecutive registers, as an ISA device sees a wide access.
#include <cstdint>
#include <mutex>
#include <span>

#include "bus/bus.h"

namespace kiln {

template <class Core>
concept ByteRegisterCore = requires(Core c, std::uint8_t reg, std::uint8_t value) {
  { c.read(reg) } -> std::same_as<std::uint8_t>;
  c.write(reg, value);
};

template <ByteRegisterCore Core>
class RegisterPortDevice : public BusDevice {
 public:
  explicit RegisterPortDevice(Core& core) : core_(core) {}
  void read(std::uint64_t offset, std::span<std::byte> data) override {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = std::byte{core_.read(static_cast<std::uint8_t>(offset + i))};
  }
  void write(std::uint64_t offset, std::span<const std::byte> data) override {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < data.size(); ++i)
      core_.write(static_cast<std::uint8_t>(offset + i), static_cast<std::uint8_t>(data[i]));
  }
  // Runs f(core) under the device's lock, for calls from the host side (console input, ...).
  template <class F>
  auto with_core(F&& f) {
    std::lock_guard lock(mu_);
    return f(core_);
  }

 private:
  std::mutex mu_;
  Core& core_;
};

}  // namespace kiln
