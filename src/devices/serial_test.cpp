#include "devices/serial.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kiln {
namespace {

struct FakeIrq : IrqLine {
  std::vector<bool> edges;
  void set_level(bool high) override { edges.push_back(high); }
};

class SerialTest : public ::testing::Test {
 protected:
  FakeIrq irq;
  std::string out;
  Serial16550 uart{irq, [this](std::span<const std::byte> b) {
                     for (auto c : b) out.push_back(static_cast<char>(c));
                   }};
};

TEST_F(SerialTest, TransmitsBytes) {
  for (char c : std::string("hi\n")) uart.write(0, static_cast<std::uint8_t>(c));
  EXPECT_EQ(out, "hi\n");
  EXPECT_EQ(uart.read(5) & 0x60, 0x60) << "THR empty and idle";
}

TEST_F(SerialTest, DivisorLatchDoesNotTransmit) {
  uart.write(3, 0x80);  // DLAB
  uart.write(0, 0x01);
  uart.write(1, 0x00);
  EXPECT_EQ(uart.read(0), 0x01);
  uart.write(3, 0x03);
  EXPECT_TRUE(out.empty());
}

TEST_F(SerialTest, ReceivedDataRaisesRdaInterrupt) {
  uart.write(1, 0x01);  // IER: RDA
  EXPECT_TRUE(irq.edges.empty());
  const std::byte in[] = {std::byte{'a'}, std::byte{'b'}};
  EXPECT_EQ(uart.enqueue_input(in), 2u);
  ASSERT_EQ(irq.edges.size(), 1u);
  EXPECT_TRUE(irq.edges[0]);
  EXPECT_EQ(uart.read(2) & 0x0f, 0x04);
  EXPECT_EQ(uart.read(5) & 1, 1);
  EXPECT_EQ(uart.read(0), 'a');
  EXPECT_EQ(uart.read(0), 'b');
  EXPECT_EQ(uart.read(5) & 1, 0);
  EXPECT_EQ(irq.edges.back(), false) << "line drops once the FIFO is empty";
  EXPECT_EQ(uart.read(2) & 0x01, 1) << "no interrupt pending";
}

TEST_F(SerialTest, ThreInterruptOnEnableAndAfterWriteClearedByIirRead) {
  uart.write(1, 0x02);
  ASSERT_FALSE(irq.edges.empty());
  EXPECT_TRUE(irq.edges.back());
  EXPECT_EQ(uart.read(2) & 0x0f, 0x02);
  EXPECT_FALSE(irq.edges.back());
  EXPECT_EQ(uart.read(2) & 0x0f, 0x01);
  uart.write(0, 'x');
  EXPECT_TRUE(irq.edges.back());
}

TEST_F(SerialTest, LoopbackForTheDriverProbe) {
  uart.write(4, 0x1a);  // LOOP | OUT2 | RTS
  EXPECT_EQ(uart.read(6) & 0xf0, 0x90);
  uart.write(4, 0x1f);
  EXPECT_EQ(uart.read(6) & 0xf0, 0xf0);
  uart.write(0, 'z');
  EXPECT_TRUE(out.empty()) << "loopback bytes are not transmitted";
  EXPECT_EQ(uart.read(0), 'z');
}

TEST_F(SerialTest, InputBeyondTheLimitIsDroppedAndCounted) {
  std::vector<std::byte> big(Serial16550::kInputLimit + 10, std::byte{'q'});
  EXPECT_EQ(uart.enqueue_input(big), Serial16550::kInputLimit);
  EXPECT_EQ(uart.dropped_input(), 10u);
}

TEST_F(SerialTest, FifoControlClearsReceive) {
  const std::byte in[] = {std::byte{'a'}};
  uart.enqueue_input(in);
  uart.write(2, 0x03);
  EXPECT_EQ(uart.read(5) & 1, 0);
  EXPECT_EQ(uart.read(2) & 0xc0, 0xc0) << "FIFOs reported enabled";
}

TEST_F(SerialTest, ScratchAndOddRegistersAreHarmless) {
  uart.write(7, 0x5a);
  EXPECT_EQ(uart.read(7), 0x5a);
  for (int r = 0; r < 256; ++r) {  // every register index: the UART decodes only the low 3 bits
    uart.write(static_cast<std::uint8_t>(r), 0xff);
    (void)uart.read(static_cast<std::uint8_t>(r));
  }
  // Only index 0 transmitted: from index 3 on DLAB is set (LCR 0xff), so 8, 16, ... hit the divisor
  // latch, and MCR 0xff put the UART in loopback.
  EXPECT_EQ(out, std::string(1, '\xff'));
  EXPECT_EQ(uart.read(7), 0xff) << "index 255 is the scratch register";
  EXPECT_EQ(uart.read(3), 0xff);
  EXPECT_EQ(uart.read(0), 0xff) << "index 248 with DLAB set wrote the divisor latch's low byte";
  // Back to a normal line: the UART works as before.
  uart.write(4, 0x08);
  uart.write(3, 0x03);
  uart.write(0, 'Z');
  EXPECT_EQ(out, std::string("\xffZ"));
  EXPECT_EQ(uart.read(5) & 0x60, 0x60) << "THR empty and idle";
}

TEST(SerialPortDevice, MultiByteAccessHitsConsecutiveRegisters) {
  FakeIrq irq;
  std::string out;
  Serial16550 core(irq, [&](std::span<const std::byte> b) { out.push_back(static_cast<char>(b[0])); });
  SerialPortDevice dev(core);
  EXPECT_EQ(dev.with_core([](Serial16550& u) { return u.read(7); }), 0);
  const std::byte w[] = {std::byte{'A'}, std::byte{0}};
  dev.write(0, w);  // 16-bit write: THR then IER
  EXPECT_EQ(out, "A");
}

}  // namespace
}  // namespace kiln
