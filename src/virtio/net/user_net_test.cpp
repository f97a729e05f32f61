#include "virtio/net/user_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "virtio/net/test_frames.h"

namespace kiln::virtio {
namespace {

using namespace testing;

TEST(UserNet, TheGatewayAnswersTheGuestsArp) {
  auto b = UserNetBackend::create({});
  ASSERT_TRUE(b.has_value()) << b.error().message();
  ASSERT_TRUE((*b)->send(NetHeader{}, arp_request(UserNetBackend::kHostAddr)).value());
  const auto reply = wait_frame(**b, [](const std::vector<std::byte>& f) {
    return f.size() >= 42 && u8(f, 12) == 0x08 && u8(f, 13) == 0x06 && u8(f, 21) == 2;
  });
  ASSERT_FALSE(reply.empty()) << "no ARP reply from 10.0.2.2 within 5 s";
  EXPECT_EQ(std::memcmp(reply.data(), kGuestMac, 6), 0);  // to the guest
  in_addr sender{};
  std::memcpy(&sender, reply.data() + 28, 4);
  EXPECT_STREQ(::inet_ntoa(sender), UserNetBackend::kHostAddr);
}

TEST(UserNet, AConnectionToAForwardedPortReachesTheGuestSide) {
  // A free port: bind to 0, read it, close.
  const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::uint16_t port = ntohs(a.sin_port);
  ::close(probe);
  auto fwd = parse_hostfwd(fmt::format("tcp:127.0.0.1:{}-:80", port));
  ASSERT_TRUE(fwd.has_value());
  auto b = UserNetBackend::create({*fwd});
  ASSERT_TRUE(b.has_value()) << b.error().message();
  const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  (void)::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
  // slirp asks who 10.0.2.15 is (ARP) before its SYN can go out: either is the connection
  // arriving on the guest's side.
  const auto f = wait_frame(**b, [](const std::vector<std::byte>& fr) {
    const bool arp_for_guest = fr.size() >= 42 && u8(fr, 12) == 0x08 && u8(fr, 13) == 0x06 && u8(fr, 21) == 1 &&
                               u8(fr, 38) == 10 && u8(fr, 39) == 0 && u8(fr, 40) == 2 && u8(fr, 41) == 15;
    const bool syn = fr.size() >= 54 && u8(fr, 12) == 0x08 && u8(fr, 13) == 0 && u8(fr, 23) == 6 &&
                     (u8(fr, 36) << 8 | u8(fr, 37)) == 80 && (u8(fr, 47) & 0x02);
    return arp_for_guest || syn;
  });
  ::close(c);
  EXPECT_FALSE(f.empty()) << "nothing reached the guest's side within 5 s";
}

TEST(UserNet, AForwardToAPortInUseIsAnErrorNamingIt) {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(s, 1), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::uint16_t port = ntohs(a.sin_port);
  auto fwd = parse_hostfwd(fmt::format("tcp:127.0.0.1:{}-:80", port));
  ASSERT_TRUE(fwd.has_value());
  auto b = UserNetBackend::create({*fwd});
  ::close(s);
  ASSERT_FALSE(b.has_value());
  EXPECT_NE(b.error().message().find(std::to_string(port)), std::string::npos) << b.error().message();
}

TEST(UserNet, AGuestThatStopsReadingCostsAtMostTheQueuesBound) {
  auto b = UserNetBackend::create({});
  ASSERT_TRUE(b.has_value());
  // Many ARP requests, never read: slirp answers each at once, and the replies beyond the bound
  // are dropped and counted.
  for (int i = 0; i < 3000; ++i) {
    auto r = (*b)->send(NetHeader{}, arp_request(UserNetBackend::kHostAddr));
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(*r);
  }
  ASSERT_TRUE((*b)->service().has_value());
  EXPECT_TRUE((*b)->rx_pending());
  EXPECT_EQ((*b)->counters().to_guest_dropped.load(), 3000u - UserNetBackend::kQueueFrames);
  std::vector<std::byte> buf(kRxBufferSize);
  std::size_t queued = 0;
  while ((*b)->receive(buf).value() > 0) ++queued;
  EXPECT_EQ(queued, UserNetBackend::kQueueFrames);
  EXPECT_FALSE((*b)->rx_pending());
}

}  // namespace
}  // namespace kiln::virtio
