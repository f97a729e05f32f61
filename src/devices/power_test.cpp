#include "devices/power.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

void put(BusDevice& d, std::uint64_t off, std::uint8_t v) {
  const std::byte b{v};
  d.write(off, std::span(&b, 1));
}
std::uint8_t get(BusDevice& d, std::uint64_t off) {
  std::byte b{0xff};
  d.read(off, std::span(&b, 1));
  return static_cast<std::uint8_t>(b);
}

struct Seen {
  int off = 0, reset = 0, other = 0;
  std::uint8_t other_type = 0;
};

AcpiPowerDevice make(Seen& s) {
  return AcpiPowerDevice({.power_off = [&s] { ++s.off; },
                                .reset = [&s] { ++s.reset; },
                                .unsupported_sleep = [&s](std::uint8_t t) { ++s.other; s.other_type = t; }});
}

TEST(AcpiPower, SoftOffNeedsTheSleepEnableBitAndTypeFive) {
  Seen s;
  auto d = make(s);
  put(d, 0, 5 << 2);  // SLP_TYP without SLP_EN: nothing yet
  EXPECT_EQ(s.off, 0);
  put(d, 0, (5 << 2) | 0x20);
  EXPECT_EQ(s.off, 1);
  put(d, 0, (3 << 2) | 0x20);  // S3: not supported, reported
  EXPECT_EQ(s.off, 1);
  EXPECT_EQ(s.other, 1);
  EXPECT_EQ(s.other_type, 3);
}

TEST(AcpiPower, ResetOnlyWithTheFadtValue) {
  Seen s;
  auto d = make(s);
  put(d, 2, 0x06);
  EXPECT_EQ(s.reset, 0);
  put(d, 2, 0x0f);
  EXPECT_EQ(s.reset, 1);
  put(d, 1, 0xff);  // clearing the status register does nothing
  EXPECT_EQ(s.off + s.reset + s.other, 1);
}

TEST(AcpiPower, RegistersReadAsZero) {
  Seen s;
  auto d = make(s);
  EXPECT_EQ(get(d, 0), 0);
  EXPECT_EQ(get(d, 1), 0);  // never "woken"
  EXPECT_EQ(get(d, 2), 0);
}

TEST(PvPanic, AdvertisesItsEventsAndReportsThem) {
  int panics = 0, kdumps = 0;
  PvPanicDevice d({.panicked = [&] { ++panics; }, .crash_loaded = [&] { ++kdumps; }});
  EXPECT_EQ(get(d, 0), PvPanicDevice::kPanicked | PvPanicDevice::kCrashLoaded);
  put(d, 0, 0);
  EXPECT_EQ(panics + kdumps, 0);
  put(d, 0, PvPanicDevice::kPanicked);
  EXPECT_EQ(panics, 1);
  put(d, 0, PvPanicDevice::kCrashLoaded);
  EXPECT_EQ(kdumps, 1);
  EXPECT_EQ(panics, 1);
}

}  // namespace
}  // namespace kiln
