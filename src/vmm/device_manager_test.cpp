#include "vmm/device_manager.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

struct NullDevice : BusDevice {
  void read(std::uint64_t, std::span<std::byte> data) override { std::fill(data.begin(), data.end(), std::byte{0x5a}); }
  void write(std::uint64_t, std::span<const std::byte>) override {}
};

class DeviceManagerTest : public ::testing::Test {
 protected:
  Bus pio{"port I/O"}, mmio{"MMIO"};
  DeviceManager dm{pio, mmio, {.mmio_start = 0xd000'0000, .mmio_end = 0xd000'3000, .gsi_start = 5, .gsi_end = 8}};
};

TEST_F(DeviceManagerTest, FixedDevicesGoOnTheBusWithTheirFirmwareEntriesInOrder) {
  ASSERT_TRUE(dm.add_fixed_pio("COM1", std::make_shared<NullDevice>(), 0x3f8, 8, 4, acpi::Bytes{1, 2}));
  ASSERT_TRUE(dm.add_fixed_pio("debug-exit", std::make_shared<NullDevice>(), 0xf4, 1));
  ASSERT_TRUE(dm.add_fixed_pio("rtc", std::make_shared<NullDevice>(), 0x70, 2, 3, acpi::Bytes{3}));
  EXPECT_FALSE(dm.add_fixed_pio("past the IOAPIC", std::make_shared<NullDevice>(), 0x80, 1, 8)) << "lines 0-7 only";
  std::byte b{};
  EXPECT_TRUE(pio.read(0x3fa, std::span(&b, 1)));
  EXPECT_EQ(b, std::byte{0x5a});
  EXPECT_EQ(dm.devices().size(), 3u);
  EXPECT_EQ(dm.dsdt_terms(), (std::vector<acpi::Bytes>{{1, 2}, {3}})) << "the order they were added; none for debug-exit";
}

TEST_F(DeviceManagerTest, OverlappingPortsOrASharedIrqAreRefusedAndLeaveNothingBehind) {
  ASSERT_TRUE(dm.add_fixed_pio("COM1", std::make_shared<NullDevice>(), 0x3f8, 8, 4));
  auto ports = dm.add_fixed_pio("COM1 again", std::make_shared<NullDevice>(), 0x3fc, 4, 3);
  ASSERT_FALSE(ports);
  EXPECT_NE(ports.error().message().find("overlaps 'COM1'"), std::string::npos) << ports.error().message();
  auto irq = dm.add_fixed_pio("COM2", std::make_shared<NullDevice>(), 0x2f8, 8, 4);
  ASSERT_FALSE(irq);
  EXPECT_NE(irq.error().message().find("interrupt lines"), std::string::npos) << irq.error().message();
  std::byte b{};
  EXPECT_FALSE(pio.read(0x2f8, std::span(&b, 1))) << "the refused device is not on the bus";
  ASSERT_TRUE(dm.add_fixed_pio("COM2", std::make_shared<NullDevice>(), 0x2f8, 8, 3)) << "its ports were given back";
  EXPECT_EQ(dm.devices().size(), 2u);
}

TEST_F(DeviceManagerTest, MmioDevicesGetTheirOwnPagesAndLinesUntilThePoolsRunOut) {
  ASSERT_TRUE(dm.add_fixed_pio("rtc", std::make_shared<NullDevice>(), 0x70, 2, 6));  // takes line 6
  auto cmdline = [](DeviceInfo& d) -> Result<void> {
    d.cmdline = fmt::format("virtio_mmio.device=4K@{:#x}:{}", d.base, *d.irq);
    return {};
  };
  auto a = dm.add_mmio("virtio-a", std::make_shared<NullDevice>(), 0x200, cmdline);
  auto b = dm.add_mmio("virtio-b", std::make_shared<NullDevice>(), 0x1000, cmdline);
  ASSERT_TRUE(a && b);
  EXPECT_EQ((*a)->base, 0xd000'0000u);
  EXPECT_EQ((*a)->size, 0x1000u) << "a whole page";
  EXPECT_EQ((*a)->irq, 5u);
  EXPECT_EQ((*b)->base, 0xd000'1000u);
  EXPECT_EQ((*b)->irq, 7u) << "line 6 is the rtc's";
  std::byte v{};
  EXPECT_TRUE(mmio.read(0xd000'1ff8, std::span(&v, 1)));
  EXPECT_EQ(dm.cmdline_args(), "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:7");
  auto no_line = dm.add_mmio("virtio-c", std::make_shared<NullDevice>(), 0x1000);
  ASSERT_FALSE(no_line) << "lines 5-7 are all taken";
  EXPECT_NE(no_line.error().message().find("no room"), std::string::npos) << no_line.error().message();
  EXPECT_FALSE(mmio.read(0xd000'2000, std::span(&v, 1))) << "its page was given back";
  EXPECT_EQ(dm.devices().size(), 3u);
}

}  // namespace
}  // namespace kiln
