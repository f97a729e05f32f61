#include "devices/i8042.h"

#include <gtest/gtest.h>

#include <vector>

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

struct CountingIrq : IrqLine {
  void set_level(bool high) override { edges += high ? 1 : 0; }
  int edges = 0;
};

std::vector<std::uint8_t> drain(I8042& kbd) {
  std::vector<std::uint8_t> out;
  while ((kbd.read(4) & 1) != 0) out.push_back(kbd.read(0));
  return out;
}

TEST(I8042, KeyboardAnswersTheDriversCommandsWithInterrupts) {
  CountingIrq irq;
  I8042 kbd([] {}, &irq);
  kbd.write(0, 0xf2);  // get ID
  EXPECT_EQ(drain(kbd), (std::vector<std::uint8_t>{0xfa, 0xab, 0x83}));
  EXPECT_EQ(irq.edges, 3) << "one interrupt per byte from the keyboard";
  kbd.write(0, 0xed);  // LEDs, then its argument
  kbd.write(0, 0x07);
  EXPECT_EQ(drain(kbd), (std::vector<std::uint8_t>{0xfa, 0xfa}));
  kbd.write(4, 0xaa);  // the controller's own answers raise no interrupt
  EXPECT_EQ(drain(kbd), (std::vector<std::uint8_t>{0x55}));
  EXPECT_EQ(irq.edges, 5);
}

TEST(I8042, CtrlAltDelInTheScanCodeSetTheGuestChose) {
  CountingIrq irq;
  I8042 kbd([] {}, &irq);
  ASSERT_TRUE(kbd.press_ctrl_alt_del());  // translation on (the power-on command byte): set 1
  EXPECT_EQ(drain(kbd), (std::vector<std::uint8_t>{0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d}));
  kbd.write(4, 0x60);
  kbd.write(0, 0x01);  // translation off, interrupt on
  ASSERT_TRUE(kbd.press_ctrl_alt_del());
  EXPECT_EQ(drain(kbd), (std::vector<std::uint8_t>{0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14}));
}

TEST(I8042, AKeyboardBufferTheGuestNeverReadsIsBounded) {
  CountingIrq irq;
  I8042 kbd([] {}, &irq);
  kbd.write(4, 0x60);
  kbd.write(0, 0x00);  // interrupts off: a guest that does not listen
  int taken = 0;
  for (int i = 0; i < 100; ++i) taken += kbd.press_ctrl_alt_del() ? 1 : 0;
  EXPECT_LT(taken, 100);
  EXPECT_GT(taken, 0);
  EXPECT_EQ(irq.edges, 0);
}

}  // namespace
}  // namespace kiln
