#include "pci/pci.h"

#include <gtest/gtest.h>

#include <cstring>

namespace kiln::pci {
namespace {

class FakeFunction : public Function {
 public:
  FakeFunction() {
    cfg.set_ids(0x1af4, 0x1042, 0x010000, 1, 0x1af4, 0x1100);
    cfg.set_bar64(0, 0xc000'8000, 0x8000);
    const std::uint8_t cap[4] = {0x09, 0, 4, 7};
    cfg.add_capability(cap);
    const std::uint8_t cap2[4] = {0x11, 0, 0, 0};
    const std::uint8_t writable[4] = {0, 0, 0, 0xc0};
    cfg.add_capability(cap2, writable);
  }
  void config_read(std::uint64_t offset, std::span<std::byte> data) override { cfg.read(offset, data); }
  void config_write(std::uint64_t offset, std::span<const std::byte> data) override { cfg.write(offset, data); }
  ConfigSpace cfg;
};

class PciTest : public ::testing::Test {
 protected:
  PciTest() { EXPECT_EQ(bus.add(fn).value(), 1); }
  std::uint32_t cf8_read(std::uint32_t dev, std::uint32_t reg) {
    std::uint32_t a = 0x8000'0000u | dev << 11 | reg, v = 0;
    ports.write(0, std::as_bytes(std::span(&a, 1)));
    ports.read(4, std::as_writable_bytes(std::span(&v, 1)));
    return v;
  }
  void cf8_write(std::uint32_t dev, std::uint32_t reg, std::uint32_t v) {
    std::uint32_t a = 0x8000'0000u | dev << 11 | reg;
    ports.write(0, std::as_bytes(std::span(&a, 1)));
    ports.write(4, std::as_bytes(std::span(&v, 1)));
  }
  std::uint32_t ecam_read(std::uint32_t dev, std::uint32_t reg) {
    std::uint32_t v = 0;
    ecam.read(dev << 15 | reg, std::as_writable_bytes(std::span(&v, 1)));
    return v;
  }
  RootBus bus;
  std::shared_ptr<FakeFunction> fn = std::make_shared<FakeFunction>();
  ConfigPorts ports{bus};
  Ecam ecam{bus};
};

TEST_F(PciTest, TheHostBridgeAndTheDeviceAnswerThroughBothMechanisms) {
  EXPECT_EQ(cf8_read(0, 0), 0x29c0'8086u);
  EXPECT_EQ(cf8_read(0, 8) >> 8, 0x060000u) << "a host bridge";
  EXPECT_EQ(cf8_read(1, 0), 0x1042'1af4u);
  EXPECT_EQ(ecam_read(1, 0), 0x1042'1af4u);
  EXPECT_EQ(cf8_read(2, 0), 0xffff'ffffu) << "no device 2";
  EXPECT_EQ(ecam_read(1, 0x100), 0u) << "no extended capabilities";
  std::uint32_t v = 0;
  ecam.read(1u << 20, std::as_writable_bytes(std::span(&v, 1)));
  EXPECT_EQ(v, 0xffff'ffffu) << "no bus 1";
}

TEST_F(PciTest, SizingABarGivesItsSizeAndTheAddressStays) {
  EXPECT_EQ(cf8_read(1, 0x10), 0xc000'8004u);
  cf8_write(1, 0x10, 0xffff'ffff);
  cf8_write(1, 0x14, 0xffff'ffff);
  EXPECT_EQ(cf8_read(1, 0x10), 0xffff'8004u) << "32 KiB, 64-bit";
  EXPECT_EQ(cf8_read(1, 0x14), 0xffff'ffffu);
  cf8_write(1, 0x10, 0xc000'8000);
  cf8_write(1, 0x14, 0);
  EXPECT_EQ(cf8_read(1, 0x10), 0xc000'8004u);
  cf8_write(1, 0x10, 0xc100'0000);  // a move kiln does not follow
  EXPECT_EQ(cf8_read(1, 0x10), 0xc000'8004u);
  cf8_write(1, 0x18, 0xffff'ffff);
  EXPECT_EQ(cf8_read(1, 0x18), 0u) << "no BAR 2";
}

TEST_F(PciTest, CapabilitiesAreChainedAndOnlyWritableBitsChange) {
  EXPECT_TRUE(cf8_read(1, 4) >> 16 & 0x10) << "capability list";
  const std::uint32_t first = cf8_read(1, 0x34) & 0xff;
  EXPECT_EQ(first, 0x40u);
  const std::uint32_t second = cf8_read(1, first) >> 8 & 0xff;
  EXPECT_EQ(cf8_read(1, second) & 0xff, 0x11u);
  EXPECT_EQ(cf8_read(1, second) >> 8 & 0xff, 0u) << "the last";
  cf8_write(1, second, 0xffff'ffff);
  EXPECT_EQ(cf8_read(1, second), 0xc000'0011u) << "only the MSI-X enable and mask bits";
  cf8_write(1, 0, 0);
  EXPECT_EQ(cf8_read(1, 0), 0x1042'1af4u) << "ids are read-only";
  cf8_write(1, 4, 0xffff'ffff);
  EXPECT_EQ(cf8_read(1, 4) & 0xffff, 0x0407u) << "command: I/O, memory, bus master, INTx disable";
}

TEST_F(PciTest, OddAccessesAreHarmless) {
  std::uint8_t b = 0;
  ports.read(2, std::as_writable_bytes(std::span(&b, 1)));  // inside the address register
  std::uint16_t w = 0;
  std::uint32_t a = 0x8000'0800u;  // device 1, register 0
  ports.write(0, std::as_bytes(std::span(&a, 1)));
  ports.read(6, std::as_writable_bytes(std::span(&w, 1)));
  EXPECT_EQ(w, 0x1042) << "the upper half of the id dword";
  std::uint64_t q = 0;
  ecam.read((1u << 15) | 2, std::as_writable_bytes(std::span(&q, 1)));  // crosses a dword
  EXPECT_EQ(q, ~0ull);
  a = 0x0000'0800u;  // enable bit clear
  ports.write(0, std::as_bytes(std::span(&a, 1)));
  std::uint32_t v = 0;
  ports.read(4, std::as_writable_bytes(std::span(&v, 1)));
  EXPECT_EQ(v, 0xffff'ffffu);
}

TEST(PciBus, HoldsThirtyOneDevices) {
  RootBus bus;
  for (int i = 0; i < 31; ++i) ASSERT_TRUE(bus.add(std::make_shared<FakeFunction>()));
  auto r = bus.add(std::make_shared<FakeFunction>());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("full"), std::string::npos);
}

}  // namespace
}  // namespace kiln::pci
