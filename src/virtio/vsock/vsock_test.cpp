#include "virtio/vsock/vsock.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "virtio/queue/mock_driver.h"

namespace kiln::virtio {
namespace {

constexpr std::uint64_t kRxRing = 0x10000, kTxRing = 0x20000, kEvRing = 0x30000;
constexpr std::uint64_t kBufs = 0x100000;
constexpr std::uint64_t kCid = 42;

class NullInterrupt : public VirtioInterrupt {
 public:
  void used_buffers(std::uint16_t) override {}
  void config_changed() override {}
};

// A Unix stream socket at `path`: listening, or connected to it.
UniqueFd unix_socket(const std::string& path, bool listen) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  const auto* sa = reinterpret_cast<const sockaddr*>(&a);
  const bool ok = listen ? ::bind(fd.get(), sa, sizeof a) == 0 && ::listen(fd.get(), 8) == 0
                         : ::connect(fd.get(), sa, sizeof a) == 0;
  EXPECT_TRUE(ok) << path;
  return fd;
}
UniqueFd unix_listen(const std::string& path) { return unix_socket(path, true); }
UniqueFd unix_connect(const std::string& path) { return unix_socket(path, false); }

// What is readable on `fd` within 2 s (at most `max` bytes), or "" on EOF or nothing.
std::string read_some(int fd, std::size_t max = 1 << 20) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 2000) != 1) return {};
  std::string out(max, '\0');
  const ssize_t n = ::recv(fd, out.data(), max, MSG_DONTWAIT);
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

struct Packet {
  VsockHeader h;
  std::string payload;
};

class VsockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "kiln-vsock-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
    uds_ = dir_ + "/v.sock";
    std::filesystem::remove(uds_);
    auto d = VsockDevice::create({.guest_cid = kCid, .uds_path = uds_});
    ASSERT_TRUE(d.has_value()) << d.error().message();
    dev = std::move(*d);
    queues.clear();
    for (int i = 0; i < 3; ++i) queues.emplace_back(256);
    rx = std::make_unique<MockDriver>(mem, queues[0], 256, kRxRing);
    tx = std::make_unique<MockDriver>(mem, queues[1], 256, kTxRing);
    ev = std::make_unique<MockDriver>(mem, queues[2], 256, kEvRing);
    for (auto& q : queues) q.set_features(dev->features());
    ASSERT_TRUE(dev->activate({.mem = &mem, .queues = queues, .interrupt = &irq, .features = dev->features()}));
  }
  void TearDown() override {
    dev.reset();
    listeners_.clear();
    std::filesystem::remove_all(dir_);
  }

  // A packet from the guest: the header in one descriptor, the payload in another.
  void send(std::uint16_t op, std::uint32_t src_port, std::uint32_t dst_port, std::string_view payload = {},
            std::uint32_t flags = 0, std::uint32_t buf_alloc = 1 << 20, std::uint32_t fwd_cnt = 0,
            std::uint64_t src_cid = kCid) {
    VsockHeader h;
    h.src_cid = src_cid;
    h.dst_cid = vsock::kHostCid;
    h.src_port = src_port;
    h.dst_port = dst_port;
    h.len = static_cast<std::uint32_t>(payload.size());
    h.type = vsock::kTypeStream;
    h.op = op;
    h.flags = flags;
    h.buf_alloc = buf_alloc;
    h.fwd_cnt = fwd_cnt;
    const std::uint64_t at = kBufs + 0x20000ull * (tx_n++ % 16);
    ASSERT_TRUE(mem.write_obj(GuestAddress{at}, h));
    std::vector<MockDriver::Segment> segs{{at, sizeof h}};
    if (!payload.empty()) {
      ASSERT_TRUE(mem.write(GuestAddress{at + 64}, std::as_bytes(std::span(payload.data(), payload.size()))));
      segs.push_back({at + 64, static_cast<std::uint32_t>(payload.size())});
    }
    tx->add_chain(segs);
    ASSERT_TRUE(dev->queue_notify(VsockDevice::kTxQueue));
  }
  // Receive buffers (header and 4 KiB, as Linux's driver posts them), `n` of them.
  void post_rx(int n, std::uint32_t len = 4096 + 44) {
    for (int i = 0; i < n; ++i) {
      const std::uint64_t at = kBufs + 0x400000 + 0x20000ull * (rx_posted++ % 64);
      rx->add_chain({{at, len, true}});
    }
    ASSERT_TRUE(dev->queue_notify(VsockDevice::kRxQueue));
  }
  // The packets the device returned since the last call (wait_op's leftovers first).
  std::vector<Packet> received() {
    std::vector<Packet> out = std::move(leftover_);
    leftover_.clear();
    for (; rx_seen != rx->used_idx(); ++rx_seen) {
      const auto e = rx->used(rx_seen);
      const std::uint64_t at = kBufs + 0x400000 + 0x20000ull * (rx_seen % 64);
      Packet p;
      p.h = mem.read_obj<VsockHeader>(GuestAddress{at}).value();
      EXPECT_EQ(e.len, sizeof(VsockHeader) + p.h.len);
      p.payload.resize(p.h.len);
      EXPECT_TRUE(mem.read(GuestAddress{at + sizeof(VsockHeader)}, std::as_writable_bytes(std::span(p.payload))));
      out.push_back(std::move(p));
    }
    return out;
  }
  // Lets the device see its sockets (the VMM loop would call this on event_fd()).
  void pump() {
    pollfd p{dev->event_fd(), POLLIN, 0};
    ::poll(&p, 1, 200);
    ASSERT_TRUE(dev->backend_ready());
  }
  // Pumps until a packet with `op` arrives (2 s at most); all packets seen go to `seen`.
  // The packets after it stay for the next received().
  std::optional<Packet> wait_op(std::uint16_t op) {
    for (int i = 0; i < 20; ++i) {
      auto got = received();
      for (std::size_t k = 0; k < got.size(); ++k) {
        if (got[k].h.op != op) continue;
        leftover_.assign(got.begin() + static_cast<std::ptrdiff_t>(k) + 1, got.end());
        return got[k];
      }
      pump();
    }
    return std::nullopt;
  }
  std::vector<Packet> leftover_;

  // A guest connection from `guest_port` to the host's `port`, a listener there accepting it: the
  // host's end (receive buffers posted first).
  UniqueFd guest_connection(std::uint32_t guest_port, std::uint32_t port, std::uint32_t buf_alloc = 1 << 20) {
    listeners_.push_back(unix_listen(uds_ + "_" + std::to_string(port)));
    post_rx(64);
    send(vsock::kRequest, guest_port, port, {}, 0, buf_alloc);
    EXPECT_TRUE(wait_op(vsock::kResponse));
    return UniqueFd(::accept(listeners_.back().get(), nullptr, nullptr));
  }

  std::vector<UniqueFd> listeners_;
  std::string dir_, uds_;
  GuestMemory mem = std::move(GuestMemory::create(std::vector<RegionLayout>{{0, 0x2000000}}).value());
  std::unique_ptr<VsockDevice> dev;
  std::vector<Queue> queues;
  std::unique_ptr<MockDriver> rx, tx, ev;
  NullInterrupt irq;
  int tx_n = 0, rx_posted = 0;
  std::uint16_t rx_seen = 0;
};

