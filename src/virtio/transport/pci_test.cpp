#include "virtio/transport/pci.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "virtio/queue/mock_driver.h"
#include "virtio/rng/rng.h"

namespace kiln::virtio {
namespace {

struct FakeMsi : MsiVectors {
  void route(std::uint16_t v, std::uint64_t address, std::uint32_t data, bool enabled) override {
    routes[v] = {address, data, enabled};
  }
  void fire(std::uint16_t v) override { ++fired[v]; }
  struct Route {
    std::uint64_t address;
    std::uint32_t data;
    bool enabled;
  };
  std::map<std::uint16_t, Route> routes;
  std::map<std::uint16_t, int> fired;
};

struct FakeLine : IrqLine {
  void set_level(bool high) override {
    level = high;
    if (high) ++raised;
  }
  bool level = false;
  int raised = 0;
};

constexpr std::uint64_t kBar = 0xc000'0000, kRing = 0x10000, kData = 0x80000;

class PciTransportTest : public ::testing::Test {
 protected:
  template <class T>
  T bar_read(std::uint64_t off) {
    T v{};
    t.read(off, std::as_writable_bytes(std::span(&v, 1)));
    return v;
  }
  template <class T>
  void bar_write(std::uint64_t off, T v) {
    t.write(off, std::as_bytes(std::span(&v, 1)));
  }
  std::uint32_t cfg_read(std::uint64_t off) {
    std::uint32_t v = 0;
    t.config_read(off, std::as_writable_bytes(std::span(&v, 1)));
    return v;
  }
  void cfg_write16(std::uint64_t off, std::uint16_t v) { t.config_write(off, std::as_bytes(std::span(&v, 1))); }
  // Capability offsets by type (vendor caps by cfg_type, MSI-X as 0x11).
  std::map<std::uint32_t, std::uint32_t> caps() {
    std::map<std::uint32_t, std::uint32_t> out;
    for (std::uint32_t at = cfg_read(0x34) & 0xff; at != 0; at = cfg_read(at) >> 8 & 0xff) {
      const std::uint32_t h = cfg_read(at);
      out[(h & 0xff) == 0x09 ? h >> 24 : 0x11] = at;
    }
    return out;
  }
  void bring_up() {
    bar_write<std::uint8_t>(0x14, 0);
    bar_write<std::uint8_t>(0x14, kStatusAcknowledge | kStatusDriver);
    bar_write<std::uint32_t>(0x08, 1);
    bar_write<std::uint32_t>(0x0c, 1);  // VERSION_1
    bar_write<std::uint8_t>(0x14, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    ASSERT_TRUE(bar_read<std::uint8_t>(0x14) & kStatusFeaturesOk);
    bar_write<std::uint16_t>(0x16, 0);
    Queue shadow(256);
    drv = std::make_unique<MockDriver>(mem, shadow, 16, kRing);
    bar_write<std::uint16_t>(0x18, 16);
    bar_write<std::uint64_t>(0x20, shadow.desc_table.value);
    bar_write<std::uint32_t>(0x28, static_cast<std::uint32_t>(shadow.avail_ring.value));
    bar_write<std::uint32_t>(0x2c, 0);
    bar_write<std::uint64_t>(0x30, shadow.used_ring.value);
    bar_write<std::uint16_t>(0x1c, 1);
    bar_write<std::uint8_t>(0x14, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  }
  void enable_msix() {
    const auto msix = caps().at(0x11);
    for (std::uint16_t v = 0; v < 2; ++v) {
      bar_write<std::uint64_t>(PciTransport::kMsixTable + 16 * v, 0xfee0'0000ull);
      bar_write<std::uint32_t>(PciTransport::kMsixTable + 16 * v + 8, 0x40u + v);
      bar_write<std::uint32_t>(PciTransport::kMsixTable + 16 * v + 12, 0);  // unmasked
    }
    cfg_write16(msix + 2, 0x8000);  // enable
  }
  GuestMemory mem = std::move(GuestMemory::create(std::vector<RegionLayout>{{0, 0x100000}}).value());
  FakeMsi msi;
  FakeLine line;
  PciTransport t{std::make_shared<RngDevice>(), mem, msi, line, kBar, 17};
  std::unique_ptr<MockDriver> drv;
};

TEST_F(PciTransportTest, IdentifiesAsAModernVirtioDeviceWithItsCapabilities) {
  EXPECT_EQ(cfg_read(0), 0x1044'1af4u) << "virtio-rng, modern id";
  EXPECT_EQ(cfg_read(8) & 0xff, 1u) << "revision 1";
  EXPECT_EQ(cfg_read(0x3c) >> 8 & 0xff, 1u) << "INTA";
  EXPECT_EQ(cfg_read(0x3c) & 0xff, 17u);
  auto c = caps();
  for (std::uint32_t type : {1u, 2u, 3u, 4u, 5u, 0x11u}) EXPECT_TRUE(c.count(type)) << "capability " << type;
  EXPECT_EQ(cfg_read(c[2] + 16), PciTransport::kNotifyMultiplier);
  EXPECT_EQ(cfg_read(c[0x11]) >> 16 & 0x7ff, 1u) << "two vectors: the queue's and config's";
  EXPECT_EQ(bar_read<std::uint16_t>(0x12), 1) << "one queue";
  EXPECT_EQ(bar_read<std::uint16_t>(0x18), 256) << "its maximum size until the driver sets one";
}

TEST_F(PciTransportTest, WithMsixAUsedBufferFiresTheQueuesVector) {
  enable_msix();
  bring_up();
  bar_write<std::uint16_t>(0x16, 0);
  bar_write<std::uint16_t>(0x1a, 0);  // queue 0 -> vector 0
  bar_write<std::uint16_t>(0x10, 1);  // config -> vector 1
  EXPECT_EQ(bar_read<std::uint16_t>(0x1a), 0);
  ASSERT_TRUE(msi.routes[0].enabled);
  EXPECT_EQ(msi.routes[0].data, 0x40u);
  drv->add_chain({{kData, 16, true}});
  bar_write<std::uint16_t>(PciTransport::kNotify, 0);
  EXPECT_EQ(drv->used_idx(), 1);
  EXPECT_EQ(msi.fired[0], 1);
  EXPECT_FALSE(line.level) << "no INTx while MSI-X is on";
  t.change_config([](VirtioDevice&) {});
  EXPECT_EQ(msi.fired[1], 1) << "the config vector";
}

TEST_F(PciTransportTest, AMaskedVectorIsHeldPendingUntilUnmasked) {
  enable_msix();
  bring_up();
  bar_write<std::uint16_t>(0x1a, 0);
  bar_write<std::uint32_t>(PciTransport::kMsixTable + 12, 1);  // mask vector 0
  EXPECT_FALSE(msi.routes[0].enabled);
  drv->add_chain({{kData, 16, true}});
  bar_write<std::uint16_t>(PciTransport::kNotify, 0);
  EXPECT_EQ(msi.fired[0], 0);
  EXPECT_EQ(bar_read<std::uint64_t>(PciTransport::kMsixPba) & 1, 1u);
  bar_write<std::uint32_t>(PciTransport::kMsixTable + 12, 0);
  EXPECT_EQ(msi.fired[0], 1) << "delivered once unmasked";
  EXPECT_EQ(bar_read<std::uint64_t>(PciTransport::kMsixPba) & 1, 0u);
}

TEST_F(PciTransportTest, WithoutMsixInterruptsAreIntaAndTheIsrSaysWhy) {
  bring_up();
  drv->add_chain({{kData, 16, true}});
  bar_write<std::uint16_t>(PciTransport::kNotify, 0);
  EXPECT_TRUE(line.level);
  EXPECT_EQ(bar_read<std::uint8_t>(PciTransport::kIsr), 1) << "a queue interrupt";
  EXPECT_FALSE(line.level) << "reading the ISR lowers the line";
  EXPECT_EQ(bar_read<std::uint8_t>(PciTransport::kIsr), 0) << "and clears it";
  t.change_config([](VirtioDevice&) {});
  EXPECT_EQ(bar_read<std::uint8_t>(PciTransport::kIsr), 2) << "a config change";
}

TEST_F(PciTransportTest, IntaIsRaisedOnceUntilTheIsrIsReadAndIntxDisableMasksIt) {
  bring_up();
  for (int i = 0; i < 3; ++i) {
    drv->add_chain({{kData, 16, true}});
    bar_write<std::uint16_t>(PciTransport::kNotify, 0);
  }
  EXPECT_TRUE(line.level);
  EXPECT_EQ(line.raised, 1) << "the level line was already high: no second KVM_IRQ_LINE";
  const std::uint16_t command = static_cast<std::uint16_t>(cfg_read(0x04));
  cfg_write16(0x04, command | 0x400);  // INTx Disable
  EXPECT_FALSE(line.level) << "INTx Disable masks the pending interrupt";
  cfg_write16(0x04, command);
  EXPECT_TRUE(line.level) << "and clearing it shows it again";
  EXPECT_EQ(line.raised, 2);
  EXPECT_EQ(bar_read<std::uint8_t>(PciTransport::kIsr), 1);
  EXPECT_FALSE(line.level);
  drv->add_chain({{kData, 16, true}});
  bar_write<std::uint16_t>(PciTransport::kNotify, 0);
  EXPECT_TRUE(line.level) << "a new interrupt after the ISR was read raises it again";
  EXPECT_EQ(line.raised, 3);
}

TEST_F(PciTransportTest, AVectorPastTheTableReadsBackAsNoVector) {
  bar_write<std::uint16_t>(0x10, 7);
  EXPECT_EQ(bar_read<std::uint16_t>(0x10), PciTransport::kNoVector);
  bar_write<std::uint16_t>(0x1a, 2);
  EXPECT_EQ(bar_read<std::uint16_t>(0x1a), PciTransport::kNoVector);
}

TEST_F(PciTransportTest, ABrokenQueueNeedsResetAndTellsTheDriverOnTheConfigVector) {
  enable_msix();
  bring_up();
  bar_write<std::uint16_t>(0x10, 1);
  drv->write_descriptor(0, kData, 4, kDescNext | kDescWrite, 0);
  drv->make_available(0);
  bar_write<std::uint16_t>(PciTransport::kNotify, 0);
  EXPECT_TRUE(bar_read<std::uint8_t>(0x14) & kStatusNeedsReset);
  EXPECT_EQ(msi.fired[1], 1);
  bring_up();
  EXPECT_FALSE(bar_read<std::uint8_t>(0x14) & kStatusNeedsReset) << "a reset brings it back";
}

TEST_F(PciTransportTest, ThePciConfigCapabilityReachesTheBar) {
  const auto at = caps().at(5);
  std::uint8_t bar = 0;
  t.config_write(at + 4, std::as_bytes(std::span(&bar, 1)));
  std::uint32_t off = 0x12, len = 2;  // num_queues
  t.config_write(at + 8, std::as_bytes(std::span(&off, 1)));
  t.config_write(at + 12, std::as_bytes(std::span(&len, 1)));
  EXPECT_EQ(cfg_read(at + 16) & 0xffff, 1u);
}

TEST_F(PciTransportTest, StrayAccessesAreHarmless) {
  bar_write<std::uint64_t>(0x7ff8, ~0ull);
  bar_write<std::uint8_t>(0x0d, 0xff);  // half a feature word
  bar_write<std::uint16_t>(PciTransport::kNotify + 64, 0);  // no such queue
  bar_write<std::uint16_t>(PciTransport::kNotify, 0);       // before the driver is ready
  std::byte big[16];
  t.read(0, big);
  EXPECT_EQ(bar_read<std::uint8_t>(0x14), 0);
  EXPECT_FALSE(line.level);
}

}  // namespace
}  // namespace kiln::virtio
