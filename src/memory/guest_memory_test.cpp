#include "memory/guest_memory.h"

#include <unistd.h>

#include <array>
#include <cstring>
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

TEST(GuestMemory, RingIndicesLoadAndStoreAtomicallyInBoundsAndAligned) {
  auto mem = make(1 << 20);
  ASSERT_TRUE(mem.store_release<std::uint16_t>(GuestAddress{0x2002}, 0xbeef));
  EXPECT_EQ(*mem.load_acquire<std::uint16_t>(GuestAddress{0x2002}), 0xbeef);
  EXPECT_EQ(*mem.read_obj<std::uint16_t>(GuestAddress{0x2002}), 0xbeef) << "the same bytes as a copy sees";
  ASSERT_TRUE(mem.store_release<std::uint64_t>(GuestAddress{0x2008}, 0x0102030405060708ull));
  EXPECT_EQ(*mem.load_acquire<std::uint64_t>(GuestAddress{0x2008}), 0x0102030405060708ull);
  EXPECT_FALSE(mem.load_acquire<std::uint16_t>(GuestAddress{0x2003})) << "misaligned";
  EXPECT_FALSE(mem.store_release<std::uint32_t>(GuestAddress{0x2002}, 1)) << "misaligned";
  EXPECT_FALSE(mem.load_acquire<std::uint32_t>(GuestAddress{1 << 20})) << "past the end";
  EXPECT_FALSE(mem.load_acquire<std::uint64_t>(GuestAddress{~0ull - 7})) << "at the top of the address space";
}

GuestMemory two_adjacent_regions_and_a_hole() {
  // [0, 64 KiB) and [64 KiB, 128 KiB) touch; [192 KiB, 256 KiB) lies past a hole.
  const RegionLayout l[] = {{0, 0x10000}, {0x10000, 0x10000}, {0x30000, 0x10000}};
  auto m = GuestMemory::create(l);
  EXPECT_TRUE(m);
  return std::move(*m);
}

TEST(GuestMemory, IovecsCoverARangeInOneRegionOrAcrossTwoAdjacentOnes) {
  auto mem = two_adjacent_regions_and_a_hole();
  auto one = mem.iovecs(GuestAddress{0x1000}, 0x2000, false);
  ASSERT_TRUE(one);
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].iov_base, mem.regions()[0].mapping.data() + 0x1000);
  EXPECT_EQ((*one)[0].iov_len, 0x2000u);
  auto across = mem.iovecs(GuestAddress{0xf000}, 0x3000, false);
  ASSERT_TRUE(across);
  ASSERT_EQ(across->size(), 2u);
  EXPECT_EQ((*across)[0].iov_base, mem.regions()[0].mapping.data() + 0xf000);
  EXPECT_EQ((*across)[0].iov_len, 0x1000u);
  EXPECT_EQ((*across)[1].iov_base, mem.regions()[1].mapping.data());
  EXPECT_EQ((*across)[1].iov_len, 0x2000u);
  // What a device writes through them is what the guest reads.
  std::memset((*across)[1].iov_base, 0x5a, 1);
  EXPECT_EQ(*mem.read_obj<std::uint8_t>(GuestAddress{0x10000}), 0x5a);
  EXPECT_TRUE(mem.iovecs(GuestAddress{0x1000}, 0, false)->empty());
}

TEST(GuestMemory, IovecsOverAHoleOrPastTheEndOrWrappingAreErrors) {
  auto mem = two_adjacent_regions_and_a_hole();
  EXPECT_FALSE(mem.iovecs(GuestAddress{0x1f000}, 0x2000, false)) << "into the hole at 128 KiB";
  EXPECT_FALSE(mem.iovecs(GuestAddress{0x20000}, 1, false)) << "in the hole";
  EXPECT_FALSE(mem.iovecs(GuestAddress{0x3f000}, 0x1001, false)) << "past the end";
  EXPECT_FALSE(mem.iovecs(GuestAddress{0x1000}, ~0ull, false)) << "wraps around";
  EXPECT_FALSE(mem.iovecs(GuestAddress{~0ull}, 2, false)) << "wraps around";
}

TEST(GuestMemory, MemfdBackedRegionsShareTheirBytesWithTheFile) {
  const RegionLayout l[] = {{0, 0x10000}, {0x100000, 0x10000}};
  auto mem = GuestMemory::create(l, GuestMemory::Backing::kMemfd);
  ASSERT_TRUE(mem) << mem.error().message();
  ASSERT_TRUE(mem->regions()[1].memfd);
  ASSERT_TRUE(mem->write_obj<std::uint32_t>(GuestAddress{0x100010}, 0xfeedf00d));
  std::uint32_t v = 0;
  ASSERT_EQ(::pread(mem->regions()[1].memfd.get(), &v, sizeof(v), 0x10), 4);
  EXPECT_EQ(v, 0xfeedf00du);
  v = 0x600dcafe;
  ASSERT_EQ(::pwrite(mem->regions()[0].memfd.get(), &v, sizeof(v), 0x20), 4);
  EXPECT_EQ(*mem->read_obj<std::uint32_t>(GuestAddress{0x20}), 0x600dcafeu);
  EXPECT_FALSE(make(1 << 20).regions()[0].memfd) << "anonymous memory has no file";
}

TEST(GuestMemory, DirtyPagesAreThePagesKilnWroteSinceTheLastLook) {
  auto mem = two_adjacent_regions_and_a_hole();
  EXPECT_TRUE(mem.take_dirty_bitmap(0).empty()) << "not tracked yet";
  ASSERT_TRUE(mem.write_obj<std::uint8_t>(GuestAddress{0x3000}, 1));  // before tracking: not recorded
  mem.track_dirty_pages();
  ASSERT_TRUE(mem.tracking_dirty_pages());
  ASSERT_TRUE(mem.write_obj<std::uint16_t>(GuestAddress{0x1fff}, 1));  // pages 1 and 2
  ASSERT_TRUE(mem.fill(GuestAddress{0x5000}, std::byte{0}, 0x1001));  // pages 5 and 6
  ASSERT_TRUE(mem.store_release<std::uint16_t>(GuestAddress{0x10002}, 7));  // region 1, page 0
  ASSERT_TRUE(mem.iovecs(GuestAddress{0xf000}, 0x1001, true));  // region 0 page 15, region 1 page 0
  ASSERT_TRUE(mem.iovecs(GuestAddress{0x8000}, 0x1000, false));  // read only: not dirty
  (void)mem.read_obj<std::uint64_t>(GuestAddress{0x9000});
  auto b0 = mem.take_dirty_bitmap(0);
  ASSERT_EQ(b0.size(), 1u);
  EXPECT_EQ(b0[0], (1ull << 1) | (1ull << 2) | (1ull << 5) | (1ull << 6) | (1ull << 15));
  EXPECT_EQ(mem.take_dirty_bitmap(1), std::vector<std::uint64_t>{1});
  EXPECT_EQ(mem.take_dirty_bitmap(0), std::vector<std::uint64_t>{0}) << "taking the bitmap clears it";
  EXPECT_TRUE(mem.take_dirty_bitmap(7).empty()) << "no such region";
}

}  // namespace
}  // namespace kiln