TEST(Vsock, ConfigAndBadInput) {
  const std::string path = ::testing::TempDir() + "kiln-vsock-cfg-" + std::to_string(::getpid());
  std::filesystem::remove(path);
  auto low = VsockDevice::create({.guest_cid = 2, .uds_path = path});
  ASSERT_FALSE(low);
  EXPECT_NE(low.error().message().find("guest_cid 2"), std::string::npos) << low.error().message();
  auto d = VsockDevice::create({.guest_cid = 0x1234567, .uds_path = path});
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ((*d)->queue_max_sizes().size(), 3u);
  std::array<std::byte, 8> cfg{};
  (*d)->read_config(0, cfg);
  std::uint64_t cid = 0;
  std::memcpy(&cid, cfg.data(), 8);
  EXPECT_EQ(cid, 0x1234567u);
  auto again = VsockDevice::create({.guest_cid = 3, .uds_path = path});  // the path exists now
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message().find("already exists"), std::string::npos) << again.error().message();
  d->reset();
  EXPECT_FALSE(std::filesystem::exists(path)) << "removed with the device";
}

TEST_F(VsockTest, AGuestConnectionReachesTheHostsSocketAndHalfClosesBothWays) {
  UniqueFd listener = unix_listen(uds_ + "_5000");
  post_rx(16);
  send(vsock::kRequest, 1234, 5000);
  auto resp = wait_op(vsock::kResponse);
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->h.src_port, 5000u);
  EXPECT_EQ(resp->h.dst_port, 1234u);
  EXPECT_EQ(resp->h.dst_cid, kCid);
  EXPECT_EQ(resp->h.buf_alloc, VsockDevice::kBufAlloc);
  UniqueFd host(::accept(listener.get(), nullptr, nullptr));
  ASSERT_TRUE(host);
  send(vsock::kRw, 1234, 5000, "hello host");
  EXPECT_EQ(read_some(host.get()), "hello host");
  ASSERT_EQ(::write(host.get(), "hello guest", 11), 11);
  auto rw = wait_op(vsock::kRw);
  ASSERT_TRUE(rw);
  EXPECT_EQ(rw->payload, "hello guest");
  // The guest stops sending: the host reads EOF, and can still send.
  send(vsock::kShutdown, 1234, 5000, {}, vsock::kShutdownSend);
  char c = 0;
  EXPECT_EQ(::recv(host.get(), &c, 1, 0), 0);
  ASSERT_EQ(::write(host.get(), "more", 4), 4);
  rw = wait_op(vsock::kRw);
  ASSERT_TRUE(rw);
  EXPECT_EQ(rw->payload, "more");
  // The host stops too: the guest gets SHUTDOWN(SEND); then the guest closes and gets its RST.
  ::shutdown(host.get(), SHUT_WR);
  auto shut = wait_op(vsock::kShutdown);
  ASSERT_TRUE(shut);
  EXPECT_EQ(shut->h.flags, vsock::kShutdownSend);
  send(vsock::kShutdown, 1234, 5000, {}, vsock::kShutdownSend | vsock::kShutdownRcv);
  ASSERT_TRUE(wait_op(vsock::kRst));
  EXPECT_EQ(dev->connection_count(), 0u);
  EXPECT_EQ(dev->counters().connections.load(), 1u);
}

