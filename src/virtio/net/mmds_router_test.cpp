// The metadata service's path through a network interface: the guest's frames for its address are
// taken off the back end's way and answered by the service's own network stack, which carries
// TCP to kiln's HTTP server and the MMDS answers back, while every other frame reaches the back
// end as it was.
#include "virtio/net/mmds_router.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <deque>
#include <filesystem>

#include "api/http_server.h"
#include "mmds/service.h"
#include "virtio/net/test_frames.h"

namespace kiln::virtio {
namespace {

using namespace testing;

constexpr const char* kService = "169.254.169.254";

// The interface's own back end: keeps what it is sent, has nothing to receive.
struct FakeBackend : NetBackend {
  FakeBackend() : fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  std::string describe() const override { return "fake"; }
  std::uint64_t offloads() const override { return kNetOffloads; }
  Result<bool> send(const NetHeader&, std::span<const std::byte> f) override {
    sent->emplace_back(f.begin(), f.end());
    return true;
  }
  Result<std::size_t> receive(std::span<std::byte>) override { return 0; }
  int rx_fd() const override { return fd.get(); }
  UniqueFd fd;
  std::shared_ptr<std::deque<std::vector<std::byte>>> sent = std::make_shared<std::deque<std::vector<std::byte>>>();
};

std::uint32_t ipv4(const char* text) {
  in_addr a{};
  ::inet_pton(AF_INET, text, &a);
  return a.s_addr;
}

class MmdsRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-mmds-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(store_.put(nlohmann::json::parse(R"({"latest": {"meta-data": {"ami-id": "ami-1"}}})")));
    auto server = api::HttpServer::start(dir_ + "/mmds.sock", [this](const api::HttpRequest& r) { return service_.handle(r); },
                                         {.what = "metadata service"});
    ASSERT_TRUE(server.has_value()) << server.error().message();
    server_ = std::move(*server);
    auto stack = UserNetBackend::create_service(ipv4(kService), 80, dir_ + "/mmds.sock");
    ASSERT_TRUE(stack.has_value()) << stack.error().message();
    auto fake = std::make_unique<FakeBackend>();
    sent_ = fake->sent;
    auto router = MmdsRouter::create(std::move(fake), std::move(*stack));
    ASSERT_TRUE(router.has_value()) << router.error().message();
    router_ = std::move(*router);
  }
  void TearDown() override {
    router_.reset();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The guest's side of one TCP connection to the service, far enough for HTTP requests.
  struct Conn {
    MmdsRouterTest& t;
    std::uint8_t mac[6] = {};
    std::uint16_t port;
    std::uint32_t seq = 1000, ack = 0;
    // Leaves each TCP checksum to kiln (NEEDS_CSUM, the field holding the pseudo-header's sum), as a
    // driver that took CSUM does; the service's stack drops a segment with a wrong one.
    bool partial = false;

    bool for_us(const std::vector<std::byte>& f) const {
      return f.size() >= 54 && u8(f, 12) == 0x08 && u8(f, 13) == 0 && u8(f, 23) == 6 && u16(f, 36) == port;
    }
    void send(std::uint8_t flags, std::string_view payload = {}) {
      auto f = tcp_frame(mac, {kService, port, 80, seq, ack, flags, payload});
      NetHeader h;
      if (partial) {
        auto* p = reinterpret_cast<std::uint8_t*>(f.data());
        const std::size_t tcp_len = f.size() - 34;
        std::uint8_t pseudo[12] = {};
        std::memcpy(pseudo, p + 26, 8);
        pseudo[9] = 6, pseudo[10] = static_cast<std::uint8_t>(tcp_len >> 8), pseudo[11] = static_cast<std::uint8_t>(tcp_len);
        const auto folded = static_cast<std::uint16_t>(~fold(sum16(pseudo, 12)));
        p[50] = static_cast<std::uint8_t>(folded >> 8), p[51] = static_cast<std::uint8_t>(folded);
        h.flags = kNetHdrNeedsCsum;
        h.csum_start = 34;
        h.csum_offset = 16;
      }
      ASSERT_TRUE(t.router_->send(h, f).value());
      seq += static_cast<std::uint32_t>(payload.size()) + ((flags & 0x03) ? 1 : 0);
    }
    // Sends the request and gathers the answer's bytes until a whole HTTP response is in.
    std::string request(std::string_view text) {
      send(0x18, text);
      std::string got;
      while (true) {
        const auto f = wait_frame(*t.router_, [this](const auto& fr) { return for_us(fr); });
        if (f.empty()) return got;  // timed out
        const std::size_t ip_len = u16(f, 16), hdr = 14 + 20 + (u8(f, 46) >> 4) * 4u;
        const std::size_t len = 14 + ip_len - hdr;
        const std::uint32_t their_seq = static_cast<std::uint32_t>(u16(f, 38)) << 16 | u16(f, 40);
        if (len > 0 && their_seq == ack) {
          got.append(reinterpret_cast<const char*>(f.data()) + hdr, len);
          ack += static_cast<std::uint32_t>(len);
          send(0x10);
        }
        const auto end = got.find("\r\n\r\n");
        const auto cl = got.find("Content-Length: ");
        if (end != std::string::npos && cl != std::string::npos &&
            got.size() >= end + 4 + std::stoul(got.substr(cl + 16)))
          return got;
      }
    }
    static std::string body(const std::string& response) { return response.substr(response.find("\r\n\r\n") + 4); }
  };

  // Opens a connection: SYN, the stack's SYN-ACK, ACK. `mac`: where the guest sends it (the
  // service's MAC from ARP, or its gateway's: the stack takes either).
  void connect(Conn& c) {
    c.send(0x02);
    const auto synack = wait_frame(*router_, [&](const auto& f) {
      if (is_arp(f, 1)) {  // the stack asks who the guest is (it has not heard from it yet)
        EXPECT_TRUE(router_->send(NetHeader{}, arp_reply(f)).value());
        return false;
      }
      return c.for_us(f) && (u8(f, 47) & 0x12) == 0x12;
    });
    ASSERT_FALSE(synack.empty()) << "no SYN-ACK from the metadata service within 5 s";
    c.ack = (static_cast<std::uint32_t>(u16(synack, 38)) << 16 | u16(synack, 40)) + 1;
    c.send(0x10);
  }

  std::string dir_;
  mmds::DataStore store_;
  mmds::Service service_{store_, mmds::Version::kV2};
  std::unique_ptr<api::HttpServer> server_;
  std::unique_ptr<MmdsRouter> router_;
  std::shared_ptr<std::deque<std::vector<std::byte>>> sent_;
};

TEST(MmdsRouterFrames, OnlyFramesForTheServiceAreTaken) {
  const std::uint32_t svc = ipv4(kService), own = ipv4("169.254.169.1");
  EXPECT_TRUE(MmdsRouter::for_service(arp_request(kService), svc, own));
  EXPECT_TRUE(MmdsRouter::for_service(arp_request("169.254.169.1"), svc, own));
  EXPECT_FALSE(MmdsRouter::for_service(arp_request("10.0.2.2"), svc, own));
  const std::uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
  EXPECT_TRUE(MmdsRouter::for_service(tcp_frame(mac, {kService, 4000, 80, 1, 0, 2}), svc, own));
  EXPECT_TRUE(MmdsRouter::for_service(tcp_frame(mac, {kService, 4000, 8080, 1, 0, 2}), svc, own));
  EXPECT_FALSE(MmdsRouter::for_service(tcp_frame(mac, {"169.254.169.1", 4000, 80, 1, 0, 2}), svc, own));
  EXPECT_FALSE(MmdsRouter::for_service(tcp_frame(mac, {"10.0.2.2", 4000, 80, 1, 0, 2}), svc, own));
  // Truncated frames are not (and are not read past their end).
  auto arp = arp_request(kService);
  arp.resize(41);
  EXPECT_FALSE(MmdsRouter::for_service(arp, svc, own));
  auto tcp = tcp_frame(mac, {kService, 4000, 80, 1, 0, 2});
  tcp.resize(33);
  EXPECT_FALSE(MmdsRouter::for_service(tcp, svc, own));
  EXPECT_FALSE(MmdsRouter::for_service({}, svc, own));
}

TEST_F(MmdsRouterTest, TheServiceAnswersArpAndOtherFramesReachTheBackEnd) {
  ASSERT_TRUE(router_->send(NetHeader{}, arp_request(kService)).value());
  const auto reply = wait_frame(*router_, [](const auto& f) { return is_arp(f, 2); });
  ASSERT_FALSE(reply.empty()) << "no ARP answer for the metadata service within 5 s";
  EXPECT_EQ(std::memcmp(reply.data(), kGuestMac, 6), 0);
  const std::uint32_t service = ipv4(kService);
  EXPECT_EQ(std::memcmp(reply.data() + 28, &service, 4), 0) << "answered for the service";
  EXPECT_TRUE(sent_->empty()) << "the service's frames never reach the back end";
  ASSERT_TRUE(router_->send(NetHeader{}, arp_request("10.0.2.2")).value());
  ASSERT_EQ(sent_->size(), 1u);
  EXPECT_EQ(sent_->front(), arp_request("10.0.2.2"));
  EXPECT_EQ(router_->service_frames(), 1u);
}

TEST_F(MmdsRouterTest, TheV2TokenDanceOverTcpFromAGuestOnAnotherNetwork) {
  // Sent to its gateway's MAC, as a guest with only a default route does: no ARP for the service,
  // so the stack asks who the guest is first (answered in connect()). Every segment's checksum is
  // left to kiln (the router completes it: the back end would take it so, the service's stack not).
  Conn c{*this};
  c.mac[0] = 0x52, c.mac[1] = 0x55, c.mac[5] = 2;
  c.port = 40001;
  c.partial = true;
  ASSERT_NO_FATAL_FAILURE(connect(c));
  const std::string token_answer =
      c.request("PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n");
  ASSERT_EQ(token_answer.rfind("HTTP/1.1 200", 0), 0u) << token_answer;
  const std::string token = Conn::body(token_answer);
  ASSERT_EQ(token.size(), 64u) << token_answer;
  const std::string unauthorized = c.request("GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(unauthorized.rfind("HTTP/1.1 401", 0), 0u) << unauthorized;
  const std::string answer =
      c.request("GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: x\r\nX-metadata-token: " + token + "\r\n\r\n");
  ASSERT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  EXPECT_EQ(Conn::body(answer), "ami-1");
  EXPECT_TRUE(sent_->empty()) << "nothing for the service reached the back end";
}

}  // namespace
}  // namespace kiln::virtio
