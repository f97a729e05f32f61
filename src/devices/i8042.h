#pragma once
// The i8042 keyboard controller, as much of it as a VM needs: the reset line (command 0xfe, or
// output-port bit 0 cleared), the self-tests the Linux driver runs, and keyboard-free status.
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

#include "bus/bus.h"
#include "devices/irq_line.h"

namespace kiln {

class I8042 {
 public:
  explicit I8042(std::function<void()> on_reset) : on_reset_(std::move(on_reset)) {}
  // port offset: 0 = data (0x60), 4 = status/command (0x64)
  std::uint8_t read(std::uint8_t offset);
  void write(std::uint8_t offset, std::uint8_t value);

 private:
  void push_output(std::uint8_t v) { output_ = v; }
  std::function<void()> on_reset_;
  std::optional<std::uint8_t> output_;
  std::uint8_t command_byte_ = 0x45;  // translate, system flag, keyboard interrupt
  std::uint8_t pending_command_ = 0;  // a command waiting for its data byte
};

class I8042Device : public BusDevice {
 public:
  explicit I8042Device(I8042& core) : core_(core) {}
  void read(std::uint64_t offset, std::span<std::byte> data) override;
  void write(std::uint64_t offset, std::span<const std::byte> data) override;

 private:
  std::mutex mu_;
  I8042& core_;
};

}  // namespace kiln
