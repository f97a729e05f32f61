#include "virtio/transport/mmio.h"

#include <gtest/gtest.h>

#include <cstring>

#include "virtio/queue/mock_driver.h"
#include "virtio/rng/rng.h"

namespace kiln::virtio {
namespace {

class CountingTrigger : public InterruptTrigger {
 public:
  void trigger() override { ++count; }
  int count = 0;
};

GuestMemory make_memory() {
  const RegionLayout layout[] = {{0, 0x100000}};
  return std::move(GuestMemory::create(layout).value());
}

constexpr std::uint64_t kRing = 0x10000;
constexpr std::uint64_t kData = 0x80000;

class MmioTest : public ::testing::Test {
 protected:
  std::uint32_t reg(std::uint64_t off) {
    std::uint32_t v = 0;
    mmio.read(off, std::as_writable_bytes(std::span(&v, 1)));
    return v;
  }
  void set(std::uint64_t off, std::uint32_t v) { mmio.write(off, std::as_bytes(std::span(&v, 1))); }
  // The driver's side of initialization (section 3.1.1), up to and including DRIVER_OK, with
  // queue 0 laid out by `drv`.
  void bring_up(std::uint64_t features, std::uint16_t size = 16) {
    set(0x070, 0);
    set(0x070, kStatusAcknowledge);
    set(0x070, kStatusAcknowledge | kStatusDriver);
    set(0x024, 0);
    set(0x020, static_cast<std::uint32_t>(features));
    set(0x024, 1);
    set(0x020, static_cast<std::uint32_t>(features >> 32));
    set(0x070, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    ASSERT_TRUE(reg(0x070) & kStatusFeaturesOk);
    set(0x030, 0);
    Queue shadow(256);
    drv = std::make_unique<MockDriver>(mem, shadow, size, kRing);
    set(0x038, shadow.size);
    set(0x080, static_cast<std::uint32_t>(shadow.desc_table.value));
    set(0x084, 0);
    set(0x090, static_cast<std::uint32_t>(shadow.avail_ring.value));
    set(0x094, 0);
    set(0x0a0, static_cast<std::uint32_t>(shadow.used_ring.value));
    set(0x0a4, 0);
    set(0x044, 1);
    set(0x070, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  }
  GuestMemory mem = make_memory();
  CountingTrigger irq;
  std::shared_ptr<RngDevice> rng = std::make_shared<RngDevice>();
  MmioTransport mmio{rng, mem, irq};
  std::unique_ptr<MockDriver> drv;
};

TEST_F(MmioTest, IdentifiesAsVersion2WithTheDevicesType) {
  EXPECT_EQ(reg(0x000), 0x74726976u);
  EXPECT_EQ(reg(0x004), 2u);
  EXPECT_EQ(reg(0x008), kDeviceRng);
  set(0x014, 1);
  EXPECT_EQ(reg(0x010), 1u) << "VERSION_1 is bit 32";
  set(0x030, 0);
  EXPECT_EQ(reg(0x034), 256u);
  set(0x030, 1);
  EXPECT_EQ(reg(0x034), 0u) << "there is no queue 1";
}

TEST_F(MmioTest, FeaturesTheDeviceDidNotOfferAreRefused) {
  set(0x070, kStatusAcknowledge | kStatusDriver);
  set(0x024, 1);
  set(0x020, 1 | 2);  // VERSION_1 and ACCESS_PLATFORM (not offered)
  set(0x070, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  EXPECT_FALSE(reg(0x070) & kStatusFeaturesOk);
}

TEST_F(MmioTest, ADriverWithoutVersion1IsRefused) {
  set(0x070, kStatusAcknowledge | kStatusDriver);
  set(0x070, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  EXPECT_FALSE(reg(0x070) & kStatusFeaturesOk);
}

TEST_F(MmioTest, RandomBytesFillTheBufferAndRaiseTheUsedBufferInterrupt) {
  bring_up(kFeatureVersion1);
  ASSERT_EQ(reg(0x070) & kStatusNeedsReset, 0u);
  drv->add_chain({{kData, 64, true}});
  set(0x050, 0);
  EXPECT_EQ(drv->used_idx(), 1);
  EXPECT_EQ(drv->used(0).len, 64u);
  std::array<std::byte, 64> got{}, zero{};
  ASSERT_TRUE(mem.read(GuestAddress{kData}, got).has_value());
  EXPECT_NE(std::memcmp(got.data(), zero.data(), 64), 0);
  EXPECT_EQ(irq.count, 1);
  EXPECT_EQ(reg(0x060), 1u);
  set(0x064, 1);
  EXPECT_EQ(reg(0x060), 0u) << "acknowledged";
  EXPECT_EQ(rng->bytes_served(), 64u);
}

TEST_F(MmioTest, AHugeBufferIsFilledOnlyUpToTheBound) {
  bring_up(kFeatureVersion1);
  drv->add_chain({{0, 0x100000, true}});  // all of RAM, rings included
  set(0x050, 0);
  EXPECT_EQ(reg(0x070) & kStatusNeedsReset, 0u);
  EXPECT_EQ(rng->bytes_served(), RngDevice::kMaxPerRequest);
}

TEST_F(MmioTest, AQueueLaidOutOutsideRamNeedsResetAtDriverOk) {
  bring_up(kFeatureVersion1, 16);
  set(0x070, 0);
  irq.count = 0;
  set(0x070, kStatusAcknowledge | kStatusDriver);
  set(0x024, 1);
  set(0x020, 1);
  set(0x070, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  set(0x030, 0);
  set(0x038, 16);
  set(0x080, 0xd000'0000);  // over MMIO
  set(0x090, 0x2000);
  set(0x0a0, 0x3000);
  set(0x044, 1);
  set(0x070, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  EXPECT_TRUE(reg(0x070) & kStatusNeedsReset);
  EXPECT_EQ(irq.count, 1) << "a config-change interrupt tells the driver";
  EXPECT_EQ(reg(0x060), 2u);
  EXPECT_EQ(mmio.counters().needs_reset.load(), 1u);
}

TEST_F(MmioTest, ABrokenChainNeedsResetAndAResetBringsTheDeviceBack) {
  bring_up(kFeatureVersion1);
  drv->write_descriptor(0, kData, 4, kDescNext | kDescWrite, 0);  // a loop
  drv->make_available(0);
  set(0x050, 0);
  EXPECT_TRUE(reg(0x070) & kStatusNeedsReset);
  EXPECT_EQ(drv->used_idx(), 0);
  // Further notifications are not served while broken.
  drv->add_chain({{kData, 8, true}}, 3);
  set(0x050, 0);
  EXPECT_EQ(drv->used_idx(), 0);
  bring_up(kFeatureVersion1);
  EXPECT_EQ(reg(0x070) & kStatusNeedsReset, 0u);
  drv->add_chain({{kData, 8, true}});
  set(0x050, 0);
  EXPECT_EQ(drv->used_idx(), 1);
  EXPECT_EQ(mmio.counters().needs_reset.load(), 1u);
}

TEST_F(MmioTest, QueueRegistersAreFixedOnceTheDriverIsRunning) {
  bring_up(kFeatureVersion1);
  set(0x038, 4);
  set(0x080, 0x1234);
  drv->add_chain({{kData, 8, true}});
  set(0x050, 0);
  EXPECT_EQ(drv->used_idx(), 1) << "the queue kept the layout it was activated with";
}

TEST_F(MmioTest, OddSizedAndStrayAccessesAreHarmless) {
  std::uint8_t b = 0xff;
  mmio.write(0x070, std::as_bytes(std::span(&b, 1)));  // a 1-byte status write: dropped
  EXPECT_EQ(reg(0x070), 0u);
  std::uint16_t w = 0;
  mmio.read(0x002, std::as_writable_bytes(std::span(&w, 1)));
  EXPECT_EQ(w, 0u);
  set(0x0ff0, 0xffff'ffff);  // config space of a device without one
  set(0x0c0, 7);             // reserved
  set(0x050, 9);             // notify of a queue that does not exist
  set(0x050, 0);             // notify before the driver is ready
  EXPECT_EQ(reg(0x070), 0u);
  EXPECT_EQ(irq.count, 0);
}

TEST_F(MmioTest, ADriverCannotClearStatusBitsWithoutAReset) {
  bring_up(kFeatureVersion1);
  set(0x070, kStatusAcknowledge);
  EXPECT_TRUE(reg(0x070) & kStatusDriverOk);
}

TEST_F(MmioTest, AHostConfigChangeMovesTheGenerationAndInterrupts) {
  const auto gen = reg(0x0fc);
  mmio.change_config([](VirtioDevice&) {});
  EXPECT_EQ(reg(0x0fc), gen + 1);
  EXPECT_EQ(irq.count, 0) << "no driver yet";
  bring_up(kFeatureVersion1);
  mmio.change_config([](VirtioDevice&) {});
  EXPECT_EQ(irq.count, 1);
  EXPECT_EQ(reg(0x060), 2u);
}

TEST_F(MmioTest, EventIdxAndNoInterruptSuppressInterrupts) {
  bring_up(kFeatureVersion1);
  drv->set_avail_flags(kAvailNoInterrupt);
  drv->add_chain({{kData, 8, true}});
  set(0x050, 0);
  EXPECT_EQ(drv->used_idx(), 1);
  EXPECT_EQ(irq.count, 0);
}

}  // namespace
}  // namespace kiln::virtio
