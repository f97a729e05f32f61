#include "virtio/net/net.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <random>

#include "base/unique_fd.h"
#include "virtio/queue/mock_driver.h"

namespace kiln::virtio {
namespace {

constexpr std::uint64_t kRxRing = 0x10000, kTxRing = 0x20000;
constexpr std::uint64_t kBufs = 0x100000;  // guest buffers

class CountingInterrupt : public VirtioInterrupt {
 public:
  void used_buffers(std::uint16_t q) override { ++used[q]; }
  void config_changed() override {}
  int used[2] = {0, 0};
};

// A back end the test feeds and reads: frames to the guest wait in `incoming`, frames from it land
// in `sent`; `full` makes it refuse.
class FakeBackend : public NetBackend {
 public:
  std::string describe() const override { return "fake"; }
  std::uint64_t offloads() const override { return offers; }
  Result<void> set_guest_offloads(std::uint64_t f) override {
    guest_offloads = f;
    return {};
  }
  Result<bool> send(const NetHeader& h, std::span<const std::byte> f) override {
    if (full) return false;
    sent.emplace_back(f.begin(), f.end());
    sent_headers.push_back(h);
    return true;
  }
  Result<std::size_t> receive(std::span<std::byte> buf) override {
    if (incoming.empty()) return 0;
    auto f = std::move(incoming.front());
    incoming.pop_front();
    NetHeader h;
    if (!incoming_headers.empty()) {
      h = incoming_headers.front();
      incoming_headers.pop_front();
    }
    std::memcpy(buf.data(), &h, sizeof h);
    std::memcpy(buf.data() + sizeof h, f.data(), f.size());
    return f.size();
  }
  int rx_fd() const override { return fd; }
  bool rx_fd_only_frames() const override { return only_frames; }
  std::deque<std::vector<std::byte>> incoming;
  int fd = -1;  // rx_fd(): the test writes to it when it adds to `incoming`
  bool only_frames = false;
  std::deque<NetHeader> incoming_headers;  // for the frames at the front of `incoming`, when given
  std::vector<std::vector<std::byte>> sent;
  std::vector<NetHeader> sent_headers;
  std::uint64_t offers = 0, guest_offloads = 0;
  bool full = false;
};

std::vector<std::byte> frame(std::size_t len, std::uint8_t seed) {
  std::vector<std::byte> f(len);
  for (std::size_t i = 0; i < len; ++i) f[i] = static_cast<std::byte>(seed + i * 13);
  return f;
}

class NetTest : public ::testing::Test {
 protected:
  // `drop` takes features off what the driver accepts.
  void make(std::optional<MacAddress> mac = std::nullopt, bool mrg = true, std::uint64_t offers = 0,
            std::uint64_t drop = 0, int rx_fd = -1, bool only_frames = false) {
    auto b = std::make_unique<FakeBackend>();
    b->offers = offers;
    b->fd = rx_fd;
    b->only_frames = only_frames;
    backend = b.get();
    auto d = NetDevice::create(NetConfig{.id = "eth0", .mac = mac}, std::move(b));
    ASSERT_TRUE(d.has_value()) << d.error().message();
    dev = std::move(*d);
    queues.clear();
    // Larger than the device's own, so that a flood fits.
    queues.emplace_back(512);
    queues.emplace_back(512);
    rx = std::make_unique<MockDriver>(mem, queues[0], 512, kRxRing);
    tx = std::make_unique<MockDriver>(mem, queues[1], 512, kTxRing);
    features = dev->features();
    if (!mrg) features &= ~NetDevice::kFeatureMrgRxbuf;
    features &= ~drop;
    for (auto& q : queues) q.set_features(features);
    ASSERT_TRUE(dev->activate({.mem = &mem, .queues = queues, .interrupt = &irq, .features = features}).has_value());
  }
  // A transmit chain: the header (flags, gso) in its own descriptor, then the frame in two.
  void send(const std::vector<std::byte>& f, std::uint8_t hdr_flags = 0, std::uint8_t gso = 0,
            std::uint16_t csum_start = 0, std::uint16_t csum_offset = 0) {
    const std::uint64_t at = kBufs + 0x20000 * (tx_n++ % 8);
    NetHeader h;
    h.flags = hdr_flags;
    h.gso_type = gso;
    h.csum_start = csum_start;
    h.csum_offset = csum_offset;
    if (gso != kNetGsoNone) h.gso_size = 1448;
    ASSERT_TRUE(mem.write_obj(GuestAddress{at}, h).has_value());
    ASSERT_TRUE(mem.write(GuestAddress{at + 0x100}, f).has_value());
    const auto half = static_cast<std::uint32_t>(f.size() / 2);
    tx->add_chain({{at, 12}, {at + 0x100, half}, {at + 0x100 + half, static_cast<std::uint32_t>(f.size()) - half}});
  }
  // A receive buffer of `len` bytes; returns its address.
  std::uint64_t post_rx(std::uint32_t len) {
    const std::uint64_t at = kBufs + 0x200000 + 0x20000ull * (rx_n++ % 32);
    rx->add_chain({{at, len, true}});
    return at;
  }
  std::vector<std::byte> guest(std::uint64_t at, std::size_t len) {
    std::vector<std::byte> out(len);
    EXPECT_TRUE(mem.read(GuestAddress{at}, out).has_value());
    return out;
  }
  NetHeader header_at(std::uint64_t at) { return mem.read_obj<NetHeader>(GuestAddress{at}).value(); }
  bool kicked() {
    pollfd p{dev->event_fd(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }

  GuestMemory mem = std::move(GuestMemory::create(std::vector<RegionLayout>{{0, 0x1000000}}).value());
  std::unique_ptr<NetDevice> dev;
  FakeBackend* backend = nullptr;
  std::vector<Queue> queues;
  std::unique_ptr<MockDriver> rx, tx;
  CountingInterrupt irq;
  std::uint64_t features = 0;
  int tx_n = 0, rx_n = 0;
};

TEST_F(NetTest, OffersMrgRxbufAndStatusAndTheMacOnlyWhenGiven) {
  make();
  EXPECT_TRUE(dev->features() & NetDevice::kFeatureMrgRxbuf);
  EXPECT_TRUE(dev->features() & NetDevice::kFeatureStatus);
  EXPECT_FALSE(dev->features() & NetDevice::kFeatureMac);
  EXPECT_EQ(dev->queue_max_sizes().size(), 2u);
  make(MacAddress{6, 0, 0xac, 0x10, 0, 2});
  EXPECT_TRUE(dev->features() & NetDevice::kFeatureMac);
  std::array<std::byte, 12> cfg{};
  dev->read_config(0, cfg);
  EXPECT_EQ(cfg[0], std::byte{6});
  EXPECT_EQ(cfg[2], std::byte{0xac});
  EXPECT_EQ(cfg[5], std::byte{2});
  EXPECT_EQ(cfg[6], std::byte{1});  // link up
  EXPECT_EQ(cfg[8], std::byte{1});  // one queue pair
  EXPECT_EQ(cfg[10], std::byte{0});
  std::array<std::byte, 2> status{};
  dev->read_config(6, status);
  EXPECT_EQ(status[0], std::byte{1});
}

TEST_F(NetTest, ATransmittedFrameReachesTheBackEndWithoutItsHeader) {
  make();
  const auto f = frame(1514, 1);
  send(f);
  ASSERT_TRUE(dev->queue_notify(NetDevice::kTxQueue).has_value());
  ASSERT_EQ(backend->sent.size(), 1u);
  EXPECT_EQ(backend->sent[0], f);
  EXPECT_EQ(tx->used_idx(), 1);
  EXPECT_EQ(tx->used(0).len, 0u);
  EXPECT_EQ(irq.used[1], 1);
  EXPECT_EQ(dev->counters().tx_frames.load(), 1u);
  EXPECT_EQ(dev->counters().tx_bytes.load(), 1514u);
}

TEST_F(NetTest, ChainsThatAreNoFrameAreDroppedAndTheQueueGoesOn) {
  make(std::nullopt, true, 0, kNetFCsum);
  tx->add_chain({{kBufs, 8}});                          // shorter than the header
  send(frame(100, 2), kNetHdrNeedsCsum, kNetGsoTcpV4, 34, 16);  // a GSO type that was not offered
  send(frame(100, 3), kNetHdrNeedsCsum, 0, 34, 16);     // a checksum the driver did not take CSUM for
  send(frame(100, 3), 0, 0x22);                         // no such GSO type
  tx->add_chain({{kBufs + 0x1000, 12, true}});          // header only, and device-writable
  const auto good = frame(60, 4);
  send(good);
  ASSERT_TRUE(dev->queue_notify(NetDevice::kTxQueue).has_value());
  EXPECT_EQ(dev->counters().tx_malformed.load(), 5u);
  ASSERT_EQ(backend->sent.size(), 1u);
  EXPECT_EQ(backend->sent[0], good);
  EXPECT_EQ(tx->used_idx(), 6);
}

// A UDP/IPv4 frame of `payload` bytes whose UDP checksum field holds the pseudo-header's sum, as a
// driver leaving the checksum to the device writes it (csum_start 34, csum_offset 6).
std::vector<std::byte> udp_frame_partial(std::size_t payload, std::uint8_t seed) {
  auto f = frame(14 + 20 + 8 + payload, seed);
  auto put16 = [&](std::size_t at, unsigned v) {
    f[at] = static_cast<std::byte>(v >> 8);
    f[at + 1] = static_cast<std::byte>(v & 0xff);
  };
  put16(12, 0x0800);
  const unsigned udp_len = static_cast<unsigned>(8 + payload);
  const std::uint8_t ip[20] = {0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 2, 15, 10, 0, 2, 2};
  std::memcpy(f.data() + 14, ip, 20);
  put16(16, 20 + udp_len);
  put16(34, 5000);
  put16(36, 6000);
  put16(38, udp_len);
  // The pseudo-header: addresses, protocol, UDP length (not complemented: the device folds the rest in).
  std::uint32_t sum = 0x0a00 + 0x020f + 0x0a00 + 0x0202 + 17 + udp_len;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  put16(40, sum);
  return f;
}

// The Internet checksum by its definition: `sum` plus the big-endian 16-bit words of `f` from
// `from` on (a last odd byte padded with zero), carries folded back, complemented.
std::uint16_t textbook_checksum(const std::vector<std::byte>& f, std::size_t from, std::uint32_t sum) {
  for (std::size_t i = from; i < f.size(); i += 2) {
    const unsigned hi = std::to_integer<unsigned>(f[i]);
    const unsigned lo = i + 1 < f.size() ? std::to_integer<unsigned>(f[i + 1]) : 0;
    sum += hi << 8 | lo;
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

// The UDP checksum of `f` with its pseudo-header: 0 (as 0xffff folded, complemented) when correct.
std::uint16_t verify_udp(const std::vector<std::byte>& f) {
  return textbook_checksum(f, 34, 0x0a00 + 0x020f + 0x0a00 + 0x0202 + 17 + static_cast<std::uint32_t>(f.size() - 34));
}

TEST_F(NetTest, OffersChecksumsBothWaysAlwaysAndSegmentationOnlyWhenTheBackEndDoes) {
  make();
  EXPECT_EQ(dev->features() & kNetOffloads, kNetFCsum | kNetFGuestCsum);
  make(std::nullopt, true, kNetOffloads);
  EXPECT_EQ(dev->features() & kNetOffloads, kNetOffloads);
  // The back end hears which of its GUEST_* offloads the driver took, and nothing after a reset.
  EXPECT_EQ(backend->guest_offloads, kNetGuestOffloads);
  make(std::nullopt, true, kNetOffloads, kNetFGuestTso6 | kNetFGuestUfo);
  EXPECT_EQ(backend->guest_offloads, kNetFGuestCsum | kNetFGuestTso4 | kNetFGuestEcn);
  dev->reset();
  EXPECT_EQ(backend->guest_offloads, 0u);
}

TEST_F(NetTest, AChecksumLeftToTheDeviceIsCompletedForABackEndWithoutCsum) {
  make();
  const auto f = udp_frame_partial(301, 3);
  EXPECT_NE(verify_udp(f), 0);
  send(f, kNetHdrNeedsCsum, kNetGsoNone, 34, 6);
  ASSERT_TRUE(dev->queue_notify(NetDevice::kTxQueue).has_value());
  ASSERT_EQ(backend->sent.size(), 1u);
  EXPECT_EQ(verify_udp(backend->sent[0]), 0) << "a correct UDP checksum";
  EXPECT_EQ(backend->sent_headers[0].flags, 0);
  // Pointing past the frame: not a frame.
  send(f, kNetHdrNeedsCsum, kNetGsoNone, 34, 400);
  ASSERT_TRUE(dev->queue_notify(NetDevice::kTxQueue).has_value());
  EXPECT_EQ(backend->sent.size(), 1u);
  EXPECT_EQ(dev->counters().tx_malformed.load(), 1u);
}

TEST_F(NetTest, ABackEndWithOffloadsGetsTheGuestsHeaderAsItIs) {
  make(std::nullopt, true, kNetOffloads);
  const auto f = udp_frame_partial(9000, 4);
  send(f, kNetHdrNeedsCsum, kNetGsoTcpV4 | kNetGsoEcn, 34, 16);
  ASSERT_TRUE(dev->queue_notify(NetDevice::kTxQueue).has_value());
  ASSERT_EQ(backend->sent.size(), 1u);
  EXPECT_EQ(backend->sent[0], f) << "untouched: the back end does the checksum";
  EXPECT_EQ(backend->sent_headers[0].flags, kNetHdrNeedsCsum);
  EXPECT_EQ(backend->sent_headers[0].gso_type, kNetGsoTcpV4 | kNetGsoEcn);
  EXPECT_EQ(backend->sent_headers[0].gso_size, 1448);
  EXPECT_EQ(backend->sent_headers[0].csum_start, 34);
  EXPECT_EQ(backend->sent_headers[0].csum_offset, 16);
  // A segmentation the driver did not take (no HOST_TSO6 here) is refused.
  make(std::nullopt, true, kNetOffloads, kNetFHostTso6);
  send(f, kNetHdrNeedsCsum, kNetGsoTcpV6, 34, 16);
  ASSERT_TRUE(dev->queue_notify(NetDevice::kTxQueue).has_value());
  EXPECT_TRUE(backend->sent.empty());
  EXPECT_EQ(dev->counters().tx_malformed.load(), 1u);
}

TEST_F(NetTest, ReceivedOffloadsReachOnlyADriverThatTookThem) {
  make(std::nullopt, true, kNetOffloads);
  NetHeader big;
  big.flags = kNetHdrNeedsCsum;
  big.gso_type = kNetGsoTcpV4;
  big.hdr_len = 66;
  big.gso_size = 1448;
  big.csum_start = 34;
  big.csum_offset = 16;
  const auto f = frame(20000, 5);
  backend->incoming.push_back(f);
  backend->incoming_headers.push_back(big);
  const auto a = post_rx(32768);
  ASSERT_TRUE(dev->queue_notify(NetDevice::kRxQueue).has_value());
  ASSERT_EQ(rx->used_idx(), 1);
  const NetHeader got = header_at(a);
  EXPECT_EQ(got.flags, kNetHdrNeedsCsum);
  EXPECT_EQ(got.gso_type, kNetGsoTcpV4);
  EXPECT_EQ(got.hdr_len, 66);
  EXPECT_EQ(got.gso_size, 1448);
  EXPECT_EQ(got.csum_start, 34);
  EXPECT_EQ(got.csum_offset, 16);
  EXPECT_EQ(got.num_buffers, 1);
  EXPECT_EQ(guest(a + 12, f.size()), f);
  // A driver without GUEST_TSO4 never gets a segmented frame; one without GUEST_CSUM gets the
  // checksum completed and no flags (DATA_VALID included).
  make(std::nullopt, true, kNetOffloads, kNetGuestOffloads);
  backend->incoming.push_back(f);
  backend->incoming_headers.push_back(big);
  const auto partial = udp_frame_partial(500, 6);
  NetHeader csum;
  csum.flags = kNetHdrNeedsCsum | kNetHdrDataValid;
  csum.csum_start = 34;
  csum.csum_offset = 6;
  backend->incoming.push_back(partial);
  backend->incoming_headers.push_back(csum);
  const auto b = post_rx(32768);
  ASSERT_TRUE(dev->queue_notify(NetDevice::kRxQueue).has_value());
  EXPECT_EQ(dev->counters().rx_dropped.load(), 1u);
  ASSERT_EQ(rx->used_idx(), 1);
  EXPECT_EQ(header_at(b).flags, 0);
  EXPECT_EQ(header_at(b).gso_type, 0);
  EXPECT_EQ(verify_udp(guest(b + 12, partial.size())), 0);
  // With GUEST_CSUM, DATA_VALID passes.
  make();
  NetHeader valid;
  valid.flags = kNetHdrDataValid;
  backend->incoming.push_back(frame(100, 7));
  backend->incoming_headers.push_back(valid);
  const auto c = post_rx(2048);
  ASSERT_TRUE(dev->queue_notify(NetDevice::kRxQueue).has_value());
  EXPECT_EQ(header_at(c).flags, kNetHdrDataValid);
}

TEST_F(NetTest, AFrameTheBackEndCannotTakeIsDroppedAndCounted) {
  make();
  backend->full = true;
  send(frame(60, 5));
  ASSERT_TRUE(dev->queue_notify(NetDevice::kTxQueue).has_value());
  EXPECT_EQ(dev->counters().tx_dropped.load(), 1u);
  EXPECT_EQ(tx->used_idx(), 1);
  backend->full = false;
  send(frame(60, 6));
  ASSERT_TRUE(dev->queue_notify(NetDevice::kTxQueue).has_value());
  EXPECT_EQ(backend->sent.size(), 1u);
}

TEST_F(NetTest, AReceivedFrameFillsOneBufferAfterItsHeader) {
  make();
  const auto f = frame(1000, 7);
  backend->incoming.push_back(f);
  const auto at = post_rx(1526);
  ASSERT_TRUE(dev->queue_notify(NetDevice::kRxQueue).has_value());
  ASSERT_EQ(rx->used_idx(), 1);
  EXPECT_EQ(rx->used(0).len, 1012u);
  EXPECT_EQ(header_at(at).num_buffers, 1);
  EXPECT_EQ(header_at(at).flags, 0);
  EXPECT_EQ(guest(at + 12, 1000), f);
  EXPECT_EQ(irq.used[0], 1);
  EXPECT_EQ(dev->counters().rx_frames.load(), 1u);
}

TEST_F(NetTest, MergeableBuffersSpreadALargeFrameOverSeveralChains) {
  make();
  const auto f = frame(5000, 8);
  backend->incoming.push_back(f);
  const auto a = post_rx(2048), b = post_rx(2048), c = post_rx(2048), d = post_rx(2048);
  ASSERT_TRUE(dev->queue_notify(NetDevice::kRxQueue).has_value());
  ASSERT_EQ(rx->used_idx(), 3);
  EXPECT_EQ(header_at(a).num_buffers, 3);
  EXPECT_EQ(rx->used(0).len, 2048u);
  EXPECT_EQ(rx->used(1).len, 2048u);
  EXPECT_EQ(rx->used(2).len, 5012u - 4096u);
  std::vector<std::byte> got = guest(a + 12, 2036);
  auto more = guest(b, 2048);
  got.insert(got.end(), more.begin(), more.end());
  more = guest(c, 5012 - 4096);
  got.insert(got.end(), more.begin(), more.end());
  EXPECT_EQ(got, f);
  // The fourth buffer is kept for the next frame.
  backend->incoming.push_back(frame(100, 9));
  ASSERT_TRUE(dev->backend_ready().has_value());
  ASSERT_EQ(rx->used_idx(), 4);
  EXPECT_EQ(guest(d + 12, 100), frame(100, 9));
}

TEST_F(NetTest, WithoutMergeableBuffersAFrameTooBigForTheBufferIsDroppedAndTheBufferKept) {
  make(std::nullopt, /*mrg=*/false);
  backend->incoming.push_back(frame(3000, 10));
  backend->incoming.push_back(frame(200, 11));
  const auto at = post_rx(1526);
  ASSERT_TRUE(dev->queue_notify(NetDevice::kRxQueue).has_value());
  EXPECT_EQ(dev->counters().rx_dropped.load(), 1u);
  ASSERT_EQ(rx->used_idx(), 1);
  EXPECT_EQ(rx->used(0).len, 212u);
  EXPECT_EQ(guest(at + 12, 200), frame(200, 11));
  EXPECT_EQ(header_at(at).num_buffers, 1);
}

TEST_F(NetTest, AGuestWithoutBuffersLeavesFramesInTheBackEndUntilItPostsSome) {
  make();
  for (int i = 0; i < 5; ++i) backend->incoming.push_back(frame(100, static_cast<std::uint8_t>(20 + i)));
  ASSERT_TRUE(dev->backend_ready().has_value());
  // One frame waits in the device; the rest stay in the back end.
  EXPECT_EQ(backend->incoming.size(), 4u);
  EXPECT_EQ(dev->counters().rx_no_buffers.load(), 1u);
  EXPECT_EQ(rx->used_idx(), 0);
  EXPECT_EQ(rx->avail_event(), 0);  // the driver is asked to notify at its next buffer
  std::vector<std::uint64_t> at;
  for (int i = 0; i < 5; ++i) at.push_back(post_rx(2048));
  ASSERT_TRUE(dev->queue_notify(NetDevice::kRxQueue).has_value());
  ASSERT_EQ(rx->used_idx(), 5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(guest(at[static_cast<std::size_t>(i)] + 12, 100), frame(100, static_cast<std::uint8_t>(20 + i)));
  EXPECT_EQ(dev->counters().rx_dropped.load(), 0u);
}

// A back end whose fd announces only frames (a tap) is not watched while the guest has no buffers:
// a flood the guest cannot take does not wake the device once per frame. Its frames wait in the back
// end; the guest's notification brings them, and the fd is watched again.
TEST_F(NetTest, WithoutBuffersAFramesOnlyBackEndDoesNotWakeTheDeviceUntilTheGuestNotifies) {
  for (const bool only_frames : {true, false}) {
    SCOPED_TRACE(only_frames ? "frames only" : "with work of its own");
    const UniqueFd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    ASSERT_TRUE(efd);
    rx_n = 0;
    make(std::nullopt, true, 0, 0, efd.get(), only_frames);
    const std::uint64_t one = 1;
    auto arrive = [&](std::uint8_t seed) {
      backend->incoming.push_back(frame(100, seed));
      ASSERT_EQ(::write(efd.get(), &one, sizeof one), 8);
    };
    while (kicked()) ASSERT_TRUE(dev->backend_ready().has_value());  // activate()'s own kick
    arrive(30);
    EXPECT_TRUE(kicked());
    ASSERT_TRUE(dev->backend_ready().has_value());
    EXPECT_EQ(dev->counters().rx_no_buffers.load(), 1u);
    EXPECT_FALSE(kicked());
    arrive(31);
    arrive(32);
    // A back end with work of its own behind its fd is still watched: each arrival wakes the device.
    EXPECT_EQ(kicked(), !only_frames);
    while (kicked()) ASSERT_TRUE(dev->backend_ready().has_value());
    EXPECT_EQ(rx->used_idx(), 0);
    std::vector<std::uint64_t> at;
    for (int i = 0; i < 4; ++i) at.push_back(post_rx(2048));
    ASSERT_TRUE(dev->queue_notify(NetDevice::kRxQueue).has_value());
    ASSERT_EQ(rx->used_idx(), 3);
    for (int i = 0; i < 3; ++i)
      EXPECT_EQ(guest(at[static_cast<std::size_t>(i)] + 12, 100), frame(100, static_cast<std::uint8_t>(30 + i)));
    while (kicked()) ASSERT_TRUE(dev->backend_ready().has_value());
    // Watched again: the next frame wakes the device and reaches the buffer left.
    arrive(33);
    EXPECT_TRUE(kicked());
    ASSERT_TRUE(dev->backend_ready().has_value());
    ASSERT_EQ(rx->used_idx(), 4);
    EXPECT_EQ(guest(at[3] + 12, 100), frame(100, 33));
    dev.reset();  // before the fd it watches closes
  }
}

TEST_F(NetTest, AFloodIsServedInBoundedBatchesThroughTheDevicesOwnKick) {
  make();
  const int n = NetDevice::kBudget + 40;
  for (int i = 0; i < n; ++i) backend->incoming.push_back(frame(60, static_cast<std::uint8_t>(i)));
  for (int i = 0; i < n; ++i) post_rx(2048);
  ASSERT_TRUE(dev->backend_ready().has_value());
  while (kicked()) ASSERT_TRUE(dev->backend_ready().has_value());  // drains the kick
  EXPECT_EQ(rx->used_idx(), n);
  // Transmit the same way.
  // (one descriptor each: header and frame together, zeros)
  ASSERT_TRUE(mem.fill(GuestAddress{kBufs}, std::byte{0}, 72).has_value());
  for (int i = 0; i < NetDevice::kBudget + 10; ++i) tx->add_chain({{kBufs, 72}});
  ASSERT_TRUE(dev->queue_notify(NetDevice::kTxQueue).has_value());
  EXPECT_EQ(backend->sent.size(), static_cast<std::size_t>(NetDevice::kBudget));
  EXPECT_TRUE(kicked());
  ASSERT_TRUE(dev->backend_ready().has_value());
  EXPECT_EQ(backend->sent.size(), static_cast<std::size_t>(NetDevice::kBudget + 10));
}

TEST_F(NetTest, AResetForgetsTheQueuesAndTheHeldFrame) {
  make();
  backend->incoming.push_back(frame(100, 1));
  ASSERT_TRUE(dev->backend_ready().has_value());
  dev->reset();
  EXPECT_EQ(dev->counters().rx_dropped.load(), 1u);
  EXPECT_TRUE(dev->backend_ready().has_value());  // inactive: nothing to do, no crash
  EXPECT_TRUE(dev->queue_notify(NetDevice::kTxQueue).has_value());
}

TEST_F(NetTest, ABrokenReceiveQueueIsAnError) {
  make();
  rx->write_descriptor(0, kBufs, 2048, kDescWrite | kDescNext, 0);  // loops on itself
  rx->make_available(0);
  backend->incoming.push_back(frame(100, 1));
  EXPECT_FALSE(dev->queue_notify(NetDevice::kRxQueue).has_value());
}

TEST(NetChecksum, CompletesTheInternetChecksumAtTheOffset) {
  // An IPv4 header with its checksum field zero: the completed header sums to 0xffff.
  std::vector<std::uint8_t> h = {0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7};
  std::vector<std::byte> f(14 + h.size());
  std::memcpy(f.data() + 14, h.data(), h.size());
  ASSERT_TRUE(complete_checksum(f, 14, 10));
  EXPECT_EQ(f[24], std::byte{0xb8});
  EXPECT_EQ(f[25], std::byte{0x61});
  EXPECT_FALSE(complete_checksum(f, 30, 10));
  EXPECT_FALSE(complete_checksum(f, 100, 0));
}

// Against the definition (textbook_checksum), on random frames, starts and offsets: every length's
// tail and every alignment.
TEST(NetChecksum, MatchesTheTextbookSumOnRandomFrames) {
  std::mt19937 rng(7);
  for (int round = 0; round < 3000; ++round) {
    const std::size_t len = 1 + rng() % (round < 2900 ? 200 : 65536);
    std::vector<std::byte> f(len);
    for (auto& b : f) b = static_cast<std::byte>(rng());
    if (round % 7 == 0) std::fill(f.begin(), f.end(), std::byte{0xff});  // carries on every word
    const auto start = static_cast<std::uint16_t>(rng() % len);
    if (std::size_t{start} + 2 > len) continue;
    const auto offset = static_cast<std::uint16_t>(rng() % (len - start - 1));
    auto want = f;
    const std::uint16_t c = textbook_checksum(want, start, 0);
    want[start + offset] = static_cast<std::byte>(c >> 8);
    want[start + offset + 1] = static_cast<std::byte>(c & 0xff);
    ASSERT_TRUE(complete_checksum(f, start, offset));
    ASSERT_EQ(f, want) << "length " << len << ", start " << start << ", offset " << offset;
  }
}

TEST(NetAddresses, MacAddressesAreSixHexBytesAndUnicast) {
  auto m = parse_mac("06:00:AC:10:00:02");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(format_mac(*m), "06:00:ac:10:00:02");
  for (const char* bad : {"", "06:00:ac:10:00", "06:00:ac:10:00:0g", "06-00-ac-10-00-02", "06:00:ac:10:00:022"}) {
    auto r = parse_mac(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_NE(r.error().message().find("not a MAC address"), std::string::npos) << r.error().message();
  }
  auto multicast = parse_mac("01:00:5e:00:00:01");
  ASSERT_FALSE(multicast.has_value());
  EXPECT_NE(multicast.error().message().find("multicast"), std::string::npos);
}

TEST(NetAddresses, HostForwardsTakeQemusForm) {
  auto f = parse_hostfwd("tcp::8080-:80");
  ASSERT_TRUE(f.has_value()) << f.error().message();
  EXPECT_FALSE(f->udp);
  EXPECT_EQ(f->host_addr, 0u);
  EXPECT_EQ(f->host_port, 8080);
  EXPECT_EQ(f->guest_port, 80);
  EXPECT_EQ(format_hostfwd(*f), "tcp::8080-:80");
  auto g = parse_hostfwd("udp:127.0.0.1:5353-10.0.2.15:53");
  ASSERT_TRUE(g.has_value()) << g.error().message();
  EXPECT_TRUE(g->udp);
  EXPECT_EQ(format_hostfwd(*g), "udp:127.0.0.1:5353-:53");
  EXPECT_TRUE(parse_hostfwd("::2222-:22").has_value());  // tcp by default, as QEMU
  for (const char* bad : {"tcp", "tcp:8080:80", "sctp::1-:2", "tcp::0-:80", "tcp::8080-:65536", "tcp::80x-:80",
                          "tcp:1.2.3:8080-:80", "tcp::8080-10.0.2.16:80", "tcp::8080-80"}) {
    auto r = parse_hostfwd(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_NE(r.error().message().find("hostfwd"), std::string::npos);
  }
}

}  // namespace
}  // namespace kiln::virtio
