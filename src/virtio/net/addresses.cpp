#include "virtio/net/addresses.h"

#include <arpa/inet.h>

#include <charconv>

namespace kiln::virtio {

Result<MacAddress> parse_mac(std::string_view text) {
  MacAddress mac{};
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (text.size() != 17) return plain_error("'{}' is not a MAC address: write six hex bytes, 06:00:ac:10:00:02", text);
  for (std::size_t i = 0; i < 6; ++i) {
    const int hi = hex(text[3 * i]), lo = hex(text[3 * i + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && text[3 * i + 2] != ':'))
      return plain_error("'{}' is not a MAC address: write six hex bytes, 06:00:ac:10:00:02", text);
    mac[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  if (mac[0] & 1) return plain_error("'{}' is a multicast address: a NIC's MAC has the low bit of its first byte clear", text);
  return mac;
}

std::string format_mac(const MacAddress& m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

namespace {

constexpr const char* kForm = "write tcp:[HOSTADDR]:HOSTPORT-[10.0.2.15]:GUESTPORT, e.g. tcp::8080-:80";

Result<std::uint16_t> parse_port(std::string_view s, std::string_view text, const char* which) {
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v == 0 || v > 65535)
    return plain_error("hostfwd '{}': '{}' is not a {} port (1-65535); {}", text, s, which, kForm);
  return static_cast<std::uint16_t>(v);
}

}  // namespace

Result<HostForward> parse_hostfwd(std::string_view text) {
  HostForward f;
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return plain_error("hostfwd '{}': no protocol; {}", text, kForm);
  const auto proto = text.substr(0, colon);
  if (proto == "udp") f.udp = true;
  else if (proto != "tcp" && !proto.empty()) return plain_error("hostfwd '{}': protocol '{}' is not tcp or udp", text, proto);
  const auto rest = text.substr(colon + 1);
  const auto dash = rest.find('-');
  if (dash == std::string_view::npos) return plain_error("hostfwd '{}': no '-' between the host and guest sides; {}", text, kForm);
  const auto host = rest.substr(0, dash), guest = rest.substr(dash + 1);
  const auto hc = host.rfind(':'), gc = guest.rfind(':');
  if (hc == std::string_view::npos || gc == std::string_view::npos)
    return plain_error("hostfwd '{}': each side is ADDRESS:PORT (the address may be empty); {}", text, kForm);
  const std::string haddr(host.substr(0, hc)), gaddr(guest.substr(0, gc));
  in_addr a{};
  if (!haddr.empty() && ::inet_pton(AF_INET, haddr.c_str(), &a) != 1)
    return plain_error("hostfwd '{}': '{}' is not an IPv4 address", text, haddr);
  f.host_addr = a.s_addr;
  if (!gaddr.empty() && gaddr != kUserNetGuestAddr)
    return plain_error("hostfwd '{}': the guest's address is {} (leave it out)", text, kUserNetGuestAddr);
  KILN_ASSIGN(f.host_port, parse_port(host.substr(hc + 1), text, "host"));
  KILN_ASSIGN(f.guest_port, parse_port(guest.substr(gc + 1), text, "guest"));
  return f;
}

std::string format_hostfwd(const HostForward& f) {
  char addr[INET_ADDRSTRLEN] = "";
  const in_addr a{f.host_addr};
  if (f.host_addr != 0) ::inet_ntop(AF_INET, &a, addr, sizeof addr);
  return fmt::format("{}:{}:{}-:{}", f.udp ? "udp" : "tcp", addr, f.host_port, f.guest_port);
}

std::string format_ipv4(std::uint32_t addr) {
  char text[INET_ADDRSTRLEN] = {};
  in_addr a{addr};
  ::inet_ntop(AF_INET, &a, text, sizeof text);
  return text;
}

}  // namespace kiln::virtio
