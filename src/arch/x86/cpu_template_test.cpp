#include "arch/x86/cpu_template.h"

#include <gtest/gtest.h>

namespace kiln::x86 {
namespace {

TEST(CpuTemplate, BitmapsAreMostSignificantFirstWithXKeeping) {
  auto b = parse_bitmap("0b10x", 32);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->mask, 0b110u);
  EXPECT_EQ(b->value, 0b100u);
  EXPECT_EQ(b->apply(0b011), 0b101u);
  EXPECT_EQ(parse_bitmap("0b" + std::string(64, '1'), 64)->value, ~0ull);
  EXPECT_FALSE(parse_bitmap("10x", 32));
  EXPECT_FALSE(parse_bitmap("0b", 32));
  EXPECT_FALSE(parse_bitmap("0b102", 32));
  const auto too_long = parse_bitmap("0b" + std::string(33, 'x'), 32);
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().message().find("33 bits"), std::string::npos);
}

std::vector<CpuidEntry> table() {
  return {{0x1, 0, 0, 0x800f12, 0, 0xfffa3203 /* sse4.2, popcnt, x2apic, ... */, 0x178bfbff},
          {0x7, 0, kCpuidFlagSignificantIndex, 0, 0x219c91a9, 0x00400004, 0},
          {0x80000001, 0, 0, 0, 0, 0x75c237ff, 0x2fd3fbff}};
}

TEST(CpuTemplate, HostChangesNothing) {
  auto t = table();
  const auto supported = table();
  EXPECT_TRUE(apply_cpuid_template(t, builtin_cpu_template(BuiltinCpuTemplate::kHost), {&supported, nullptr}).empty());
  EXPECT_EQ(t[0].ecx, supported[0].ecx);
}

TEST(CpuTemplate, MinimalKeepsTheBaselineAndClearsTheRest) {
  auto t = table();
  const auto supported = table();
  const auto report = apply_cpuid_template(t, builtin_cpu_template(BuiltinCpuTemplate::kMinimal), {&supported, nullptr});
  EXPECT_TRUE(report.empty());
  EXPECT_EQ(t[0].ecx, 0xfffa3203u & ((1u << 21) | (1u << 24) | (1u << 31)));
  EXPECT_EQ(t[0].edx & (1u << 26), 1u << 26);  // SSE2 stays
  EXPECT_EQ(t[1].ebx, 0u);
  EXPECT_EQ(t[2].edx & (1u << 29), 1u << 29);  // long mode stays
  EXPECT_EQ(t[2].edx & (1u << 27), 0u);        // RDTSCP goes
}

TEST(CpuTemplate, FeaturesKvmCannotOfferAreLeftClearAndReported) {
  auto t = table();
  auto supported = table();
  supported[1].ebx &= ~(1u << 5);  // no AVX2 here
  t[1].ebx &= ~(1u << 5);
  CpuTemplate custom{"custom", {{0x7, 0, kCpuidFlagSignificantIndex, CpuidRegister::kEbx, *parse_bitmap("0b1xxxxx", 32)}}, {}};
  const auto report = apply_cpuid_template(t, custom, {&supported, nullptr});
  ASSERT_EQ(report.size(), 1u);
  EXPECT_NE(report[0].find("leaf 0x7 subleaf 0 ebx bits 5:"), std::string::npos) << report[0];
  EXPECT_EQ(t[1].ebx & (1u << 5), 0u);
}

TEST(CpuTemplate, BitsANestedPvmHostForcesAreReportedWithTheirClearcpuidNumber) {
  auto t = table();
  const auto supported = table();
  const auto forced = table();  // the host's own CPUID shows the same bits
  const auto report = apply_cpuid_template(t, builtin_cpu_template(BuiltinCpuTemplate::kMinimal), {&supported, &forced});
  ASSERT_FALSE(report.empty());
  bool popcnt = false;
  for (const auto& line : report)
    popcnt |= line.find("leaf 0x1 subleaf 0 ecx bits ") != std::string::npos && line.find(",23,") != std::string::npos &&
              line.find(",151,") != std::string::npos;
  EXPECT_TRUE(popcnt) << report.front();
  // Extended leaf 0x80000001 is not forced: nothing reported for it.
  for (const auto& line : report) EXPECT_EQ(line.find("0x80000001"), std::string::npos) << line;
}

TEST(CpuTemplate, ModifierForAMissingLeafAddsIt) {
  std::vector<CpuidEntry> t;
  const std::vector<CpuidEntry> supported;
  CpuTemplate custom{"custom", {{0x40000010, 0, 0, CpuidRegister::kEax, *parse_bitmap("0b101", 32)}}, {}};
  EXPECT_TRUE(apply_cpuid_template(t, custom, {&supported, nullptr}).empty());
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].eax, 5u);
}

TEST(CpuTemplate, LinuxFeatureNumbers) {
  EXPECT_EQ(linux_feature_number(0x1, 0, CpuidRegister::kEcx, 23), 151u);  // popcnt
  EXPECT_EQ(linux_feature_number(0x7, 0, CpuidRegister::kEbx, 20), 308u);  // smap
  EXPECT_EQ(linux_feature_number(0x2, 0, CpuidRegister::kEax, 0), std::nullopt);
}

}  // namespace
}  // namespace kiln::x86