TEST_F(VsockTest, NothingListeningIsRefusedWithAnRst) {
  post_rx(4);
  send(vsock::kRequest, 1234, 6000);
  auto rst = wait_op(vsock::kRst);
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->h.src_port, 6000u);
  EXPECT_EQ(rst->h.dst_port, 1234u);
  EXPECT_EQ(dev->counters().refused.load(), 1u);
  // A packet for no connection gets an RST too; an RST for none gets nothing.
  send(vsock::kRw, 77, 88, "stray");
  ASSERT_TRUE(wait_op(vsock::kRst));
  send(vsock::kRst, 77, 88);
  pump();
  EXPECT_TRUE(received().empty());
}

TEST_F(VsockTest, AHostConnectionAsksTheGuestThenCarriesBytes) {
  post_rx(16);
  UniqueFd host = unix_connect(uds_);
  ASSERT_EQ(::write(host.get(), "CONNECT 52\n", 11), 11);
  auto req = wait_op(vsock::kRequest);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->h.dst_port, 52u);
  EXPECT_EQ(req->h.dst_cid, kCid);
  const std::uint32_t host_port = req->h.src_port;
  EXPECT_GE(host_port, 1u << 30);
  send(vsock::kResponse, 52, host_port);
  EXPECT_EQ(read_some(host.get()), "OK " + std::to_string(host_port) + "\n");
  ASSERT_EQ(::write(host.get(), "ping", 4), 4);
  auto rw = wait_op(vsock::kRw);
  ASSERT_TRUE(rw);
  EXPECT_EQ(rw->payload, "ping");
  send(vsock::kRw, 52, host_port, "pong");
  EXPECT_EQ(read_some(host.get()), "pong");
  // The guest resets: the host sees the connection end.
  send(vsock::kRst, 52, host_port);
  EXPECT_EQ(read_some(host.get()), "");
  EXPECT_EQ(dev->connection_count(), 0u);
}

TEST_F(VsockTest, ABadConnectLineOrAGuestThatNeverAnswersClosesTheHostSide) {
  post_rx(8);
  UniqueFd bad = unix_connect(uds_);
  ASSERT_EQ(::write(bad.get(), "HELLO 52\n", 9), 9);
  pump();
  EXPECT_EQ(read_some(bad.get()), "");  // closed
  UniqueFd host = unix_connect(uds_);
  ASSERT_EQ(::write(host.get(), "CONNECT 9\n", 10), 10);
  ASSERT_TRUE(wait_op(vsock::kRequest));
  std::this_thread::sleep_for(VsockDevice::kConnectTimeout + std::chrono::milliseconds(200));
  pump();
  auto rst = wait_op(vsock::kRst);
  ASSERT_TRUE(rst) << "the REQUEST is withdrawn";
  EXPECT_EQ(read_some(host.get()), "");
  EXPECT_EQ(dev->connection_count(), 0u);
}

