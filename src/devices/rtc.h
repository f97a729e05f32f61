#pragma once
// The CMOS real-time clock (MC146818) on ports 0x70/0x71: time of day from the host's clock (UTC),
// BCD or binary and 12/24-hour as the guest chooses in status register B, and 128 bytes of CMOS RAM.
#include <array>
#include <cstdint>
#include <ctime>
#include <functional>

#include "devices/register_port_device.h"

namespace kiln {

class CmosRtc {
 public:
  using Clock = std::function<std::time_t()>;
  explicit CmosRtc(Clock clock = [] { return std::time(nullptr); });
  // offset 0 = index port (bit 7 masks NMI), 1 = data port
  std::uint8_t read(std::uint8_t offset);
  void write(std::uint8_t offset, std::uint8_t value);

 private:
  std::uint8_t encode(unsigned value) const;
  std::uint8_t read_register(std::uint8_t reg);
  Clock clock_;
  std::uint8_t index_ = 0;
  std::array<std::uint8_t, 128> ram_{};
};


using CmosRtcDevice = RegisterPortDevice<CmosRtc>;

}  // namespace kiln
