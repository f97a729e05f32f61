// The stats file's layout is parsed from bytes here; no /dev/kvm is needed.
#include "kvm/stats.h"

#include <linux/kvm.h>

#include <cstring>

#include <gtest/gtest.h>

namespace kiln::kvm {
namespace {

constexpr std::uint32_t kNameSize = 48;

struct Desc {
  std::string name;
  std::uint32_t flags = KVM_STATS_TYPE_CUMULATIVE;
  std::uint16_t size = 1;
  std::uint32_t offset = 0;  // from the values' start
};

// A stats file as KVM lays it out: header, id, descriptors, values.
std::vector<std::byte> make_file(const std::vector<Desc>& descs, std::uint32_t name_size = kNameSize) {
  kvm_stats_header h{};
  h.name_size = name_size;
  h.num_desc = static_cast<std::uint32_t>(descs.size());
  h.id_offset = sizeof h;
  h.desc_offset = h.id_offset + name_size;
  const std::size_t desc_size = kStatsDescFixedSize + name_size;
  h.data_offset = static_cast<std::uint32_t>(h.desc_offset + desc_size * descs.size());
  std::vector<std::byte> f(h.data_offset + 8 * 64);
  std::memcpy(f.data(), &h, sizeof h);
  for (std::size_t i = 0; i < descs.size(); ++i) {
    kvm_stats_desc d{};
    d.flags = descs[i].flags;
    d.size = descs[i].size;
    d.offset = descs[i].offset;
    std::byte* at = f.data() + h.desc_offset + desc_size * i;
    std::memcpy(at, &d, kStatsDescFixedSize);
    std::memcpy(at + kStatsDescFixedSize, descs[i].name.data(), std::min<std::size_t>(descs[i].name.size(), name_size));
  }
  return f;
}

StatsReader reader_of(const std::vector<std::byte>& f) {
  return [&f](std::uint64_t offset, std::span<std::byte> out) {
    if (offset > f.size() || f.size() - offset < out.size()) return false;
    std::memcpy(out.data(), f.data() + offset, out.size());
    return true;
  };
}

TEST(KvmStats, KeepsCumulativeSingleValuesWithTheirOffsets) {
  const auto f = make_file({{.name = "exits", .offset = 0},
                            {.name = "halt_wait_hist", .size = 32, .offset = 8},
                            {.name = "max_mmu_rmap_size", .flags = KVM_STATS_TYPE_PEAK, .offset = 264},
                            {.name = "insn_emulation", .offset = 272}});
  auto layout = parse_stats_layout(reader_of(f));
  ASSERT_TRUE(layout.has_value()) << layout.error().message();
  ASSERT_EQ(layout->size(), 2u);
  kvm_stats_header h{};
  std::memcpy(&h, f.data(), sizeof h);
  EXPECT_EQ((*layout)[0].name, "exits");
  EXPECT_EQ((*layout)[0].offset, h.data_offset);
  EXPECT_EQ((*layout)[1].name, "insn_emulation");
  EXPECT_EQ((*layout)[1].offset, h.data_offset + 272u);
}

TEST(KvmStats, RefusesANameThatFillsItsField) {
  const auto f = make_file({{.name = std::string(kNameSize, 'x')}});
  auto layout = parse_stats_layout(reader_of(f));
  ASSERT_FALSE(layout.has_value());
  EXPECT_NE(layout.error().message().find("does not end"), std::string::npos);
}

TEST(KvmStats, RefusesAbsurdHeaders) {
  auto f = make_file({{.name = "exits"}});
  kvm_stats_header h{};
  std::memcpy(&h, f.data(), sizeof h);

  auto bad = h;
  bad.name_size = 0;
  std::memcpy(f.data(), &bad, sizeof bad);
  EXPECT_FALSE(parse_stats_layout(reader_of(f)).has_value());

  bad = h;
  bad.num_desc = 1u << 30;  // would ask for gigabytes of descriptors
  std::memcpy(f.data(), &bad, sizeof bad);
  EXPECT_FALSE(parse_stats_layout(reader_of(f)).has_value());

  bad = h;
  bad.data_offset = bad.desc_offset;  // values on top of the descriptors
  std::memcpy(f.data(), &bad, sizeof bad);
  EXPECT_FALSE(parse_stats_layout(reader_of(f)).has_value());

  const std::vector<std::byte> short_file(4);
  EXPECT_FALSE(parse_stats_layout(reader_of(short_file)).has_value());
}

TEST(KvmStats, RefusesDescriptorsPastTheEnd) {
  auto f = make_file({{.name = "exits"}, {.name = "io_exits", .offset = 8}});
  kvm_stats_header h{};
  std::memcpy(&h, f.data(), sizeof h);
  f.resize(h.desc_offset + kStatsDescFixedSize);  // cut inside the first descriptor
  EXPECT_FALSE(parse_stats_layout(reader_of(f)).has_value());
}

TEST(KvmStats, ReadsTheValuesInOneGo) {
  auto f = make_file({{.name = "exits", .offset = 16},
                      {.name = "halt_wait_hist", .size = 32, .offset = 24},
                      {.name = "insn_emulation", .offset = 8}});
  kvm_stats_header h{};
  std::memcpy(&h, f.data(), sizeof h);
  const std::uint64_t exits = 1234567, insns = 0x1122334455667788;
  std::memcpy(f.data() + h.data_offset + 16, &exits, 8);
  std::memcpy(f.data() + h.data_offset + 8, &insns, 8);
  auto layout = parse_stats_layout(reader_of(f));
  ASSERT_TRUE(layout.has_value()) << layout.error().message();
  int reads = 0;
  std::uint64_t at = 0, size = 0;
  const StatsReader counting = [&](std::uint64_t offset, std::span<std::byte> out) {
    ++reads;
    at = offset;
    size = out.size();
    return reader_of(f)(offset, out);
  };
  auto now = read_counters(counting, *layout);
  ASSERT_TRUE(now.has_value()) << now.error().message();
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(at, h.data_offset + 8u);  // from the first kept value to the end of the last
  EXPECT_EQ(size, 16u);
  ASSERT_EQ(now->size(), 2u);
  EXPECT_EQ((*now)[0].name, "exits");
  EXPECT_EQ((*now)[0].value, exits);
  EXPECT_EQ((*now)[1].name, "insn_emulation");
  EXPECT_EQ((*now)[1].value, insns);

  const std::vector<std::byte> gone;  // the file cannot be read any more
  EXPECT_FALSE(read_counters(reader_of(gone), *layout).has_value());
  EXPECT_TRUE(read_counters(reader_of(gone), {}).has_value());  // nothing to read
}

TEST(KvmStats, RefusesValuesSpreadTooFar) {
  // Two counters 4 GiB apart would make one read of gigabytes.
  const auto f = make_file({{.name = "exits", .offset = 0}, {.name = "io_exits", .offset = 0xfffffff0}});
  auto layout = parse_stats_layout(reader_of(f));
  ASSERT_FALSE(layout.has_value());
  EXPECT_NE(layout.error().message().find("spread"), std::string::npos) << layout.error().message();
}

TEST(KvmStats, AddsCountersByName) {
  std::vector<Counter> sum;
  add_counters(sum, {{"exits", 10}, {"io_exits", 3}});
  add_counters(sum, {{"io_exits", 4}, {"exits", 5}, {"halt_exits", 1}});
  ASSERT_EQ(sum.size(), 3u);
  EXPECT_EQ(sum[0].name, "exits");
  EXPECT_EQ(sum[0].value, 15u);
  EXPECT_EQ(sum[1].value, 7u);
  EXPECT_EQ(sum[2].name, "halt_exits");
  EXPECT_EQ(sum[2].value, 1u);
}

}  // namespace
}  // namespace kiln::kvm
