#include "config/drive.h"

#include <fmt/format.h>


#include "config/json_fields.h"

namespace kiln {

using nlohmann::json;

Result<void> check_drive_id(std::string_view id, std::string_view where) {
  return check_resource_id(id, "drive id", where);
}

Result<DriveConfig> drive_config_from_json(const json& j, std::string_view where) {
  if (!j.is_object()) return plain_error("{}: expected a JSON object", where);
  KILN_CHECK(only_fields(j, where,
                         {"drive_id", "path_on_host", "is_root_device", "partuuid", "is_read_only", "cache_type",
                          "io_engine", "rate_limiter", "socket", "kiln_serial"}));
  if (j.contains("rate_limiter") && !j.at("rate_limiter").is_null())
    return plain_error("{}.rate_limiter: rate limiters are not there yet in kiln; remove the field", where);
  if (j.contains("socket") && !j.at("socket").is_null())
    return plain_error("{}.socket: vhost-user block devices are not supported; give path_on_host", where);
  DriveConfig d;
  const std::string w(where);
  if (!j.contains("drive_id")) return plain_error("{}.drive_id is required", where);
  KILN_CHECK(get_field(j, w, "drive_id", d.drive_id));
  KILN_CHECK(check_drive_id(d.drive_id, w + ".drive_id"));
  if (!j.contains("path_on_host")) return plain_error("{}.path_on_host is required: the drive's raw image", where);
  KILN_CHECK(get_field(j, w, "path_on_host", d.path_on_host));
  if (d.path_on_host.empty()) return plain_error("{}.path_on_host: empty; give the path of a raw disk image", where);
  if (!j.contains("is_root_device")) return plain_error("{}.is_root_device is required (true or false)", where);
  KILN_CHECK(get_field(j, w, "is_root_device", d.is_root_device));
  KILN_CHECK(get_field(j, w, "is_read_only", d.is_read_only));
  if (j.contains("partuuid") && !j.at("partuuid").is_null()) {
    std::string p;
    KILN_CHECK(get_field(j, w, "partuuid", p));
    d.partuuid = p;
  }
  std::string cache = "Writeback";
  KILN_CHECK(get_field(j, w, "cache_type", cache));
  if (cache == "Writeback") d.cache_type = DriveConfig::Cache::kWriteback;
  else if (cache == "Unsafe") d.cache_type = DriveConfig::Cache::kUnsafe;
  else return plain_error("{}.cache_type '{}': expected Writeback or Unsafe", where, cache);
  std::string engine = "Async";
  KILN_CHECK(get_field(j, w, "io_engine", engine));
  if (engine == "Async") d.io_engine = DriveConfig::IoEngine::kAsync;
  else if (engine == "Sync") d.io_engine = DriveConfig::IoEngine::kSync;
  else return plain_error("{}.io_engine '{}': expected Async or Sync", where, engine);
  if (j.contains("kiln_serial") && !j.at("kiln_serial").is_null()) {
    std::string s;
    KILN_CHECK(get_field(j, w, "kiln_serial", s));
    d.serial = s;
  }
  return d;
}

json to_json(const DriveConfig& d) {
  json out = {{"drive_id", d.drive_id},
              {"path_on_host", d.path_on_host},
              {"is_root_device", d.is_root_device},
              {"is_read_only", d.is_read_only},
              {"cache_type", d.cache_type == DriveConfig::Cache::kWriteback ? "Writeback" : "Unsafe"},
              {"io_engine", d.io_engine == DriveConfig::IoEngine::kAsync ? "Async" : "Sync"}};
  if (d.partuuid) out["partuuid"] = *d.partuuid;
  if (d.serial) out["kiln_serial"] = *d.serial;
  return out;
}

Result<EntropyConfig> entropy_config_from_json(const json& j) {
  if (!j.is_object()) return plain_error("entropy: expected a JSON object");
  KILN_CHECK(only_fields(j, "entropy", {"rate_limiter"}));
  if (j.contains("rate_limiter") && !j.at("rate_limiter").is_null())
    return plain_error("entropy.rate_limiter: rate limiters are not there yet in kiln; remove the field");
  return EntropyConfig{};
}

json to_json(const EntropyConfig&) { return json::object(); }

Result<DriveConfig> parse_disk_flag(std::string_view spec, std::size_t index) {
  DriveConfig d;
  bool have_id = false;
  for (const auto& [key, value, has_value] : split_flag_items(spec)) {
    auto need_value = [&]() -> Result<void> {
      if (!has_value || value.empty()) return plain_error("--disk {}: '{}' needs a value ({}=...)", spec, key, key);
      return {};
    };
    auto no_value = [&]() -> Result<void> {
      if (has_value) return plain_error("--disk {}: '{}' takes no value", spec, key);
      return {};
    };
    if (key == "path") {
      KILN_CHECK(need_value());
      d.path_on_host = value;
    } else if (key == "id") {
      KILN_CHECK(need_value());
      d.drive_id = value;
      have_id = true;
    } else if (key == "readonly") {
      KILN_CHECK(no_value());
      d.is_read_only = true;
    } else if (key == "root") {
      KILN_CHECK(no_value());
      d.is_root_device = true;
    } else if (key == "serial") {
      KILN_CHECK(need_value());
      if (value.size() > 20) return plain_error("--disk {}: serial '{}' is longer than 20 bytes", spec, value);
      d.serial = std::string(value);
    } else if (key == "cache") {
      KILN_CHECK(need_value());
      if (value == "writeback") d.cache_type = DriveConfig::Cache::kWriteback;
      else if (value == "unsafe") d.cache_type = DriveConfig::Cache::kUnsafe;
      else return plain_error("--disk {}: cache={}: expected writeback or unsafe", spec, value);
    } else if (key == "engine") {
      KILN_CHECK(need_value());
      if (value == "uring") d.io_engine = DriveConfig::IoEngine::kAsync;
      else if (value == "sync") d.io_engine = DriveConfig::IoEngine::kSync;
      else return plain_error("--disk {}: engine={}: expected uring or sync", spec, value);
    } else {
      return plain_error("--disk {}: unknown key '{}' (known: path, id, readonly, root, serial, cache, engine)", spec,
                         key);
    }
  }
  if (d.path_on_host.empty()) return plain_error("--disk {}: path=FILE is required", spec);
  if (!have_id) d.drive_id = d.is_root_device ? "rootfs" : fmt::format("disk{}", index);
  KILN_CHECK(check_drive_id(d.drive_id, fmt::format("--disk {}", spec)));
  return d;
}

Result<void> check_drives(const std::vector<DriveConfig>& drives) {
  const DriveConfig* root = nullptr;
  for (std::size_t i = 0; i < drives.size(); ++i) {
    if (drives[i].is_root_device) {
      if (root != nullptr)
        return plain_error("drives: '{}' and '{}' are both root devices; only one drive can be the root",
                           root->drive_id, drives[i].drive_id);
      root = &drives[i];
    }
    for (std::size_t k = 0; k < i; ++k)
      if (drives[k].drive_id == drives[i].drive_id)
        return plain_error("drives: the id '{}' is given twice; give each drive its own id", drives[i].drive_id);
  }
  return {};
}

std::string root_drive_args(const DriveConfig& root) {
  const std::string dev = root.partuuid ? "PARTUUID=" + *root.partuuid : "/dev/vda";
  return fmt::format("root={} {}", dev, root.is_read_only ? "ro" : "rw");
}

}  // namespace kiln
