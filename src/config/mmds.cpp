#include "config/mmds.h"

#include <arpa/inet.h>

#include <algorithm>

#include <fmt/format.h>

#include "config/json_fields.h"

namespace kiln {

using nlohmann::json;

namespace {

Result<void> check_version(std::string_view v, std::string_view where) {
  if (v != "V1" && v != "V2") return plain_error("{} '{}': expected V1 or V2", where, v);
  return {};
}

// Firecracker's rule: an address in 169.254.0.0/16 outside its first and last /24 (RFC 3927).
Result<void> check_address(const std::string& a, std::string_view where) {
  in_addr addr{};
  if (::inet_pton(AF_INET, a.c_str(), &addr) != 1)
    return plain_error("{} '{}': not an IPv4 address (e.g. {})", where, a, kDefaultMmdsAddress);
  const std::uint32_t h = ntohl(addr.s_addr);
  const std::uint32_t third = (h >> 8) & 0xff;
  if ((h >> 16) != 0xa9fe || third == 0 || third == 255)
    return plain_error("{} '{}': the metadata service needs a link-local address, 169.254.1.0 to 169.254.254.255 "
                       "(default {})",
                       where, a, kDefaultMmdsAddress);
  return {};
}

}  // namespace

Result<MmdsConfig> mmds_config_from_json(const json& j, std::string_view where) {
  if (!j.is_object()) return plain_error("{}: expected a JSON object", where);
  KILN_CHECK(only_fields(j, where, {"version", "network_interfaces", "ipv4_address"}));
  const std::string w(where);
  MmdsConfig c;
  KILN_CHECK(get_field(j, w, "version", c.version));
  KILN_CHECK(check_version(c.version, w + ".version"));
  KILN_CHECK(get_field(j, w, "ipv4_address", c.ipv4_address));
  KILN_CHECK(check_address(c.ipv4_address, w + ".ipv4_address"));
  if (!j.contains("network_interfaces"))
    return plain_error("{}.network_interfaces is required: the iface_ids whose guest requests reach the metadata "
                       "service",
                       where);
  KILN_CHECK(get_field(j, w, "network_interfaces", c.network_interfaces));
  if (c.network_interfaces.empty())
    return plain_error("{}.network_interfaces: name at least one network interface", where);
  return c;
}

json to_json(const MmdsConfig& c) {
  return {{"version", c.version}, {"ipv4_address", c.ipv4_address}, {"network_interfaces", c.network_interfaces}};
}

Result<MmdsConfig> parse_mmds_flag(std::string_view spec, const std::vector<NetworkInterfaceConfig>& nets) {
  MmdsConfig c;
  const std::string where = fmt::format("--mmds {}", spec);
  for (const auto& [key, value, has_value] : split_flag_items(spec)) {
    if (!has_value || value.empty()) return plain_error("{}: '{}' needs a value ({}=...)", where, key, key);
    if (key == "version") {
      c.version = value;
      KILN_CHECK(check_version(value, where + ": version"));
    } else if (key == "ipv4") {
      c.ipv4_address = value;
      KILN_CHECK(check_address(c.ipv4_address, where + ": ipv4"));
    } else if (key == "iface") {
      c.network_interfaces.emplace_back(value);
    } else {
      return plain_error("{}: unknown key '{}' (known: version, ipv4, iface)", where, key);
    }
  }
  if (c.network_interfaces.empty()) {
    if (nets.empty()) return plain_error("{}: the metadata service is reached over a network interface; add --net", where);
    for (const auto& n : nets) c.network_interfaces.push_back(n.iface_id);
  }
  return c;
}

Result<void> check_mmds_interfaces(const MmdsConfig& c, const std::vector<NetworkInterfaceConfig>& nets) {
  for (const auto& id : c.network_interfaces) {
    if (std::none_of(nets.begin(), nets.end(), [&](const auto& n) { return n.iface_id == id; }))
      return plain_error("mmds-config.network_interfaces: this VM has no network interface '{}'; add it first "
                         "(PUT /network-interfaces/{} or --net ...,id={})",
                         id, id, id);
  }
  return {};
}

}  // namespace kiln
