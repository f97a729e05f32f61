#include "config/network.h"

#include <fmt/format.h>


#include "config/json_fields.h"
#include "virtio/net/addresses.h"

namespace kiln {

using nlohmann::json;

namespace {

Result<void> check_iface_id(std::string_view id, std::string_view where) {
  return check_resource_id(id, "iface_id", where);
}

Result<std::string> checked_mac(std::string_view text, std::string_view where) {
  auto mac = virtio::parse_mac(text);
  if (!mac) return plain_error("{}: {}", where, mac.error().message());
  return virtio::format_mac(*mac);
}

Result<std::string> checked_hostfwd(std::string_view text, std::string_view where) {
  auto f = virtio::parse_hostfwd(text);
  if (!f) return plain_error("{}: {}", where, f.error().message());
  return virtio::format_hostfwd(*f);
}

}  // namespace

Result<NetworkInterfaceConfig> network_interface_from_json(const json& j, std::string_view where) {
  if (!j.is_object()) return plain_error("{}: expected a JSON object", where);
  KILN_CHECK(only_fields(j, where,
                         {"iface_id", "host_dev_name", "guest_mac", "rx_rate_limiter", "tx_rate_limiter",
                          "kiln_user_net"}));
  for (const char* limiter : {"rx_rate_limiter", "tx_rate_limiter"})
    if (j.contains(limiter) && !j.at(limiter).is_null())
      return plain_error("{}.{}: rate limiters are not there yet in kiln; remove the field", where, limiter);
  const std::string w(where);
  NetworkInterfaceConfig n;
  if (!j.contains("iface_id")) return plain_error("{}.iface_id is required", where);
  KILN_CHECK(get_field(j, w, "iface_id", n.iface_id));
  KILN_CHECK(check_iface_id(n.iface_id, w + ".iface_id"));
  const bool tap = j.contains("host_dev_name") && !j.at("host_dev_name").is_null();
  const bool user = j.contains("kiln_user_net") && !j.at("kiln_user_net").is_null();
  if (tap == user)
    return plain_error("{}: give host_dev_name (a tap device) or kiln_user_net (user-mode networking, e.g. "
                       "{{\"hostfwd\": [\"tcp::8080-:80\"]}}), one of the two",
                       where);
  if (tap) {
    std::string name;
    KILN_CHECK(get_field(j, w, "host_dev_name", name));
    if (name.empty() || name.size() > 15)
      return plain_error("{}.host_dev_name '{}': a network interface name is 1 to 15 characters", where, name);
    n.host_dev_name = name;
  } else {
    const json& u = j.at("kiln_user_net");
    if (!u.is_object()) return plain_error("{}.kiln_user_net: expected an object, e.g. {{\"hostfwd\": []}}", where);
    KILN_CHECK(only_fields(u, w + ".kiln_user_net", {"hostfwd"}));
    if (u.contains("hostfwd") && !u.at("hostfwd").is_null()) {
      if (!u.at("hostfwd").is_array())
        return plain_error("{}.kiln_user_net.hostfwd: expected a list of strings like \"tcp::8080-:80\"", where);
      for (std::size_t i = 0; i < u.at("hostfwd").size(); ++i) {
        const json& f = u.at("hostfwd")[i];
        const std::string fw = fmt::format("{}.kiln_user_net.hostfwd[{}]", where, i);
        if (!f.is_string()) return plain_error("{}: expected a string like \"tcp::8080-:80\"", fw);
        KILN_ASSIGN(auto s, checked_hostfwd(f.get<std::string>(), fw));
        n.hostfwd.push_back(std::move(s));
      }
    }
  }
  if (j.contains("guest_mac") && !j.at("guest_mac").is_null()) {
    std::string mac;
    KILN_CHECK(get_field(j, w, "guest_mac", mac));
    KILN_ASSIGN(n.guest_mac, checked_mac(mac, w + ".guest_mac"));
  }
  return n;
}

json to_json(const NetworkInterfaceConfig& n) {
  json out = {{"iface_id", n.iface_id}};
  if (n.host_dev_name) out["host_dev_name"] = *n.host_dev_name;
  else out["kiln_user_net"] = {{"hostfwd", n.hostfwd}};
  if (n.guest_mac) out["guest_mac"] = *n.guest_mac;
  return out;
}

Result<NetworkInterfaceConfig> parse_net_flag(std::string_view spec, std::size_t index) {
  NetworkInterfaceConfig n;
  bool have_kind = false, user = false;
  const std::string where = fmt::format("--net {}", spec);
  for (const auto& [key, value, has_value] : split_flag_items(spec)) {
    if (key != "user" && (!has_value || value.empty()))
      return plain_error("{}: '{}' needs a value ({}=...)", where, key, key);
    if (key == "user" || key == "tap") {
      if (have_kind) return plain_error("{}: give one of tap=NAME and user", where);
      have_kind = true;
      if (key == "user") {
        if (has_value) return plain_error("{}: 'user' takes no value", where);
        user = true;
      } else {
        if (value.size() > 15) return plain_error("{}: tap name '{}' is longer than 15 characters", where, value);
        n.host_dev_name = std::string(value);
      }
    } else if (key == "mac") {
      KILN_ASSIGN(n.guest_mac, checked_mac(value, where));
    } else if (key == "id") {
      n.iface_id = value;
    } else if (key == "hostfwd") {
      KILN_ASSIGN(auto f, checked_hostfwd(value, where));
      n.hostfwd.push_back(std::move(f));
    } else {
      return plain_error("{}: unknown key '{}' (known: tap, user, mac, id, hostfwd)", where, key);
    }
  }
  if (!have_kind) return plain_error("{}: say which network: tap=NAME (a tap you made) or user (user-mode networking)", where);
  if (!user && !n.hostfwd.empty())
    return plain_error("{}: hostfwd is for user-mode networking; a tap's host reaches the guest directly", where);
  if (n.iface_id.empty()) n.iface_id = fmt::format("eth{}", index);
  KILN_CHECK(check_iface_id(n.iface_id, where));
  return n;
}

Result<void> check_network_interfaces(const std::vector<NetworkInterfaceConfig>& nets) {
  for (std::size_t i = 0; i < nets.size(); ++i) {
    for (std::size_t k = 0; k < i; ++k) {
      if (nets[k].iface_id == nets[i].iface_id)
        return plain_error("network-interfaces: the iface_id '{}' is given twice; give each interface its own",
                           nets[i].iface_id);
      if (nets[k].guest_mac && nets[k].guest_mac == nets[i].guest_mac)
        return plain_error("network-interfaces: '{}' and '{}' have the same guest_mac {}", nets[k].iface_id,
                           nets[i].iface_id, *nets[i].guest_mac);
      if (nets[k].host_dev_name && nets[k].host_dev_name == nets[i].host_dev_name)
        return plain_error("network-interfaces: '{}' and '{}' both use tap {}; a tap serves one interface",
                           nets[k].iface_id, nets[i].iface_id, *nets[i].host_dev_name);
    }
  }
  return {};
}

}  // namespace kiln
