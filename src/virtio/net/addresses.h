#pragma once
// The network values a user gives: a guest's MAC address and user-mode networking's host port
// forwards. Parsed here, with errors that say what is wrong and show the form, for the flags, the
// config file and the API alike.
#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace kiln::virtio {

using MacAddress = std::array<std::uint8_t, 6>;

// "06:00:ac:10:00:02" → the address (unicast only); an error names what is wrong.
Result<MacAddress> parse_mac(std::string_view text);
std::string format_mac(const MacAddress& mac);

// An IPv4 address (network byte order) in dotted form.
std::string format_ipv4(std::uint32_t addr);

// The address user-mode networking's DHCP gives the guest.
inline constexpr const char* kUserNetGuestAddr = "10.0.2.15";

struct HostForward {
  bool udp = false;
  std::uint32_t host_addr = 0;  // network byte order; 0 (any address) when left out
  std::uint16_t host_port = 0;
  std::uint16_t guest_port = 0;
  friend bool operator==(const HostForward&, const HostForward&) = default;
};

// QEMU's form: "tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT" (GUESTADDR, if given, must be
// 10.0.2.15, the address DHCP gives). An error says what is wrong and shows the form.
Result<HostForward> parse_hostfwd(std::string_view text);
std::string format_hostfwd(const HostForward& f);

}  // namespace kiln::virtio
