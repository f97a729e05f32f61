#include "devices/power.h"

#include <algorithm>

namespace kiln {

void AcpiPowerDevice::read(std::uint64_t, std::span<std::byte> data) {
  // Sleep status: never "woken" (a soft-off guest never comes back); the others read as zero.
  std::ranges::fill(data, std::byte{0});
}

void AcpiPowerDevice::write(std::uint64_t offset, std::span<const std::byte> data) {
  if (data.empty()) return;
  const auto v = static_cast<std::uint8_t>(data[0]);
  switch (offset) {
    case kSleepControl:
      if ((v & kSleepEnable) == 0) return;
      if (const std::uint8_t type = (v >> 2) & 0x7; type == kSleepTypeSoftOff) {
        if (cb_.power_off) cb_.power_off();
      } else if (cb_.unsupported_sleep) {
        cb_.unsupported_sleep(type);
      }
      return;
    case kReset:
      if (v == kResetValue && cb_.reset) cb_.reset();
      return;
    default: return;  // sleep status: write-one-to-clear of a bit that is never set
  }
}

void PvPanicDevice::read(std::uint64_t, std::span<std::byte> data) {
  std::ranges::fill(data, std::byte{0});
  if (!data.empty()) data[0] = std::byte{kPanicked | kCrashLoaded};
}

void PvPanicDevice::write(std::uint64_t, std::span<const std::byte> data) {
  if (data.empty()) return;
  const auto v = static_cast<std::uint8_t>(data[0]);
  if ((v & kPanicked) && cb_.panicked) cb_.panicked();
  if ((v & kCrashLoaded) && cb_.crash_loaded) cb_.crash_loaded();
}

}  // namespace kiln
