#include "arch/x86/boot_cpu.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "arch/x86/msrs.h"

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

TEST(BootMsrs, HwcrOnlyOnAmdAndLast) {
  const auto intel = boot_msrs(false);
  const auto amd = boot_msrs(true);
  ASSERT_EQ(amd.size(), intel.size() + 1);
  EXPECT_EQ(amd.back(), (std::pair<std::uint32_t, std::uint64_t>{msr::kAmdHwcr, msr::kAmdHwcrTscFreqSel}));
  for (const auto& [index, value] : intel) EXPECT_NE(index, msr::kAmdHwcr);
  EXPECT_NE(std::find(intel.begin(), intel.end(), std::pair<std::uint32_t, std::uint64_t>{msr::kMiscEnable, msr::kMiscEnableFastString}),
            intel.end());
}

TEST(FirmwareLint, Lint0IsExtIntAndLint1IsNmiTheRestKept) {
  std::array<std::byte, 1024> regs{};
  const std::uint32_t masked_fixed = 0x1'0000 | 0x30;  // masked, vector 0x30, fixed delivery
  std::memcpy(regs.data() + 0x350, &masked_fixed, 4);
  std::memcpy(regs.data() + 0x360, &masked_fixed, 4);
  set_firmware_lint(regs);
  std::uint32_t lint0 = 0, lint1 = 0;
  std::memcpy(&lint0, regs.data() + 0x350, 4);
  std::memcpy(&lint1, regs.data() + 0x360, 4);
  EXPECT_EQ(lint0, 0x1'0000u | 0x30 | (7u << 8));
  EXPECT_EQ(lint1, 0x1'0000u | 0x30 | (4u << 8));
  set_firmware_lint(std::span(regs).first(0x100));  // too short: left alone, no overrun
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
