#pragma once
// Firecracker's PUT /mmds/config ("mmds-config" in a config file) and kiln's --mmds flag: which
// network interfaces carry the guest's requests to the metadata service, at which address, and
// whether V2's session tokens are required.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "config/network.h"

namespace kiln {

inline constexpr const char* kDefaultMmdsAddress = "169.254.169.254";

struct MmdsConfig {
  std::string version = "V1";  // V1 or V2, as Firecracker (V1 its default)
  std::string ipv4_address = kDefaultMmdsAddress;  // checked: link-local
  std::vector<std::string> network_interfaces;     // iface_ids, at least one
  bool operator==(const MmdsConfig&) const = default;
};

Result<MmdsConfig> mmds_config_from_json(const nlohmann::json& j, std::string_view where);
nlohmann::json to_json(const MmdsConfig& c);

// --mmds [version=V1|V2][,ipv4=ADDR][,iface=ID ...]: without iface=, every --net interface.
Result<MmdsConfig> parse_mmds_flag(std::string_view spec, const std::vector<NetworkInterfaceConfig>& nets);

// Each of its interfaces is one of `nets`.
Result<void> check_mmds_interfaces(const MmdsConfig& c, const std::vector<NetworkInterfaceConfig>& nets);

}  // namespace kiln
