#include "devices/i8042.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(I8042, PulseResetCommandResets) {
  int resets = 0;
  I8042 kbd([&] { ++resets; });
  EXPECT_EQ(kbd.read(4) & 0x02, 0) << "input buffer never full: the reboot path's kb_wait() passes";
  kbd.write(4, 0xfe);
  EXPECT_EQ(resets, 1);
}

TEST(I8042, OutputPortBitZeroClearedResets) {
  int resets = 0;
  I8042 kbd([&] { ++resets; });
  kbd.write(4, 0xd1);
  kbd.write(0, 0x01);
  EXPECT_EQ(resets, 0);
  kbd.write(4, 0xd1);
  kbd.write(0, 0x00);
  EXPECT_EQ(resets, 1);
}

TEST(I8042, SelfTestAndCommandByte) {
  I8042 kbd([] {});
  kbd.write(4, 0xaa);
  EXPECT_EQ(kbd.read(4) & 1, 1);
  EXPECT_EQ(kbd.read(0), 0x55);
  EXPECT_EQ(kbd.read(4) & 1, 0);
  kbd.write(4, 0x60);
  kbd.write(0, 0x12);
  kbd.write(4, 0x20);
  EXPECT_EQ(kbd.read(0), 0x12);
}

TEST(I8042, UnknownCommandsDoNothing) {
  int resets = 0;
  I8042 kbd([&] { ++resets; });
  for (int v = 0; v < 0xf0; ++v) kbd.write(4, static_cast<std::uint8_t>(v == 0xd1 || v == 0x60 ? 0 : v));
  kbd.write(0, 0xff);
  EXPECT_EQ(resets, 0);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

TEST(I8042, KeyboardIsNotInhibited) {
  // Linux warns "Keylock active" when status bit 4 is clear.
  I8042 kbd([] {});
  EXPECT_EQ(kbd.read(4) & 0x10, 0x10);
}

}  // namespace
}  // namespace kiln
