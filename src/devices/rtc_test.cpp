#include "devices/rtc.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

// 2026-11-24 14:05:09 UTC, a Tuesday.
constexpr std::time_t kWhen = 1795529109;

std::uint8_t reg(CmosRtc& rtc, std::uint8_t r) {
  rtc.write(0, r);
  return rtc.read(1);
}

// kWhen in BCD, register by register, and register D's valid-RAM bit.
void expect_reads_kwhen(CmosRtc& rtc) {
  EXPECT_EQ(reg(rtc, 0x00), 0x09);
  EXPECT_EQ(reg(rtc, 0x02), 0x05);
  EXPECT_EQ(reg(rtc, 0x04), 0x14);
  EXPECT_EQ(reg(rtc, 0x06), 0x03);
  EXPECT_EQ(reg(rtc, 0x07), 0x24);
  EXPECT_EQ(reg(rtc, 0x08), 0x11);
  EXPECT_EQ(reg(rtc, 0x09), 0x26);
  EXPECT_EQ(reg(rtc, 0x32), 0x20);
  EXPECT_EQ(reg(rtc, 0x0d), 0x80);
}

TEST(CmosRtc, BcdTimeFromTheClock) {
  CmosRtc rtc([] { return kWhen; });
  expect_reads_kwhen(rtc);
  EXPECT_EQ(reg(rtc, 0x0a) & 0x80, 0) << "never mid-update";
}

TEST(CmosRtc, BinaryAnd12HourModes) {
  CmosRtc rtc([] { return kWhen; });
  rtc.write(0, 0x0b);
  rtc.write(1, 0x04);  // binary, 12-hour
  EXPECT_EQ(reg(rtc, 0x02), 5);
  EXPECT_EQ(reg(rtc, 0x04), 0x80 | 2) << "2 PM";
  EXPECT_EQ(reg(rtc, 0x09), 26);
}

TEST(CmosRtc, RamKeepsValuesAndNmiBitIsIgnored) {
  CmosRtc rtc([] { return kWhen; });
  rtc.write(0, 0x80 | 0x40);
  rtc.write(1, 0xab);
  EXPECT_EQ(reg(rtc, 0x40), 0xab);
}

TEST(CmosRtc, AGuestCannotSetTheClock) {
  CmosRtc rtc([] { return kWhen; });
  // Every time and date register written, and register D's valid-RAM bit cleared.
  for (int r : {0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32, 0x0d}) {
    rtc.write(0, static_cast<std::uint8_t>(r));
    rtc.write(1, 0x01);
  }
  // Read back: still the host's clock.
  expect_reads_kwhen(rtc);
}

}  // namespace
}  // namespace kiln
