#include "virtio/queue/queue.h"

#include <gtest/gtest.h>

#include <limits>

#include "virtio/queue/mock_driver.h"

namespace kiln::virtio {
namespace {

// Two regions of RAM with a hole between them, as below and above a PC's MMIO hole.
constexpr std::uint64_t kLowEnd = 0x100000;
constexpr std::uint64_t kHighStart = 0x200000;
constexpr std::uint64_t kHighEnd = 0x300000;
constexpr std::uint64_t kQueueBase = 0x10000;
constexpr std::uint64_t kData = 0x80000;

GuestMemory make_memory() {
  const RegionLayout layout[] = {{0, kLowEnd}, {kHighStart, kHighEnd - kHighStart}};
  auto m = GuestMemory::create(layout);
  EXPECT_TRUE(m.has_value());
  return std::move(*m);
}

class QueueTest : public ::testing::Test {
 protected:
  void SetUp() override { q.set_features(kFeatureRingIndirectDesc); }
  // The pop fails, names the rule and leaves the queue where it was.
  void expect_broken(const char* words) {
    const std::uint16_t before = q.next_avail();
    auto r = q.pop(mem);
    ASSERT_FALSE(r.has_value()) << "the malformed chain was accepted";
    EXPECT_NE(r.error().message().find(words), std::string::npos) << r.error().message();
    EXPECT_EQ(q.next_avail(), before);
  }
  GuestMemory mem = make_memory();
  Queue q{256};
  MockDriver drv{mem, q, 16, kQueueBase};
};

TEST_F(QueueTest, AChainGivesItsReadableThenWritableBuffers) {
  const auto head = drv.add_chain({{kData, 16}, {kData + 0x100, 512}, {kData + 0x1000, 1, true}});
  auto r = q.pop(mem);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  ASSERT_TRUE(r->has_value());
  const DescriptorChain& c = **r;
  EXPECT_EQ(c.head, head);
  ASSERT_EQ(c.readable.size(), 2u);
  ASSERT_EQ(c.writable.size(), 1u);
  EXPECT_EQ(c.readable[1].addr.value, kData + 0x100);
  EXPECT_EQ(c.readable_len, 528u);
  EXPECT_EQ(c.writable_len, 1u);
  auto none = q.pop(mem);
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->has_value());
}

TEST_F(QueueTest, UsedChainsArePublishedWithTheirLengths) {
  const auto a = drv.add_chain({{kData, 8, true}});
  const auto b = drv.add_chain({{kData + 8, 8, true}});
  ASSERT_TRUE(q.pop(mem).value().has_value());
  ASSERT_TRUE(q.pop(mem).value().has_value());
  ASSERT_TRUE(q.add_used(mem, b, 7).has_value());
  ASSERT_TRUE(q.add_used(mem, a, 3).has_value());
  EXPECT_EQ(drv.used_idx(), 2);
  EXPECT_EQ(drv.used(0).id, b);
  EXPECT_EQ(drv.used(0).len, 7u);
  EXPECT_EQ(drv.used(1).id, a);
  EXPECT_FALSE(q.add_used(mem, 16, 0).has_value()) << "a head outside the queue";
}

TEST_F(QueueTest, AnIndirectTableAfterDirectDescriptorsIsOneChain) {
  // Two direct descriptors, the second pointing at an indirect table of two buffers.
  drv.write_descriptor_at(0x40000, kData + 0x200, 100, kDescNext, 1);
  drv.write_descriptor_at(0x40010, kData + 0x300, 50, kDescWrite, 0);
  drv.write_descriptor(3, kData, 16, kDescNext, 4);
  drv.write_descriptor(4, 0x40000, 32, kDescIndirect, 0);
  drv.make_available(3);
  auto r = q.pop(mem);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ((*r)->readable.size(), 2u);
  EXPECT_EQ((*r)->readable_len, 116u);
  EXPECT_EQ((*r)->writable_len, 50u);
}

TEST_F(QueueTest, ZeroLengthBuffersAreSkipped) {
  drv.add_chain({{kData, 0}, {kData, 4}, {kData, 0, true}, {kData, 4, true}});
  auto r = q.pop(mem);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ((*r)->readable.size(), 1u);
  EXPECT_EQ((*r)->writable.size(), 1u);
}

TEST_F(QueueTest, IndicesWrapAt65535) {
  Queue small(4);
  MockDriver d(mem, small, 4, 0x20000);
  for (std::uint32_t i = 0; i < 65540; ++i) {
    const auto head = d.add_chain({{kData, 4, true}});
    auto r = small.pop(mem);
    ASSERT_TRUE(r.has_value() && r->has_value()) << "at " << i;
    ASSERT_EQ((*r)->head, head);
    ASSERT_TRUE(small.add_used(mem, head, 4).has_value());
  }
  EXPECT_EQ(small.next_avail(), static_cast<std::uint16_t>(65540));
  EXPECT_EQ(d.used_idx(), static_cast<std::uint16_t>(65540));
  EXPECT_EQ(d.used(static_cast<std::uint16_t>(65539)).len, 4u);
}

TEST_F(QueueTest, WithoutEventIdxTheNoInterruptFlagIsObeyed) {
  const auto h = drv.add_chain({{kData, 4, true}});
  ASSERT_TRUE(q.pop(mem).value().has_value());
  EXPECT_FALSE(q.needs_interrupt(mem).value()) << "nothing was used yet";
  ASSERT_TRUE(q.add_used(mem, h, 4).has_value());
  drv.set_avail_flags(kAvailNoInterrupt);
  EXPECT_FALSE(q.needs_interrupt(mem).value());
  const auto h2 = drv.add_chain({{kData, 4, true}});
  ASSERT_TRUE(q.pop(mem).value().has_value());
  ASSERT_TRUE(q.add_used(mem, h2, 4).has_value());
  drv.set_avail_flags(0);
  EXPECT_TRUE(q.needs_interrupt(mem).value());
  EXPECT_FALSE(q.needs_interrupt(mem).value()) << "no new used chain since";
}

TEST_F(QueueTest, EventIdxSuppressesInterruptsUntilUsedEventIsPassed) {
  q.set_features(kFeatureRingEventIdx);
  auto use_one = [&] {
    const auto h = drv.add_chain({{kData, 4, true}});
    ASSERT_TRUE(q.pop(mem).value().has_value());
    ASSERT_TRUE(q.add_used(mem, h, 4).has_value());
  };
  use_one();  // used idx 1
  EXPECT_TRUE(q.needs_interrupt(mem).value()) << "the first interrupt after a reset is always sent";
  drv.set_used_event(3);  // "interrupt me when used idx passes 3"
  use_one();              // 2
  EXPECT_FALSE(q.needs_interrupt(mem).value());
  use_one();  // 3
  EXPECT_FALSE(q.needs_interrupt(mem).value());
  use_one();  // 4: passes 3
  EXPECT_TRUE(q.needs_interrupt(mem).value());
  use_one();  // 5: used_event 3 is behind
  EXPECT_FALSE(q.needs_interrupt(mem).value());
}

TEST_F(QueueTest, EventIdxTellsTheDriverWhereToNotify) {
  q.set_features(kFeatureRingEventIdx);
  drv.add_chain({{kData, 4, true}});
  drv.add_chain({{kData, 4, true}});
  EXPECT_TRUE(q.enable_notification(mem).value()) << "two chains are waiting";
  ASSERT_TRUE(q.pop(mem).value().has_value());
  ASSERT_TRUE(q.pop(mem).value().has_value());
  EXPECT_FALSE(q.enable_notification(mem).value());
  EXPECT_EQ(drv.avail_event(), 2) << "the driver should notify when it makes index 2 available";
}

TEST_F(QueueTest, WithoutEventIdxTheUsedFlagsAskForNoNotificationsWhileTheDeviceIsBusy) {
  auto flags = [&] { return mem.read_obj<std::uint16_t>(q.used_ring).value(); };
  EXPECT_EQ(flags(), 0);
  drv.add_chain({{kData, 4, true}});
  drv.add_chain({{kData, 4, true}});
  ASSERT_TRUE(q.pop(mem).value().has_value());
  EXPECT_EQ(flags(), kUsedNoNotify) << "the device will look again without being told";
  EXPECT_TRUE(q.enable_notification(mem).value()) << "a chain is still waiting";
  EXPECT_EQ(flags(), 0);
  ASSERT_TRUE(q.pop(mem).value().has_value());
  EXPECT_EQ(flags(), kUsedNoNotify);
  EXPECT_FALSE(q.enable_notification(mem).value());
  EXPECT_EQ(flags(), 0) << "dry: the driver notifies at its next chain";
}

TEST_F(QueueTest, ResetForgetsTheRings) {
  drv.add_chain({{kData, 4, true}});
  ASSERT_TRUE(q.pop(mem).value().has_value());
  q.reset();
  EXPECT_FALSE(q.ready);
  EXPECT_EQ(q.next_avail(), 0);
  EXPECT_FALSE(q.pop(mem).has_value()) << "a queue not ready is not read";
}

// ---- The layout the driver programs ----

struct LayoutCase {
  const char* name;
  std::uint16_t size;
  std::uint64_t desc, avail, used;
  const char* words;
};

class QueueLayoutTest : public ::testing::TestWithParam<LayoutCase> {};

TEST_P(QueueLayoutTest, IsRefused) {
  const auto& c = GetParam();
  GuestMemory mem = make_memory();
  Queue q(256);
  q.size = c.size;
  q.desc_table = GuestAddress{c.desc};
  q.avail_ring = GuestAddress{c.avail};
  q.used_ring = GuestAddress{c.used};
  auto r = q.check_layout(mem);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find(c.words), std::string::npos) << r.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, QueueLayoutTest,
    ::testing::Values(
        LayoutCase{"SizeNotPowerOfTwo", 24, 0x1000, 0x2000, 0x3000, "power of two"},
        LayoutCase{"SizeZero", 0, 0x1000, 0x2000, 0x3000, "power of two"},
        LayoutCase{"SizeAboveMaximum", 512, 0x1000, 0x4000, 0x5000, "maximum"},
        LayoutCase{"DescriptorTableMisaligned", 16, 0x1008, 0x2000, 0x3000, "descriptor table"},
        LayoutCase{"AvailRingMisaligned", 16, 0x1000, 0x2001, 0x3000, "available ring"},
        LayoutCase{"UsedRingMisaligned", 16, 0x1000, 0x2000, 0x3002, "used ring"},
        LayoutCase{"DescriptorTableInTheHole", 16, kLowEnd + 0x1000, 0x2000, 0x3000, "descriptor table"},
        LayoutCase{"AvailRingAcrossTheEndOfRam", 16, 0x1000, kLowEnd - 8, 0x3000, "available ring"},
        LayoutCase{"UsedRingOverMmio", 16, 0x1000, 0x2000, 0xd000'0000, "used ring"},
        LayoutCase{"UsedRingPastTheLastRegion", 16, 0x1000, 0x2000, kHighEnd - 0x40, "used ring"}),
    [](const auto& p) { return std::string(p.param.name); });

// ---- Malformed chains: each is refused, and the device sees nothing of it ----

TEST_F(QueueTest, AvailIndexMoreThanAQueueAhead) {
  drv.set_avail_idx(17);
  expect_broken("ahead");
}

TEST_F(QueueTest, HeadIndexOutsideTheTable) {
  drv.make_available(16);
  expect_broken("outside the descriptor table");
}

TEST_F(QueueTest, NextIndexOutsideTheTable) {
  drv.write_descriptor(0, kData, 4, kDescNext, 40);
  drv.make_available(0);
  expect_broken("outside the descriptor table");
}

TEST_F(QueueTest, ATwoDescriptorLoop) {
  drv.write_descriptor(0, kData, 4, kDescNext, 1);
  drv.write_descriptor(1, kData, 4, kDescNext, 0);
  drv.make_available(0);
  expect_broken("longer than the queue size");
}

TEST_F(QueueTest, ADescriptorThatIsItsOwnNext) {
  drv.write_descriptor(5, kData, 4, kDescNext | kDescWrite, 5);
  drv.make_available(5);
  expect_broken("longer than the queue size");
}

TEST_F(QueueTest, AnIndirectDescriptorWithoutTheFeature) {
  q.set_features(0);
  drv.add_indirect_chain({{kData, 4}}, 0x40000);
  expect_broken("without INDIRECT_DESC");
}

TEST_F(QueueTest, AnIndirectTableInsideAnIndirectTable) {
  drv.write_descriptor_at(0x40000, 0x41000, 16, kDescIndirect, 0);
  drv.write_descriptor_at(0x41000, kData, 4, 0, 0);
  drv.write_descriptor(0, 0x40000, 16, kDescIndirect, 0);
  drv.make_available(0);
  expect_broken("inside an indirect table");
}

TEST_F(QueueTest, AnIndirectLengthThatIsNotAMultipleOf16) {
  drv.write_descriptor_at(0x40000, kData, 4, 0, 0);
  drv.write_descriptor(0, 0x40000, 24, kDescIndirect, 0);
  drv.make_available(0);
  expect_broken("multiple of 16");
}

TEST_F(QueueTest, AnEmptyIndirectTable) {
  drv.write_descriptor(0, 0x40000, 0, kDescIndirect, 0);
  drv.make_available(0);
  expect_broken("multiple of 16");
}

TEST_F(QueueTest, AnIndirectDescriptorWithNextSet) {
  drv.write_descriptor_at(0x40000, kData, 4, 0, 0);
  drv.write_descriptor(0, 0x40000, 16, kDescIndirect | kDescNext, 1);
  drv.write_descriptor(1, kData, 4, kDescWrite, 0);
  drv.make_available(0);
  expect_broken("NEXT");
}

TEST_F(QueueTest, AnIndirectTableOutsideRam) {
  drv.write_descriptor(0, kLowEnd - 16, 32, kDescIndirect, 0);
  drv.make_available(0);
  expect_broken("indirect table");
}

TEST_F(QueueTest, AnIndirectNextOutsideItsTable) {
  drv.write_descriptor_at(0x40000, kData, 4, kDescNext, 2);
  drv.write_descriptor_at(0x40010, kData, 4, 0, 0);
  drv.write_descriptor(0, 0x40000, 32, kDescIndirect, 0);
  drv.make_available(0);
  expect_broken("outside the indirect table");
}

TEST_F(QueueTest, ALoopInsideAnIndirectTable) {
  drv.write_descriptor_at(0x40000, kData, 4, kDescNext, 1);
  drv.write_descriptor_at(0x40010, kData, 4, kDescNext, 0);
  drv.write_descriptor(0, 0x40000, 32, kDescIndirect, 0);
  drv.make_available(0);
  expect_broken("longer than the queue size");
}

TEST_F(QueueTest, AnIndirectTableLongerThanTheQueue) {
  // 64 entries chained in order, in a queue of 16: refused when the 17th is reached.
  for (std::uint16_t i = 0; i < 64; ++i) drv.write_descriptor_at(0x40000 + 16ull * i, kData, 4, kDescNext, i + 1);
  drv.write_descriptor_at(0x40000 + 16 * 63, kData, 4, 0, 0);
  drv.write_descriptor(0, 0x40000, 64 * 16, kDescIndirect, 0);
  drv.make_available(0);
  expect_broken("longer than the queue size");
}

TEST_F(QueueTest, ABufferInTheHole) {
  drv.add_chain({{kLowEnd + 0x10, 4}});
  expect_broken("not inside guest RAM");
}

TEST_F(QueueTest, ABufferAcrossTheEndOfARegion) {
  drv.add_chain({{kLowEnd - 2, 4, true}});
  expect_broken("not inside guest RAM");
}

TEST_F(QueueTest, ABufferOverMmio) {
  drv.add_chain({{0xfee0'0000, 4, true}});
  expect_broken("not inside guest RAM");
}

TEST_F(QueueTest, ABufferWhoseEndWrapsAround) {
  drv.add_chain({{std::numeric_limits<std::uint64_t>::max() - 1, 16}});
  expect_broken("not inside guest RAM");
}

TEST_F(QueueTest, LengthsWhoseSumPasses4GiB) {
  // 4097 overlapping 1 MiB buffers, every one inside RAM: 4 GiB + 1 MiB in all.
  Queue big(8192);
  big.set_features(0);
  MockDriver d(mem, big, 8192, kHighStart);
  std::vector<MockDriver::Segment> segs(4097, MockDriver::Segment{0, 0x100000});
  d.add_chain(segs);
  auto r = big.pop(mem);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("4 GiB"), std::string::npos) << r.error().message();
}

TEST_F(QueueTest, AReadableBufferAfterAWritableOne) {
  drv.add_chain({{kData, 4}, {kData + 4, 4, true}, {kData + 8, 4}});
  expect_broken("device-readable buffer follows");
}

TEST_F(QueueTest, AnEmptyReadableBufferAfterAWritableOne) {
  drv.add_chain({{kData + 4, 4, true}, {kData + 8, 0}});
  expect_broken("device-readable buffer follows");
}

TEST_F(QueueTest, AQueueNotMadeReady) {
  q.ready = false;
  drv.add_chain({{kData, 4}});
  expect_broken("before it was made ready");
  EXPECT_FALSE(q.add_used(mem, 0, 0).has_value());
}

TEST_F(QueueTest, ABrokenChainStaysBrokenUntilReset) {
  drv.write_descriptor(0, kData, 4, kDescNext, 0);
  drv.make_available(0);
  expect_broken("longer than the queue size");
  expect_broken("longer than the queue size");  // no skipping past it
  q.reset();
  MockDriver fresh(mem, q, 16, kQueueBase);
  fresh.add_chain({{kData, 4}});
  auto r = q.pop(mem);
  ASSERT_TRUE(r.has_value() && r->has_value()) << "usable again after a reset";
}

}  // namespace
}  // namespace kiln::virtio
