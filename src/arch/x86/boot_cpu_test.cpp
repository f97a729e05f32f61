#include "arch/x86/boot_cpu.h"

#include <gtest/gtest.h>

#include "arch/x86/layout.h"

namespace kiln::x86 {
namespace {

GuestMemory make_mem() {
  const RegionLayout l[] = {{0, 2 << 20}};
  return std::move(*GuestMemory::create(l));
}

TEST(GdtEntry, EncodesAndDecodesFlatSegments) {
  const std::uint64_t code64 = gdt_entry(0xa09b, 0, 0xfffff);
  EXPECT_EQ(code64, 0x00af9b000000ffffull);
  auto s = segment_from_gdt_entry(code64, 0x10);
  EXPECT_EQ(s.l, 1);
  EXPECT_EQ(s.db, 0);
  EXPECT_EQ(s.g, 1);
  EXPECT_EQ(s.limit, 0xffffffffu);
  EXPECT_EQ(s.type, 0xb);
  EXPECT_EQ(s.present, 1);
  EXPECT_EQ(s.s, 1);
  auto d = segment_from_gdt_entry(gdt_entry(0xc093, 0x12345678, 0xfffff), 0x18);
  EXPECT_EQ(d.base, 0x12345678u);
  EXPECT_EQ(d.db, 1);
}

TEST(BootCpu, Linux64EntersLongModeWithBootParamsInRsi) {
  auto mem = make_mem();
  auto st = setup_boot_cpu(mem, EntryMode::kLinux64, 0x100200, kZeroPageAddr);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->regs.rip, 0x100200u);
  EXPECT_EQ(st->regs.rsi, kZeroPageAddr);
  EXPECT_NE(st->sregs.efer & kEferLma, 0u);
  EXPECT_NE(st->sregs.cr0 & kCr0Pg, 0u);
  EXPECT_NE(st->sregs.cr4 & kCr4Pae, 0u);
  EXPECT_EQ(st->sregs.cs.selector, kBootCodeSelector);
  EXPECT_EQ(st->sregs.ds.selector, kBootDataSelector);
  EXPECT_EQ(st->sregs.cs.l, 1);
}

TEST(CpuState, ResetStateIsRecognisedAndBootStatesAreNot) {
  Registers r;
  SpecialRegisters s;
  r.rip = 0xfff0;
  s.cs.selector = 0xf000;
  s.cs.base = 0xffff0000;
  s.cr0 = 0x60000010;
  EXPECT_TRUE(is_reset_state(r, s));
  s.cr0 |= kCr0Pe;
  EXPECT_FALSE(is_reset_state(r, s));
  s.cr0 = 0x10;
  r.rip = 0xfff1;
  EXPECT_FALSE(is_reset_state(r, s));

  auto mem = make_mem();
  for (auto mode : {EntryMode::kLinux64, EntryMode::kPvh32}) {
    auto st = setup_boot_cpu(mem, mode, 0x100200, kZeroPageAddr);
    ASSERT_TRUE(st);
    EXPECT_FALSE(is_reset_state(st->regs, st->sregs));
  }
}

}  // namespace
}  // namespace kiln::x86

namespace kiln::x86 {
namespace {

TEST(BootCpu, PvhStartsIn32BitProtectedModeWithStartInfoInRbx) {
  auto mem = make_mem();
  auto st = setup_boot_cpu(mem, EntryMode::kPvh32, 0x1000000, kPvhStartInfoAddr);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->regs.rbx, kPvhStartInfoAddr);
  EXPECT_EQ(st->sregs.cr0 & kCr0Pg, 0u);
  EXPECT_NE(st->sregs.cr0 & kCr0Pe, 0u);
  EXPECT_EQ(st->sregs.efer, 0u);
  EXPECT_EQ(st->sregs.cs.db, 1);
  EXPECT_EQ(st->sregs.cs.l, 0);
  EXPECT_EQ(st->sregs.tr.type, 0xb) << "PVH wants a busy 32-bit TSS";
  EXPECT_EQ(st->sregs.tr.limit, 0x67u);
}

TEST(BootCpu, GdtIsWrittenWhereGdtrPoints) {
  auto mem = make_mem();
  auto st = setup_boot_cpu(mem, EntryMode::kLinux64, 0, 0);
  ASSERT_TRUE(st);
  auto code = mem.read_obj<std::uint64_t>(GuestAddress{st->sregs.gdt.base + kBootCodeSelector});
  EXPECT_EQ(*code, gdt_entry(0xa09b, 0, 0xfffff));
  EXPECT_EQ(st->sregs.gdt.limit, 5 * 8 - 1);
}

}  // namespace
}  // namespace kiln::x86
