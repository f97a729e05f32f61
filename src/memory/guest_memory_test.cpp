#include "memory/guest_memory.h"

#include <array>
#include <limits>

#include <gtest/gtest.h>

namespace kiln {
namespace {

GuestMemory make(std::uint64_t ram) {
  auto layout = x86_ram_layout(ram);
  auto m = GuestMemory::create(layout);
  EXPECT_TRUE(m) << m.error().message();
  return std::move(*m);
}

TEST(RamLayout, SmallRamIsOneRegion) {
  auto l = x86_ram_layout(256 << 20);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].start, 0u);
  EXPECT_EQ(l[0].size, 256u << 20);
}

TEST(RamLayout, LargeRamSkipsTheMmioHole) {
  const std::uint64_t four_g = 4ull << 30;
  auto l = x86_ram_layout(four_g);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].size, GuestMemory::kMmioHoleStart);
  EXPECT_EQ(l[1].start, GuestMemory::kMmioHoleEnd);
  EXPECT_EQ(l[0].size + l[1].size, four_g);
}

TEST(GuestMemory, RoundTripsObjects) {
  auto mem = make(1 << 20);
  ASSERT_TRUE(mem.write_obj<std::uint64_t>(GuestAddress{0x1000}, 0x1122334455667788ull));
  auto v = mem.read_obj<std::uint64_t>(GuestAddress{0x1000});
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 0x1122334455667788ull);
  auto b = mem.read_obj<std::uint8_t>(GuestAddress{0x1000});
  EXPECT_EQ(*b, 0x88);
}

TEST(GuestMemory, RejectsAccessPastTheEnd) {
  auto mem = make(1 << 20);
  std::array<std::byte, 16> buf{};
  EXPECT_TRUE(mem.read(GuestAddress{(1 << 20) - 16}, buf));
  EXPECT_FALSE(mem.read(GuestAddress{(1 << 20) - 15}, buf));
  EXPECT_FALSE(mem.write(GuestAddress{1 << 20}, buf));
}

TEST(GuestMemory, RejectsOverflowingAddresses) {
  auto mem = make(1 << 20);
  std::array<std::byte, 16> buf{};
  EXPECT_FALSE(mem.read(GuestAddress{std::numeric_limits<std::uint64_t>::max() - 4}, buf));
  EXPECT_FALSE(mem.contains(GuestAddress{0x100}, std::numeric_limits<std::uint64_t>::max()));
  EXPECT_FALSE(mem.fill(GuestAddress{0x100}, std::byte{1}, std::numeric_limits<std::uint64_t>::max()));
}

TEST(GuestMemory, AccessMayNotSpanTwoRegions) {
  const RegionLayout layout[] = {{0, 0x1000}, {0x2000, 0x1000}};
  auto mem = GuestMemory::create(layout);
  ASSERT_TRUE(mem);
  std::array<std::byte, 8> buf{};
  EXPECT_TRUE(mem->read(GuestAddress{0x2ff8}, buf));
  EXPECT_FALSE(mem->read(GuestAddress{0xffc}, buf));   // runs into the gap
  EXPECT_FALSE(mem->read(GuestAddress{0x1800}, buf));  // inside the gap
}

TEST(GuestMemory, RejectsBadLayouts) {
  const RegionLayout unaligned[] = {{0, 0x1001}};
  EXPECT_FALSE(GuestMemory::create(unaligned));
  const RegionLayout overlapping[] = {{0, 0x2000}, {0x1000, 0x1000}};
  EXPECT_FALSE(GuestMemory::create(overlapping));
}

TEST(GuestMemory, EndBelow4GStopsAtTheHole) {
  const RegionLayout layout[] = {{0, 0x10000}, {GuestMemory::kMmioHoleEnd, 0x10000}};
  auto mem = GuestMemory::create(layout);
  ASSERT_TRUE(mem);
  EXPECT_EQ(mem->end_below_4g(), 0x10000u);
  EXPECT_EQ(mem->total_size(), 0x20000u);
}

}  // namespace
}  // namespace kiln
