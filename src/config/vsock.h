#pragma once
// Firecracker's PUT /vsock ("vsock" in a config file) and kiln's --vsock flag: the guest's CID and
// the Unix socket host programs connect to (guest connections to host port P go to
// "<uds_path>_P").
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace kiln {

struct VsockSettings {
  std::uint64_t guest_cid = 3;
  std::string uds_path;
  std::optional<std::string> vsock_id;  // Firecracker's deprecated field, kept as given
  bool operator==(const VsockSettings&) const = default;
};

// Checks the body's shape and values; `where` names it in errors. The socket path must not exist.
Result<VsockSettings> vsock_from_json(const nlohmann::json& j, std::string_view where);
nlohmann::json to_json(const VsockSettings& v);
// --vsock cid=N,uds=PATH
Result<VsockSettings> parse_vsock_flag(std::string_view spec);
// guest_cid 3..2^32-1; uds_path 1..107 characters and not there yet.
Result<void> check_vsock(const VsockSettings& v, std::string_view where);

}  // namespace kiln