TEST_F(VsockTest, KilnSendsNoMoreThanTheGuestsCredit) {
  UniqueFd host = guest_connection(99, 5001, /*buf_alloc=*/10000);
  const std::string big(100000, 'x');
  ASSERT_EQ(::send(host.get(), big.data(), big.size(), MSG_DONTWAIT), static_cast<ssize_t>(big.size()));
  std::size_t got = 0;
  for (int i = 0; i < 5; ++i) {
    pump();
    for (auto& p : received()) got += p.payload.size();
  }
  EXPECT_EQ(got, 10000u) << "exactly the guest's buffer, no more";
  // The guest forwarded 6000 of them: 6000 more may come.
  send(vsock::kCreditUpdate, 99, 5001, {}, 0, 10000, 6000);
  for (int i = 0; i < 5; ++i) {
    pump();
    for (auto& p : received()) got += p.payload.size();
  }
  EXPECT_EQ(got, 16000u);
}

TEST_F(VsockTest, AHostPeerThatStopsReadingCostsAtMostTheGrantedCredit) {
  UniqueFd host = guest_connection(7, 5002);
  // The guest sends its whole credit (256 KiB) while the host reads nothing: all kept.
  const std::string chunk(32 * 1024, 'y');
  std::size_t sent = 0;
  for (; sent < VsockDevice::kBufAlloc; sent += chunk.size()) send(vsock::kRw, 7, 5002, chunk);
  EXPECT_EQ(dev->connection_count(), 1u);
  EXPECT_EQ(dev->counters().resets.load(), 0u);
  // A guest that goes on past its credit (ignoring that kiln forwarded nothing more than the host
  // socket's own buffer took) is reset once kiln would hold more than the credit it granted.
  while (dev->counters().resets.load() == 0 && sent < (4u << 20)) {
    send(vsock::kRw, 7, 5002, chunk);
    sent += chunk.size();
  }
  EXPECT_EQ(dev->counters().resets.load(), 1u);
  EXPECT_LE(sent, VsockDevice::kBufAlloc + (1u << 20)) << "the credit and the host socket's buffer, no more";
  ASSERT_TRUE(wait_op(vsock::kRst));
  EXPECT_EQ(dev->connection_count(), 0u);
}

TEST_F(VsockTest, TheHostReadingGivesTheGuestCreditBack) {
  UniqueFd host = guest_connection(8, 5003);
  const std::string chunk(40 * 1024, 'q');
  send(vsock::kRw, 8, 5003, chunk);
  send(vsock::kRw, 8, 5003, chunk);  // 80 KiB: past a quarter of the window
  std::size_t read = 0;
  while (read < 2 * chunk.size()) {
    const std::string s = read_some(host.get());
    ASSERT_FALSE(s.empty());
    read += s.size();
  }
  auto credit = wait_op(vsock::kCreditUpdate);
  ASSERT_TRUE(credit);
  EXPECT_EQ(credit->h.fwd_cnt, 2 * chunk.size());
  // Asked for, it comes too.
  send(vsock::kCreditRequest, 8, 5003);
  ASSERT_TRUE(wait_op(vsock::kCreditUpdate));
}

TEST_F(VsockTest, MalformedPacketsAreCountedAndTheDeviceGoesOn) {
  post_rx(8);
  tx->add_chain({{kBufs, 20}});  // shorter than a header
  ASSERT_TRUE(dev->queue_notify(VsockDevice::kTxQueue));
  send(vsock::kRequest, 1, 2, {}, 0, 1 << 20, 0, /*src_cid=*/7);  // not this guest's CID
  VsockHeader h;
  h.src_cid = kCid;
  h.dst_cid = vsock::kHostCid;
  h.len = 5000;  // more than the chain holds
  h.op = vsock::kRw;
  h.type = vsock::kTypeStream;
  ASSERT_TRUE(mem.write_obj(GuestAddress{kBufs + 0x100000}, h));
  tx->add_chain({{kBufs + 0x100000, sizeof h}});
  ASSERT_TRUE(dev->queue_notify(VsockDevice::kTxQueue));
  EXPECT_EQ(dev->counters().tx_malformed.load(), 3u);
  UniqueFd listener = unix_listen(uds_ + "_5004");
  send(vsock::kRequest, 3, 5004);
  EXPECT_TRUE(wait_op(vsock::kResponse)) << "still serving";
}

}  // namespace
}  // namespace kiln::virtio
