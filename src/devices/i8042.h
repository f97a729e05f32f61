#pragma once
// The i8042 keyboard controller, as much of it as a VM needs: the reset line (command 0xfe, or
// output-port bit 0 cleared), the self-tests the Linux driver runs, and keyboard-free status.
#include <cstdint>
#include <functional>
#include <optional>

#include "devices/register_port_device.h"
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


using I8042Device = RegisterPortDevice<I8042>;

}  // namespace kiln
