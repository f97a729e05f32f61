#include "config/vsock.h"

#include <sys/stat.h>

#include <charconv>

#include <fmt/format.h>

#include "config/json_fields.h"

namespace kiln {

using nlohmann::json;

Result<void> check_vsock(const VsockSettings& v, std::string_view where) {
  if (v.guest_cid < 3 || v.guest_cid > 0xffffffffull)
    return plain_error("{}: guest_cid {}: a guest's CID is 3 to 4294967295 (0, 1 and 2 are reserved; 2 is the host)",
                       where, v.guest_cid);
  if (v.uds_path.empty() || v.uds_path.size() > 107)
    return plain_error("{}: uds_path '{}': a Unix socket path is 1 to 107 characters", where, v.uds_path);
  struct stat st{};
  if (::lstat(v.uds_path.c_str(), &st) == 0)
    return plain_error("{}: uds_path '{}' already exists; remove it, or choose another path", where, v.uds_path);
  return {};
}

Result<VsockSettings> vsock_from_json(const json& j, std::string_view where) {
  if (!j.is_object()) return plain_error("{}: expected a JSON object", where);
  KILN_CHECK(only_fields(j, where, {"guest_cid", "uds_path", "vsock_id"}));
  const std::string w(where);
  VsockSettings v;
  if (!j.contains("guest_cid")) return plain_error("{}.guest_cid is required (3 or more)", where);
  if (!j.contains("uds_path")) return plain_error("{}.uds_path is required: the Unix socket host programs connect to", where);
  if (!j.at("guest_cid").is_number_unsigned())
    return plain_error("{}.guest_cid: expected a whole number of 3 or more", where);
  KILN_CHECK(get_field(j, w, "guest_cid", v.guest_cid));
  KILN_CHECK(get_field(j, w, "uds_path", v.uds_path));
  if (j.contains("vsock_id") && !j.at("vsock_id").is_null()) {
    std::string id;
    KILN_CHECK(get_field(j, w, "vsock_id", id));
    v.vsock_id = id;
  }
  KILN_CHECK(check_vsock(v, where));
  return v;
}

json to_json(const VsockSettings& v) {
  json out = {{"guest_cid", v.guest_cid}, {"uds_path", v.uds_path}};
  if (v.vsock_id) out["vsock_id"] = *v.vsock_id;
  return out;
}

Result<VsockSettings> parse_vsock_flag(std::string_view spec) {
  VsockSettings v;
  const std::string where = fmt::format("--vsock {}", spec);
  bool have_cid = false, have_uds = false;
  for (const auto& [key, value, has_value] : split_flag_items(spec)) {
    if (!has_value || value.empty()) return plain_error("{}: '{}' needs a value ({}=...)", where, key, key);
    if (key == "cid") {
      const auto [at, ec] = std::from_chars(value.data(), value.data() + value.size(), v.guest_cid);
      if (ec != std::errc{} || at != value.data() + value.size())
        return plain_error("{}: cid '{}' is not a number (3 or more)", where, value);
      have_cid = true;
    } else if (key == "uds") {
      v.uds_path = value;
      have_uds = true;
    } else {
      return plain_error("{}: unknown key '{}' (known: cid, uds)", where, key);
    }
  }
  if (!have_cid || !have_uds) return plain_error("{}: give cid=N (3 or more) and uds=PATH", where);
  KILN_CHECK(check_vsock(v, where));
  return v;
}

}  // namespace kiln
