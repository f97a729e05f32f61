#include "devices/rtc.h"

namespace kiln {

namespace {
constexpr std::uint8_t kSeconds = 0x00, kMinutes = 0x02, kHours = 0x04, kWeekday = 0x06, kDay = 0x07,
                       kMonth = 0x08, kYear = 0x09, kStatusA = 0x0a, kStatusB = 0x0b, kStatusC = 0x0c,
                       kStatusD = 0x0d, kCentury = 0x32;
constexpr std::uint8_t kStatusBBinary = 0x04, kStatusB24h = 0x02;
}  // namespace

CmosRtc::CmosRtc(Clock clock) : clock_(std::move(clock)) {
  ram_[kStatusA] = 0x26;              // 32.768 kHz base, 1024 Hz rate, update not in progress
  ram_[kStatusB] = kStatusB24h;       // BCD, 24-hour
  ram_[kStatusD] = 0x80;              // valid RAM and time
}

std::uint8_t CmosRtc::encode(unsigned v) const {
  if ((ram_[kStatusB] & kStatusBBinary) != 0) return static_cast<std::uint8_t>(v);
  return static_cast<std::uint8_t>(((v / 10) << 4) | (v % 10));
}

std::uint8_t CmosRtc::read_register(std::uint8_t reg) {
  const std::time_t now = clock_();
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  switch (reg) {
    case kSeconds: return encode(static_cast<unsigned>(tm.tm_sec));
    case kMinutes: return encode(static_cast<unsigned>(tm.tm_min));
    case kHours: {
      if ((ram_[kStatusB] & kStatusB24h) != 0) return encode(static_cast<unsigned>(tm.tm_hour));
      const unsigned h12 = tm.tm_hour % 12 == 0 ? 12 : static_cast<unsigned>(tm.tm_hour % 12);
      return static_cast<std::uint8_t>(encode(h12) | (tm.tm_hour >= 12 ? 0x80 : 0));
    }
    case kWeekday: return encode(static_cast<unsigned>(tm.tm_wday + 1));
    case kDay: return encode(static_cast<unsigned>(tm.tm_mday));
    case kMonth: return encode(static_cast<unsigned>(tm.tm_mon + 1));
    case kYear: return encode(static_cast<unsigned>((tm.tm_year + 1900) % 100));
    case kCentury: return encode(static_cast<unsigned>((tm.tm_year + 1900) / 100));
    case kStatusC: {
      const std::uint8_t v = ram_[kStatusC];
      ram_[kStatusC] = 0;  // reading C acknowledges its flags
      return v;
    }
    default: return ram_[reg];
  }
}

std::uint8_t CmosRtc::read(std::uint8_t offset) {
  if (offset == 0) return 0xff;
  return read_register(index_);
}

void CmosRtc::write(std::uint8_t offset, std::uint8_t value) {
  if (offset == 0) {
    index_ = value & 0x7f;
    return;
  }
  switch (index_) {
    case kStatusA: ram_[kStatusA] = static_cast<std::uint8_t>(value & 0x7f); break;  // UIP is read-only
    case kStatusC:
    case kStatusD: break;  // read-only
    case kSeconds: case kMinutes: case kHours: case kWeekday: case kDay: case kMonth: case kYear: case kCentury:
      break;  // the clock follows the host; a guest cannot set it
    default: ram_[index_] = value; break;
  }
}

}  // namespace kiln
