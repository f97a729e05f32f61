#include "arch/x86/cpuid.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace kiln::x86 {
namespace {

std::vector<CpuidEntry> sample_table() {
  return {
      {0x0, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69},  // GenuineIntel, max leaf 0xd
      {0x1, 0, 0, 0x806f8, 0x00010800, 0xfffa3223 | kLeaf1EcxCx16, 0x0f8bfbff},
      {0x4, 0, kCpuidFlagSignificantIndex, 0x121, 0, 0, 0},  // L1 data cache
      {0x4, 3, kCpuidFlagSignificantIndex, 0x163, 0, 0, 0},  // L3
      {0xa, 0, 0, 0x7300805, 0, 0, 0x603},
      {0xb, 0, kCpuidFlagSignificantIndex, 1, 1, 0x100, 7},
      {0xb, 1, kCpuidFlagSignificantIndex, 4, 16, 0x201, 7},
      {0xb, 2, kCpuidFlagSignificantIndex, 0, 0, 2, 7},
      {0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d},
      {0x40000001, 0, 0, 0x01ffffff, 0, 0, 0},
  };
}

TEST(Cpuid, Leaf1CarriesApicIdAndCount) {
  auto t = sample_table();
  apply_cpuid_fixups(t, {.vcpu_id = 3, .vcpu_count = 4});
  auto* l1 = find_cpuid(t, 1);
  EXPECT_EQ(l1->ebx >> 24, 3u);
  EXPECT_EQ((l1->ebx >> 16) & 0xff, 4u);
  EXPECT_EQ(l1->ebx & 0xffff, 0x0800u);  // CLFLUSH size kept
  EXPECT_NE(l1->ecx & kLeaf1EcxHypervisor, 0u);
  EXPECT_NE(l1->edx & kLeaf1EdxHtt, 0u);
  EXPECT_NE(l1->ecx & kLeaf1EcxCx16, 0u) << "CX16 stays unless the host cannot run it";
}

// KVM (before its commit 9be4ec35d668, Dec. 2024) leaves the TSC-deadline bit out of its
// supported CPUID although it emulates the mode: kiln sets it when KVM has
// KVM_CAP_TSC_DEADLINE_TIMER.
TEST(Cpuid, TscDeadlineBitSetWhenKvmEmulatesIt) {
  auto t = sample_table();
  find_cpuid(t, 1)->ecx &= ~kLeaf1EcxTscDeadline;  // as KVM_GET_SUPPORTED_CPUID gives it
  auto without = t;
  apply_cpuid_fixups(without, {});
  EXPECT_EQ(find_cpuid(without, 1)->ecx & kLeaf1EcxTscDeadline, 0u);
  apply_cpuid_fixups(t, {.tsc_deadline = true});
  EXPECT_NE(find_cpuid(t, 1)->ecx & kLeaf1EcxTscDeadline, 0u);
  EXPECT_EQ(find_cpuid(t, 1)->ecx & ~kLeaf1EcxTscDeadline, find_cpuid(without, 1)->ecx & ~kLeaf1EcxTscDeadline)
      << "no other bit moves";
}

TEST(Cpuid, SingleCpuHasNoHtt) {
  auto t = sample_table();
  apply_cpuid_fixups(t, {.vcpu_id = 0, .vcpu_count = 1});
  EXPECT_EQ(find_cpuid(t, 1)->edx & kLeaf1EdxHtt, 0u);
}

TEST(Cpuid, HidesCx16WhenAsked) {
  auto t = sample_table();
  apply_cpuid_fixups(t, {.hide_cx16 = true});
  EXPECT_EQ(find_cpuid(t, 1)->ecx & kLeaf1EcxCx16, 0u);
}

TEST(Cpuid, TopologyLeafDescribesOneCorePerVcpu) {
  auto t = sample_table();
  apply_cpuid_fixups(t, {.vcpu_id = 5, .vcpu_count = 6});
  auto* smt = find_cpuid(t, 0xb, 0);
  auto* core = find_cpuid(t, 0xb, 1);
  auto* none = find_cpuid(t, 0xb, 2);
  EXPECT_EQ(smt->ebx, 1u);
  EXPECT_EQ(smt->edx, 5u);
  EXPECT_EQ(core->eax, 3u);  // 6 ids need 3 bits
  EXPECT_EQ(core->ebx, 6u);
  EXPECT_EQ((core->ecx >> 8) & 0xff, 2u);
  EXPECT_EQ((none->ecx >> 8) & 0xff, 0u);
  EXPECT_EQ(none->ecx & 0xff, 2u);
}

TEST(Cpuid, CacheLeafCountsCores) {
  auto t = sample_table();
  apply_cpuid_fixups(t, {.vcpu_count = 4});
  EXPECT_EQ(find_cpuid(t, 4, 0)->eax >> 26, 3u);
  EXPECT_EQ((find_cpuid(t, 4, 0)->eax >> 14) & 0xfff, 0u);  // L1 per core
  EXPECT_EQ((find_cpuid(t, 4, 3)->eax >> 14) & 0xfff, 3u);  // L3 shared by all
}

TEST(Cpuid, HypercallFeaturesHiddenOnlyWhenAsked) {
  auto t = sample_table();
  apply_cpuid_fixups(t, {});
  EXPECT_EQ(find_cpuid(t, 0x40000001)->eax & kKvmFeatureHypercallMask, kKvmFeatureHypercallMask);
  auto h = sample_table();
  apply_cpuid_fixups(h, {.hide_pv_hypercalls = true});
  EXPECT_EQ(find_cpuid(h, 0x40000001)->eax & kKvmFeatureHypercallMask, 0u);
  EXPECT_NE(find_cpuid(h, 0x40000001)->eax & 1u, 0u) << "kvmclock stays";
}

TEST(Cpuid, NoPmu) {
  auto t = sample_table();
  apply_cpuid_fixups(t, {});
  EXPECT_EQ(find_cpuid(t, 0xa)->eax, 0u);
}

TEST(Cpuid, TscFrequencyThroughLeaf15) {
  auto t = sample_table();
  apply_cpuid_fixups(t, {.tsc_khz = 2'500'000});
  EXPECT_GE(find_cpuid(t, 0)->eax, 0x15u);
  auto* l15 = find_cpuid(t, 0x15);
  ASSERT_NE(l15, nullptr);
  // tsc = crystal * ebx / eax
  EXPECT_EQ(static_cast<std::uint64_t>(l15->ecx) / 1000 * l15->ebx / l15->eax, 2'500'000u);
}

TEST(Cpuid, Vendor) {
  EXPECT_EQ(cpu_vendor(sample_table()), CpuVendor::kIntel);
  std::vector<CpuidEntry> amd = {{0, 0, 0, 0x10, 0x68747541, 0x444d4163, 0x69746e65}};
  EXPECT_EQ(cpu_vendor(amd), CpuVendor::kAmd);
  EXPECT_EQ(cpu_vendor({}), CpuVendor::kOther);
}

TEST(Cpuid, NoTscLeafOnAmd) {
  std::vector<CpuidEntry> amd = {{0, 0, 0, 0x10, 0x68747541, 0x444d4163, 0x69746e65}};
  apply_cpuid_fixups(amd, {.tsc_khz = 2'000'000});
  EXPECT_EQ(find_cpuid(amd, 0x15), nullptr) << "Linux reads leaf 0x15 on Intel only";
}

TEST(Cpuid, NoTscLeafWithoutFrequency) {
  auto t = sample_table();
  apply_cpuid_fixups(t, {});
  EXPECT_EQ(find_cpuid(t, 0x15), nullptr);
}

TEST(Cpuid, AmdTopologyIsOnePackageOfCores) {
  std::vector<CpuidEntry> t = {
      {0x0, 0, 0, 0x10, 0x68747541, 0x444d4163, 0x69746e65},  // AuthenticAMD
      {0x80000001, 0, 0, 0, 0, 0x00400393, 0},
      {0x80000008, 0, 0, 0x3030, 0, 0, 0},
      {0x8000001d, 0, kCpuidFlagSignificantIndex, 0x121, 0, 0, 0},  // L1d
      {0x8000001d, 3, kCpuidFlagSignificantIndex, 0x163, 0, 0, 0},  // L3
      {0x8000001e, 0, 0, 0, 0x100, 0x300, 0},
  };
  apply_cpuid_fixups(t, {.vcpu_id = 5, .vcpu_count = 6});
  EXPECT_EQ(find_cpuid(t, 0x80000008)->ecx & 0xff, 5u);          // NC: six cores
  EXPECT_EQ((find_cpuid(t, 0x80000008)->ecx >> 12) & 0xf, 3u);   // 3 APIC-id bits for the core
  EXPECT_NE(find_cpuid(t, 0x80000001)->ecx & kExt1EcxCmpLegacy, 0u);
  EXPECT_EQ((find_cpuid(t, 0x8000001d, 0)->eax >> 14) & 0xfff, 0u);
  EXPECT_EQ((find_cpuid(t, 0x8000001d, 3)->eax >> 14) & 0xfff, 5u);  // L3 shared by all six
  EXPECT_EQ(find_cpuid(t, 0x8000001e)->eax, 5u);
  EXPECT_EQ(find_cpuid(t, 0x8000001e)->ebx & 0xffff, 5u);  // one thread per core, core 5
  EXPECT_EQ(find_cpuid(t, 0x8000001e)->ecx, 0u);
}

TEST(Cpuid, TopologyLeafGetsItsCoreLevelEvenWhenKvmListsOnlyOneSubleaf) {
  std::vector<CpuidEntry> t = {{0xb, 0, kCpuidFlagSignificantIndex, 0, 1, 0x100, 0}};
  apply_cpuid_fixups(t, {.vcpu_id = 1, .vcpu_count = 2});
  const auto* core = find_cpuid(t, 0xb, 1);
  ASSERT_NE(core, nullptr);
  EXPECT_EQ(core->eax, 1u);            // one bit of core id below the package id
  EXPECT_EQ(core->ebx, 2u);
  EXPECT_EQ((core->ecx >> 8) & 0xff, 2u);  // core level
  EXPECT_EQ(core->edx, 1u);            // x2APIC id
  const auto* end = find_cpuid(t, 0xb, 2);
  ASSERT_NE(end, nullptr);
  EXPECT_EQ((end->ecx >> 8) & 0xff, 0u);
  EXPECT_EQ(std::count_if(t.begin(), t.end(), [](const CpuidEntry& e) { return e.function == 0xb; }), 3);
}

TEST(Cpuid, AmdLeavesUntouchedOnIntel) {
  auto t = sample_table();
  t.push_back({0x80000008, 0, 0, 0x3030, 0, 0, 0});
  apply_cpuid_fixups(t, {.vcpu_id = 1, .vcpu_count = 2});
  EXPECT_EQ(find_cpuid(t, 0x80000008)->ecx, 0u);
}

}  // namespace
}  // namespace kiln::x86
