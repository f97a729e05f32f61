#pragma once
// Firecracker's /network-interfaces/{iface_id} and kiln's --net flag: the VM's virtio-net
// interfaces, each on a tap the user made (host_dev_name, as Firecracker) or, a kiln extension, on
// user-mode networking (`kiln_user_net`: no root, no host set-up, QEMU's `-netdev user`).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace kiln {

struct NetworkInterfaceConfig {
  std::string iface_id;
  std::optional<std::string> host_dev_name;  // a tap; or else user-mode networking
  std::optional<std::string> guest_mac;      // checked: six hex bytes, unicast
  std::vector<std::string> hostfwd;          // user-mode networking's forwards, checked
  [[nodiscard]] bool user_mode() const { return !host_dev_name.has_value(); }
  bool operator==(const NetworkInterfaceConfig&) const = default;
};

// `where` names the body in errors ("network-interfaces[0]", "PUT /network-interfaces/eth0").
Result<NetworkInterfaceConfig> network_interface_from_json(const nlohmann::json& j, std::string_view where);
nlohmann::json to_json(const NetworkInterfaceConfig& n);

// One --net flag: tap=NAME[,mac=MAC][,id=ID] or user[,hostfwd=tcp:[ADDR]:PORT-:PORT ...][,mac=MAC]
// [,id=ID]. `index`: its place among the --net flags, for the default id (eth0, eth1 ...).
Result<NetworkInterfaceConfig> parse_net_flag(std::string_view spec, std::size_t index);

// The interfaces together: unique ids, unique MACs, unique taps.
Result<void> check_network_interfaces(const std::vector<NetworkInterfaceConfig>& nets);

}  // namespace kiln
