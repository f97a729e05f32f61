#include "arch/x86/page_walk.h"

#include <gtest/gtest.h>

#include "arch/x86/boot_cpu.h"
#include "arch/x86/layout.h"

namespace kiln::x86 {
namespace {

GuestMemory make_mem() {
  const RegionLayout l[] = {{0, 16 << 20}};
  return std::move(*GuestMemory::create(l));
}

TEST(PageWalk, NoPagingIsIdentityTruncatedTo32Bits) {
  auto mem = make_mem();
  SpecialRegisters s;
  s.cr0 = kCr0Pe;
  EXPECT_EQ(*translate(mem, s, 0x1'0000'1234ull), 0x1234u);
}

TEST(PageWalk, BootIdentityMapWith2MPages) {
  auto mem = make_mem();
  auto st = setup_boot_cpu(mem, EntryMode::kLinux64, 0x100200, kZeroPageAddr);
  ASSERT_TRUE(st);
  EXPECT_EQ(*translate(mem, st->sregs, 0x12'3456), 0x12'3456u);
  EXPECT_EQ(*translate(mem, st->sregs, 0xfee0'0000), 0xfee0'0000u);
  EXPECT_FALSE(translate(mem, st->sregs, 0x1'0000'0000ull)) << "only 4 GiB is mapped";
}

TEST(PageWalk, FourLevelWith4KPagesAndHighAddress) {
  auto mem = make_mem();
  SpecialRegisters s;
  s.cr0 = kCr0Pe | kCr0Pg;
  s.cr4 = kCr4Pae;
  s.efer = kEferLma | kEferLme;
  s.cr3 = 0x10000;
  const std::uint64_t va = 0xffff'ffff'8100'3abcull;  // kernel text-like address
  const std::uint64_t i4 = (va >> 39) & 0x1ff, i3 = (va >> 30) & 0x1ff, i2 = (va >> 21) & 0x1ff,
                      i1 = (va >> 12) & 0x1ff;
  ASSERT_TRUE(mem.write_obj<std::uint64_t>(GuestAddress{0x10000 + i4 * 8}, 0x11000 | 3));
  ASSERT_TRUE(mem.write_obj<std::uint64_t>(GuestAddress{0x11000 + i3 * 8}, 0x12000 | 3));
  ASSERT_TRUE(mem.write_obj<std::uint64_t>(GuestAddress{0x12000 + i2 * 8}, 0x13000 | 3));
  ASSERT_TRUE(mem.write_obj<std::uint64_t>(GuestAddress{0x13000 + i1 * 8}, 0x8000'0000'0045'6000ull | 3));  // NX set
  auto pa = translate(mem, s, va);
  ASSERT_TRUE(pa) << pa.error().message();
  EXPECT_EQ(*pa, 0x45'6abcu);
  EXPECT_FALSE(translate(mem, s, va + 0x1000)) << "next PTE is not present";
}

TEST(PageWalk, ReadLinearStopsAtUnmappedPage) {
  auto mem = make_mem();
  SpecialRegisters s;
  s.cr0 = kCr0Pe | kCr0Pg;
  s.cr4 = kCr4Pae;
  s.efer = kEferLma;
  s.cr3 = 0x10000;
  ASSERT_TRUE(mem.write_obj<std::uint64_t>(GuestAddress{0x10000}, 0x11000 | 3));
  ASSERT_TRUE(mem.write_obj<std::uint64_t>(GuestAddress{0x11000}, 0x12000 | 3));
  ASSERT_TRUE(mem.write_obj<std::uint64_t>(GuestAddress{0x12000}, 0x13000 | 3));
  ASSERT_TRUE(mem.write_obj<std::uint64_t>(GuestAddress{0x13000 + 8 * 8}, 0x20000 | 3));  // va 0x8000 only
  ASSERT_TRUE(mem.write_obj<std::uint32_t>(GuestAddress{0x20ffe}, 0xccddeeff));
  std::array<std::byte, 15> buf{};
  EXPECT_EQ(read_linear(mem, s, 0x8ffe, buf), 2u);
  EXPECT_EQ(buf[0], std::byte{0xff});
  EXPECT_EQ(buf[1], std::byte{0xee});
}

TEST(PageWalk, Legacy32BitWith4MPage) {
  auto mem = make_mem();
  SpecialRegisters s;
  s.cr0 = kCr0Pe | kCr0Pg;
  s.cr4 = kCr4Pse;
  s.cr3 = 0x10000;
  ASSERT_TRUE(mem.write_obj<std::uint32_t>(GuestAddress{0x10000 + (0xc0000000u >> 22) * 4}, 0x00400000u | 0x83));
  EXPECT_EQ(*translate(mem, s, 0xc012'3456ull), 0x0052'3456u);
}

TEST(PageWalk, PaeThreeLevel) {
  auto mem = make_mem();
  SpecialRegisters s;
  s.cr0 = kCr0Pe | kCr0Pg;
  s.cr4 = kCr4Pae;
  s.cr3 = 0x10020;  // 32-byte aligned PDPT
  ASSERT_TRUE(mem.write_obj<std::uint64_t>(GuestAddress{0x10020 + 3 * 8}, 0x11000 | 1));
  ASSERT_TRUE(mem.write_obj<std::uint64_t>(GuestAddress{0x11000 + 1 * 8}, 0x12000 | 3));
  ASSERT_TRUE(mem.write_obj<std::uint64_t>(GuestAddress{0x12000 + 5 * 8}, 0x77000 | 3));
  EXPECT_EQ(*translate(mem, s, 0xc020'5010ull), 0x77010u);
}

}  // namespace
}  // namespace kiln::x86
