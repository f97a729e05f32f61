// The coalesced-write ring is read from a page laid out as KVM lays it out; no /dev/kvm is needed.
#include "kvm/coalesced.h"

#include <linux/kvm.h>

#include <array>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

namespace kiln::kvm {
namespace {

// A page with KVM's ring in it, filled the way KVM fills it: the entry at `last`, then `last` on.
// The layout is the kernel's (C): the two indices, then the entries at offset 8.
struct RingHeader {
  std::uint32_t first, last;
};
class FakeRing {
 public:
  FakeRing() { page_.fill(std::byte{0}); }
  RingHeader* ring() { return reinterpret_cast<RingHeader*>(page_.data()); }
  kvm_coalesced_mmio& entry(std::uint32_t i) {
    return reinterpret_cast<kvm_coalesced_mmio*>(page_.data() + sizeof(RingHeader))[i];
  }
  void push(std::uint64_t addr, bool pio, std::vector<std::uint8_t> data) {
    auto& e = entry(ring()->last);
    e.phys_addr = addr;
    e.len = static_cast<std::uint32_t>(data.size());
    e.pio = pio ? 1 : 0;
    std::memcpy(e.data, data.data(), std::min<std::size_t>(data.size(), sizeof(e.data)));
    ring()->last = (ring()->last + 1) % CoalescedRing::capacity();
  }
  CoalescedRing view() { return CoalescedRing(std::span<std::byte, CoalescedRing::kPageSize>(page_)); }

 private:
  alignas(8) std::array<std::byte, CoalescedRing::kPageSize> page_;
};

struct Seen {
  std::uint64_t addr;
  bool pio;
  std::vector<std::uint8_t> data;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> drain_all(CoalescedRing& r) {
  std::vector<Seen> out;
  r.drain([&](const CoalescedWrite& w) {
    Seen s{w.addr, w.pio, {}};
    for (auto b : w.data) s.data.push_back(static_cast<std::uint8_t>(b));
    out.push_back(std::move(s));
  });
  return out;
}

TEST(CoalescedRing, HoldsAsManyEntriesAsKvmDoes) {
  // The kernel's KVM_COALESCED_MMIO_MAX: (PAGE_SIZE - 8) / 24.
  EXPECT_EQ(CoalescedRing::capacity(), 170u);
}

TEST(CoalescedRing, AnEmptyRingHandsOverNothing) {
  FakeRing f;
  auto r = f.view();
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(drain_all(r).empty());
  EXPECT_EQ(f.ring()->first, 0u);
}

TEST(CoalescedRing, WritesComeOutInTheOrderTheGuestMadeThem) {
  FakeRing f;
  f.push(0x3f8, true, {'h'});
  f.push(0x3f8, true, {'i'});
  f.push(0xd0000000, false, {1, 2, 3, 4});
  auto r = f.view();
  EXPECT_FALSE(r.empty());
  const std::vector<Seen> want = {{0x3f8, true, {'h'}}, {0x3f8, true, {'i'}}, {0xd0000000, false, {1, 2, 3, 4}}};
  EXPECT_EQ(drain_all(r), want);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(f.ring()->first, 3u) << "every slot handed back to KVM";
  EXPECT_TRUE(drain_all(r).empty()) << "nothing comes out twice";
}

TEST(CoalescedRing, TheIndicesWrapAtTheRingsEnd) {
  FakeRing f;
  const std::uint32_t start = CoalescedRing::capacity() - 2;
  f.ring()->first = f.ring()->last = start;
  for (std::uint8_t i = 0; i < 5; ++i) f.push(0x3f8, true, {i});
  auto r = f.view();
  auto got = drain_all(r);
  ASSERT_EQ(got.size(), 5u);
  for (std::uint8_t i = 0; i < 5; ++i) EXPECT_EQ(got[i].data, std::vector<std::uint8_t>{i});
  EXPECT_EQ(f.ring()->first, 3u);
}

TEST(CoalescedRing, AFullRingDrainsWhole) {
  FakeRing f;
  for (std::uint32_t i = 0; i + 1 < CoalescedRing::capacity(); ++i) f.push(0x3f8, true, {static_cast<std::uint8_t>(i)});
  auto r = f.view();
  EXPECT_EQ(r.drain([](const CoalescedWrite&) {}), CoalescedRing::capacity() - 1);
  EXPECT_TRUE(r.empty());
}

TEST(CoalescedRing, AnIndexOutOfRangeStopsTheDrainAndIsCounted) {
  FakeRing f;
  f.ring()->last = CoalescedRing::capacity() + 7;
  auto r = f.view();
  EXPECT_TRUE(drain_all(r).empty());
  EXPECT_EQ(r.bad_entries(), 1u);
  EXPECT_EQ(f.ring()->first, 0u);
}

TEST(CoalescedRing, AnEntryLongerThanEightBytesIsSkippedAndCounted) {
  FakeRing f;
  f.push(0x3f8, true, {'a'});
  f.push(0x3f8, true, {'b'});
  f.entry(0).len = 9;
  auto r = f.view();
  const std::vector<Seen> want = {{0x3f8, true, {'b'}}};
  EXPECT_EQ(drain_all(r), want);
  EXPECT_EQ(r.bad_entries(), 1u);
  EXPECT_TRUE(r.empty());
}

}  // namespace
}  // namespace kiln::kvm
