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
}  // namespace

std::uint8_t I8042::read(std::uint8_t offset) {
  if (offset == 0) {
    const std::uint8_t v = output_.value_or(0);
    output_.reset();
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
    } else if (cmd == kCmdWriteOutputPort) {
      if ((value & 1) == 0) on_reset_();  // bit 0 is the CPU reset line, active low
    } else {
      // A byte for the keyboard: there is none, so the controller answers with a timeout-free
      // "resend"-less silence, as a PC with no keyboard plugged in does.
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
