#include "bus/bus.h"

#include <array>
#include <vector>

#include <gtest/gtest.h>

namespace kiln {
namespace {

struct Recorder : BusDevice {
  std::vector<std::pair<std::uint64_t, std::size_t>> reads, writes;
  void read(std::uint64_t off, std::span<std::byte> d) override {
    reads.emplace_back(off, d.size());
    for (auto& b : d) b = std::byte{0x5a};
  }
  void write(std::uint64_t off, std::span<const std::byte> d) override { writes.emplace_back(off, d.size()); }
};

TEST(Bus, RoutesWithOffset) {
  Bus bus("pio");
  auto dev = std::make_shared<Recorder>();
  ASSERT_TRUE(bus.insert(dev, 0x3f8, 8));
  std::array<std::byte, 1> b{};
  EXPECT_TRUE(bus.read(0x3fd, b));
  EXPECT_EQ(b[0], std::byte{0x5a});
  ASSERT_EQ(dev->reads.size(), 1u);
  EXPECT_EQ(dev->reads[0].first, 5u);
}

TEST(Bus, AccessMustFitInsideTheRange) {
  Bus bus("mmio");
  auto dev = std::make_shared<Recorder>();
  ASSERT_TRUE(bus.insert(dev, 0x1000, 0x10));
  std::array<std::byte, 4> b{};
  EXPECT_TRUE(bus.write(0x100c, b));
  EXPECT_FALSE(bus.write(0x100d, b));  // crosses the end
  EXPECT_FALSE(bus.read(0xffe, b));    // starts before
  EXPECT_EQ(b[0], std::byte{0xff});    // unclaimed reads see all ones
  EXPECT_EQ(dev->writes.size(), 1u);
  EXPECT_EQ(bus.unclaimed_accesses(), 2u);
}

TEST(Bus, RejectsOverlapsAndEmptyRanges) {
  Bus bus("pio");
  auto dev = std::make_shared<Recorder>();
  ASSERT_TRUE(bus.insert(dev, 0x60, 1));
  ASSERT_TRUE(bus.insert(dev, 0x64, 1));
  EXPECT_FALSE(bus.insert(dev, 0x60, 1));
  EXPECT_FALSE(bus.insert(dev, 0x5f, 2));
  EXPECT_FALSE(bus.insert(dev, 0x61, 4));
  EXPECT_FALSE(bus.insert(dev, 0x70, 0));
  EXPECT_FALSE(bus.insert(dev, ~0ull, 2));
  EXPECT_TRUE(bus.insert(dev, 0x61, 3));
}

TEST(Bus, HighestAddressesWork) {
  Bus bus("mmio");
  auto dev = std::make_shared<Recorder>();
  ASSERT_TRUE(bus.insert(dev, ~0ull - 0xf, 0x10));
  std::array<std::byte, 8> b{};
  EXPECT_TRUE(bus.read(~0ull - 7, b));
  EXPECT_FALSE(bus.read(~0ull - 6, b));
}

}  // namespace
}  // namespace kiln
