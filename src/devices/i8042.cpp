#include "devices/i8042.h"

namespace kiln {

namespace {
constexpr std::uint8_t kStatusOutputFull = 0x01;
constexpr std::uint8_t kStatusSystemFlag = 0x04;
constexpr std::uint8_t kStatusCommand = 0x08;  // last write was to the command port
constexpr std::uint8_t kStatusNotInhibited = 0x10;  // the keyboard lock is off

constexpr std::uint8_t kCmdReadCommandByte = 0x20;
constexpr std::uint8_t kCmdWriteCommandByte = 0x60;
constexpr std::uint8_t kCmdSelfTest = 0xaa;
constexpr std::uint8_t kCmdKbdInterfaceTest = 0xab;
constexpr std::uint8_t kCmdAuxInterfaceTest = 0xa9;
constexpr std::uint8_t kCmdReadOutputPort = 0xd0;
constexpr std::uint8_t kCmdWriteOutputPort = 0xd1;
constexpr std::uint8_t kCmdPulseReset = 0xfe;

constexpr std::uint8_t kCbKbdInterrupt = 0x01;
constexpr std::uint8_t kCbKbdDisabled = 0x10;
constexpr std::uint8_t kCbTranslate = 0x40;

// Keyboard commands (written to the data port) and its answers.
constexpr std::uint8_t kKbdAck = 0xfa;
constexpr std::uint8_t kKbdSelfTestPassed = 0xaa;
constexpr std::uint8_t kKbdEcho = 0xee;
constexpr std::uint8_t kKbdGetId = 0xf2;
constexpr std::uint8_t kKbdReset = 0xff;
bool kbd_command_takes_argument(std::uint8_t c) {
  return c == 0xed /* LEDs */ || c == 0xf0 /* scan code set */ || c == 0xf3 /* typematic rate */;
}
}  // namespace

bool I8042::push_keyboard(std::initializer_list<std::uint8_t> bytes) {
  if (keyboard_.size() + bytes.size() > kKeyboardBuffer) return false;
  keyboard_.insert(keyboard_.end(), bytes);
  load_keyboard_byte();
  return true;
}

// The next keyboard byte goes to the output register once the guest has read the last one.
void I8042::load_keyboard_byte() {
  if (output_ || keyboard_.empty() || (command_byte_ & kCbKbdDisabled) != 0) return;
  output_ = keyboard_.front();
  keyboard_.pop_front();
  if (kbd_irq_ != nullptr && (command_byte_ & kCbKbdInterrupt) != 0) {
    kbd_irq_->set_level(true);  // an edge on the ISA line
    kbd_irq_->set_level(false);
  }
}

void I8042::keyboard_command(std::uint8_t value) {
  if (pending_kbd_command_ != 0) {  // the argument of ED, F0 or F3
    pending_kbd_command_ = 0;
    push_keyboard({kKbdAck});
    return;
  }
  if (kbd_command_takes_argument(value)) pending_kbd_command_ = value;
  switch (value) {
    case kKbdReset: push_keyboard({kKbdAck, kKbdSelfTestPassed}); break;
    case kKbdGetId: push_keyboard({kKbdAck, 0xab, 0x83}); break;  // an MF2 keyboard
    case kKbdEcho: push_keyboard({kKbdEcho}); break;
    default: push_keyboard({kKbdAck}); break;  // enable, disable, defaults, LEDs, rates: all taken
  }
}

bool I8042::press_ctrl_alt_del() {
  if ((command_byte_ & kCbTranslate) != 0)  // set 1: a release is the press with bit 7 set
    return push_keyboard({0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d});
  return push_keyboard({0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14});
}

std::uint8_t I8042::read(std::uint8_t offset) {
  if (offset == 0) {
    const std::uint8_t v = output_.value_or(0);
    output_.reset();
    load_keyboard_byte();
    return v;
  }
  if (offset != 4) return 0xff;  // 0x61-0x63 are not the controller's
  std::uint8_t status = kStatusSystemFlag | kStatusNotInhibited;
  if (output_) status |= kStatusOutputFull;
  if (pending_command_ != 0) status |= kStatusCommand;
  return status;
}

void I8042::write(std::uint8_t offset, std::uint8_t value) {
  if (offset == 0) {
    const std::uint8_t cmd = pending_command_;
    pending_command_ = 0;
    if (cmd == kCmdWriteCommandByte) {
      command_byte_ = value;
      load_keyboard_byte();
    } else if (cmd == kCmdWriteOutputPort) {
      if ((value & 1) == 0) on_reset_();  // bit 0 is the CPU reset line, active low
    } else {
      keyboard_command(value);
    }
    return;
  }
  if (offset != 4) return;
  switch (value) {
    case kCmdReadCommandByte: push_output(command_byte_); break;
    case kCmdWriteCommandByte:
    case kCmdWriteOutputPort: pending_command_ = value; break;
    case kCmdSelfTest: push_output(0x55); break;
    case kCmdKbdInterfaceTest:
    case kCmdAuxInterfaceTest: push_output(0x00); break;
    case kCmdReadOutputPort: push_output(0x01); break;
    case kCmdPulseReset: on_reset_(); break;
    default:
      // 0xf0-0xff pulse output lines: bit 0 clear pulses reset.
      if (value >= 0xf0 && (value & 1) == 0) on_reset_();
      break;
  }
}

}  // namespace kiln
