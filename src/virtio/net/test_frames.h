#pragma once
// For the network tests: frames a guest would send (ARP, TCP over IPv4 with correct checksums)
// and a wait for a back end's next frame that passes a test.
#include <arpa/inet.h>
#include <poll.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "virtio/net/backend.h"

namespace kiln::virtio::testing {

inline constexpr std::uint8_t kGuestMac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
inline constexpr const char* kTestGuestAddr = "10.0.2.15";

inline std::uint8_t u8(const std::vector<std::byte>& f, std::size_t i) { return static_cast<std::uint8_t>(f[i]); }
inline std::uint16_t u16(const std::vector<std::byte>& f, std::size_t i) {
  return static_cast<std::uint16_t>(u8(f, i) << 8 | u8(f, i + 1));
}

inline std::vector<std::byte> to_bytes(const std::vector<std::uint8_t>& f) {
  std::vector<std::byte> out(f.size());
  std::memcpy(out.data(), f.data(), f.size());
  return out;
}

// Waits up to 5 s for a frame from `b` that `want` accepts; empty if none came.
template <class Pred>
std::vector<std::byte> wait_frame(NetBackend& b, Pred want) {
  std::vector<std::byte> buf(kRxBufferSize);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    EXPECT_TRUE(b.service().has_value());  // as the device does when rx_fd() is readable
    auto n = b.receive(buf);
    EXPECT_TRUE(n.has_value());
    if (n && *n > 0) {
      const auto at = buf.begin() + static_cast<std::ptrdiff_t>(sizeof(NetHeader));
      std::vector<std::byte> f(at, at + static_cast<std::ptrdiff_t>(*n));
      if (want(f)) return f;
      continue;
    }
    pollfd p{b.rx_fd(), POLLIN, 0};
    ::poll(&p, 1, 100);
  }
  return {};
}

inline bool is_arp(const std::vector<std::byte>& f, int op) {
  return f.size() >= 42 && u8(f, 12) == 0x08 && u8(f, 13) == 0x06 && u8(f, 21) == op;
}

// An ARP request from the guest (kTestGuestAddr) for `target`.
inline std::vector<std::byte> arp_request(const char* target) {
  std::vector<std::uint8_t> f(42, 0);
  std::memset(f.data(), 0xff, 6);
  std::memcpy(f.data() + 6, kGuestMac, 6);
  f[12] = 0x08, f[13] = 0x06;                       // ARP
  f[14] = 0, f[15] = 1, f[16] = 0x08, f[17] = 0;    // Ethernet, IPv4
  f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1;       // request
  std::memcpy(f.data() + 22, kGuestMac, 6);
  ::inet_pton(AF_INET, kTestGuestAddr, f.data() + 28);
  ::inet_pton(AF_INET, target, f.data() + 38);
  return to_bytes(f);
}

// The guest's ARP answer to `asker` (mac, address as in its request) saying who kTestGuestAddr is.
inline std::vector<std::byte> arp_reply(const std::vector<std::byte>& request) {
  std::vector<std::uint8_t> f(42, 0);
  for (std::size_t i = 0; i < 6; ++i) f[i] = u8(request, 22 + i);
  std::memcpy(f.data() + 6, kGuestMac, 6);
  f[12] = 0x08, f[13] = 0x06;
  f[14] = 0, f[15] = 1, f[16] = 0x08, f[17] = 0;
  f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 2;
  std::memcpy(f.data() + 22, kGuestMac, 6);
  ::inet_pton(AF_INET, kTestGuestAddr, f.data() + 28);
  for (std::size_t i = 0; i < 10; ++i) f[32 + i] = u8(request, 22 + i);  // the asker's MAC and address
  return to_bytes(f);
}

inline std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2) sum += static_cast<std::uint32_t>(p[n - 1] << 8);
  return sum;
}
inline std::uint16_t fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

struct TcpSegment {
  const char* dst;
  std::uint16_t src_port, dst_port;
  std::uint32_t seq, ack;
  std::uint8_t flags;  // FIN 1, SYN 2, PSH 8, ACK 16
  std::string_view payload = {};
};
// A TCP segment from the guest (kTestGuestAddr) to the MAC `dst_mac`, checksums filled in.
inline std::vector<std::byte> tcp_frame(const std::uint8_t* dst_mac, const TcpSegment& s) {
  const std::size_t ip_len = 20 + 20 + s.payload.size();
  std::vector<std::uint8_t> f(14 + ip_len, 0);
  std::memcpy(f.data(), dst_mac, 6);
  std::memcpy(f.data() + 6, kGuestMac, 6);
  f[12] = 0x08, f[13] = 0x00;
  std::uint8_t* ip = f.data() + 14;
  ip[0] = 0x45, ip[2] = static_cast<std::uint8_t>(ip_len >> 8), ip[3] = static_cast<std::uint8_t>(ip_len);
  ip[6] = 0x40, ip[8] = 64, ip[9] = 6;
  ::inet_pton(AF_INET, kTestGuestAddr, ip + 12);
  ::inet_pton(AF_INET, s.dst, ip + 16);
  const std::uint16_t ipc = fold(sum16(ip, 20));
  ip[10] = static_cast<std::uint8_t>(ipc >> 8), ip[11] = static_cast<std::uint8_t>(ipc);
  std::uint8_t* tcp = ip + 20;
  tcp[0] = static_cast<std::uint8_t>(s.src_port >> 8), tcp[1] = static_cast<std::uint8_t>(s.src_port);
  tcp[2] = static_cast<std::uint8_t>(s.dst_port >> 8), tcp[3] = static_cast<std::uint8_t>(s.dst_port);
  for (int i = 0; i < 4; ++i) {
    tcp[4 + i] = static_cast<std::uint8_t>(s.seq >> (24 - 8 * i));
    tcp[8 + i] = static_cast<std::uint8_t>(s.ack >> (24 - 8 * i));
  }
  tcp[12] = 5 << 4, tcp[13] = s.flags, tcp[14] = 0xff, tcp[15] = 0xff;
  if (!s.payload.empty()) std::memcpy(tcp + 20, s.payload.data(), s.payload.size());
  const std::size_t tcp_len = 20 + s.payload.size();
  std::uint8_t pseudo[12] = {};
  std::memcpy(pseudo, ip + 12, 8);
  pseudo[9] = 6, pseudo[10] = static_cast<std::uint8_t>(tcp_len >> 8), pseudo[11] = static_cast<std::uint8_t>(tcp_len);
  const std::uint16_t tc = fold(sum16(tcp, tcp_len, sum16(pseudo, 12)));
  tcp[16] = static_cast<std::uint8_t>(tc >> 8), tcp[17] = static_cast<std::uint8_t>(tc);
  return to_bytes(f);
}

}  // namespace kiln::virtio::testing
