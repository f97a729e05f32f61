#pragma once
// The i8042 keyboard controller, as much of it as a VM needs: the reset line (command 0xfe, or
// output-port bit 0 cleared), the self-tests the Linux driver runs, and a keyboard that answers
// the driver's commands and can type one thing: Ctrl-Alt-Del (the API's SendCtrlAltDel). Bytes
// from the keyboard raise IRQ 1 when the guest enabled it; the controller's own answers do not.
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>

#include "devices/register_port_device.h"
#include "devices/irq_line.h"

namespace kiln {

class I8042 {
 public:
  // `kbd_irq`: IRQ 1, or null for a controller with no keyboard interrupt.
  explicit I8042(std::function<void()> on_reset, IrqLine* kbd_irq = nullptr)
      : on_reset_(std::move(on_reset)), kbd_irq_(kbd_irq) {}
  // port offset: 0 = data (0x60), 4 = status/command (0x64)
  std::uint8_t read(std::uint8_t offset);
  void write(std::uint8_t offset, std::uint8_t value);
  // The keys pressed and released, in scan code set 2, or set 1 when the guest turned the
  // controller's translation on (as Linux does). False if the keyboard's buffer is full.
  bool press_ctrl_alt_del();

  // The keyboard's buffer, in bytes (a real keyboard holds 16 keys).
  static constexpr std::size_t kKeyboardBuffer = 64;

 private:
  void push_output(std::uint8_t v) { output_ = v; }
  bool push_keyboard(std::initializer_list<std::uint8_t> bytes);
  void keyboard_command(std::uint8_t value);
  void load_keyboard_byte();
  std::function<void()> on_reset_;
  IrqLine* kbd_irq_;
  std::optional<std::uint8_t> output_;
  std::deque<std::uint8_t> keyboard_;  // bytes the keyboard sent that the guest has not read
  std::uint8_t command_byte_ = 0x45;  // translate, system flag, keyboard interrupt
  std::uint8_t pending_command_ = 0;  // a command waiting for its data byte
  std::uint8_t pending_kbd_command_ = 0;  // a keyboard command waiting for its argument
};


using I8042Device = RegisterPortDevice<I8042>;

}  // namespace kiln
