#include "arch/x86/mptable.h"

#include <gtest/gtest.h>

#include <cstring>

namespace kiln::x86 {
namespace {

std::uint32_t le(const std::vector<std::uint8_t>& b, std::size_t off, int n) {
  std::uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | b[off + i];
  return v;
}
std::uint8_t sum(const std::uint8_t* p, std::size_t n) {
  std::uint8_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s = static_cast<std::uint8_t>(s + p[i]);
  return s;
}

TEST(MpTable, FloatingPointerPointsAtAChecksummedTable) {
  const std::uint32_t addr = 0x9fc00;
  const auto b = build_mp_table({.cpu_count = 4}, addr);
  ASSERT_GE(b.size(), 16u + 44u);
  EXPECT_EQ(std::memcmp(b.data(), "_MP_", 4), 0);
  EXPECT_EQ(le(b, 4, 4), addr + 16);
  EXPECT_EQ(b[8], 1);  // 16 bytes
  EXPECT_EQ(b[9], 4);  // spec 1.4
  EXPECT_EQ(sum(b.data(), 16), 0);
  EXPECT_EQ(b[11], 0);  // a configuration table follows (no default configuration)

  const std::size_t t = 16;
  EXPECT_EQ(std::memcmp(b.data() + t, "PCMP", 4), 0);
  const std::uint32_t len = le(b, t + 4, 2);
  EXPECT_EQ(len, b.size() - t);
  EXPECT_EQ(sum(b.data() + t, len), 0);
  EXPECT_EQ(le(b, t + 36, 4), 0xfee00000u);
}

TEST(MpTable, ListsEveryCpuTheBusTheIoApicAndTheIsaIrqs) {
  const auto b = build_mp_table({.cpu_count = 3, .ioapic_id = 3}, 0x9fc00);
  const std::size_t t = 16;
  const std::uint32_t count = le(b, t + 34, 2);
  std::size_t off = t + 44;
  int cpus = 0, buses = 0, ioapics = 0, irqs = 0, lints = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    ASSERT_LT(off, b.size());
    switch (b[off]) {
      case 0:
        EXPECT_EQ(b[off + 1], cpus);                      // APIC id
        EXPECT_EQ(b[off + 3], cpus == 0 ? 0x3 : 0x1);     // enabled, BSP flag on the first only
        ++cpus;
        off += 20;
        break;
      case 1:
        EXPECT_EQ(std::memcmp(b.data() + off + 2, "ISA   ", 6), 0);
        ++buses;
        off += 8;
        break;
      case 2:
        EXPECT_EQ(b[off + 1], 3);
        EXPECT_EQ(le(b, off + 4, 4), 0xfec00000u);
        ++ioapics;
        off += 8;
        break;
      case 3:
        EXPECT_EQ(b[off + 5], irqs);  // source IRQ
        EXPECT_EQ(b[off + 6], 3);     // destination I/O APIC
        EXPECT_EQ(b[off + 7], irqs);  // pin
        ++irqs;
        off += 8;
        break;
      case 4:
        EXPECT_EQ(b[off + 7], lints);
        ++lints;
        off += 8;
        break;
      default: FAIL() << "unknown entry type " << int(b[off]);
    }
  }
  EXPECT_EQ(off, b.size());
  EXPECT_EQ(cpus, 3);
  EXPECT_EQ(buses, 1);
  EXPECT_EQ(ioapics, 1);
  EXPECT_EQ(irqs, 16);
  EXPECT_EQ(lints, 2);
}

TEST(MpTable, CpuCountIsClampedToEightBitApicIds) {
  const auto b = build_mp_table({.cpu_count = 300}, 0x9fc00);
  EXPECT_EQ(le(b, 16 + 34, 2), 255u + 1 + 1 + 16 + 2);
}

}  // namespace
}  // namespace kiln::x86
