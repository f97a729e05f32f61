#include "devices/legacy_ports.h"

#include <algorithm>

namespace kiln {

void BootTimerDevice::read(std::uint64_t, std::span<std::byte> data) { std::ranges::fill(data, std::byte{0}); }

void BootTimerDevice::write(std::uint64_t, std::span<const std::byte> data) {
  if (!data.empty() && static_cast<std::uint8_t>(data[0]) == kMagic) on_mark_();
}

void DebugExitDevice::read(std::uint64_t, std::span<std::byte> data) { std::ranges::fill(data, std::byte{0}); }

void DebugExitDevice::write(std::uint64_t, std::span<const std::byte> data) {
  if (!data.empty()) on_exit_(static_cast<std::uint8_t>(data[0]));
}

}  // namespace kiln
