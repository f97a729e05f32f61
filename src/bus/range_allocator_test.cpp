#include "bus/range_allocator.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(RangeAllocator, FixedReservationsMayNotOverlapAndSayWhoHoldsTheRange) {
  RangeAllocator pio("port I/O", 0, 0x10000);
  ASSERT_TRUE(pio.reserve(0x3f8, 8, "COM1"));
  ASSERT_TRUE(pio.reserve(0x60, 5, "i8042"));
  ASSERT_TRUE(pio.reserve(0x3f0, 8, "boot timer")) << "touching is not overlapping";
  auto clash = pio.reserve(0x3fc, 8, "COM1 again");
  ASSERT_FALSE(clash);
  EXPECT_NE(clash.error().message().find("overlaps 'COM1' at 0x3f8-0x3ff"), std::string::npos) << clash.error().message();
  EXPECT_FALSE(pio.reserve(0x3e0, 0x100, "wide")) << "covering one whole";
  EXPECT_FALSE(pio.reserve(0x3f9, 1, "inside")) << "inside one";
  EXPECT_FALSE(pio.reserve(0xfffe, 4, "past the end"));
  EXPECT_FALSE(pio.reserve(0x500, 0, "empty"));
  EXPECT_EQ(pio.allocations().size(), 3u) << "a refusal takes nothing";
}

TEST(RangeAllocator, AllocationsAreAlignedFirstFitAndNeverOverlap) {
  RangeAllocator mmio("MMIO", 0xd000'0000, 0xd001'0000);  // 16 pages
  ASSERT_TRUE(mmio.reserve(0xd000'1000, 0x800, "fixed"));
  auto a = mmio.allocate(0x1000, 0x1000, "a");
  auto b = mmio.allocate(0x1000, 0x1000, "b");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, 0xd000'0000u);
  EXPECT_EQ(*b, 0xd000'2000u) << "past the fixed range, aligned";
  auto small = mmio.allocate(0x100, 0x100, "small");
  ASSERT_TRUE(small);
  EXPECT_EQ(*small, 0xd000'1800u) << "the gap after the fixed range";
  const auto all = mmio.allocations();
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_LE(all[i - 1].start + all[i - 1].size, all[i].start);
  EXPECT_FALSE(mmio.allocate(0x1000, 3, "odd alignment"));
}

TEST(RangeAllocator, ExhaustionIsAnErrorAndReleaseMakesRoom) {
  RangeAllocator gsi("GSI", 5, 8);  // 5, 6, 7
  EXPECT_EQ(*gsi.allocate(1, 1, "d0"), 5u);
  EXPECT_EQ(*gsi.allocate(1, 1, "d1"), 6u);
  EXPECT_EQ(*gsi.allocate(1, 1, "d2"), 7u);
  auto full = gsi.allocate(1, 1, "d3");
  ASSERT_FALSE(full);
  EXPECT_NE(full.error().message().find("no room"), std::string::npos) << full.error().message();
  EXPECT_TRUE(gsi.release(6));
  EXPECT_FALSE(gsi.release(6));
  EXPECT_EQ(*gsi.allocate(1, 1, "d3"), 6u);
  RangeAllocator lines("lines", 0, 24);
  ASSERT_TRUE(lines.reserve(8, 1, "rtc"));
  EXPECT_EQ(*lines.allocate(1, 1, "first", 5), 5u) << "from the lower bound";
  EXPECT_EQ(*lines.allocate(1, 1, "second", 7), 7u);
  EXPECT_EQ(*lines.allocate(1, 1, "third", 7), 9u) << "past the reserved line";
  RangeAllocator top("top", 0xffff'ffff'ffff'f000, 0xffff'ffff'ffff'ffff);
  EXPECT_FALSE(top.allocate(0x2000, 0x1000, "too big"));
  EXPECT_FALSE(top.allocate(1, 0x8000'0000'0000'0000, "aligned past the top"));
}

}  // namespace
}  // namespace kiln
