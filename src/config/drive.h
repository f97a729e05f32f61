#pragma once
// Firecracker's /drives/{drive_id} and /entropy, and kiln's --disk and --rng flags: the virtio
// block and entropy devices a VM gets.
//
// Where kiln differs from Firecracker, it is on the safe side: cache_type defaults to Writeback
// (a flush reaches fdatasync; Firecracker's default, Unsafe, drops flushes), and io_engine to
// Async (io_uring: requests in flight at once; Sync is there for hosts without io_uring).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace kiln {

struct DriveConfig {
  std::string drive_id;
  std::string path_on_host;
  bool is_root_device = false;
  std::optional<std::string> partuuid;  // root=PARTUUID=... instead of root=/dev/vda
  bool is_read_only = false;
  enum class Cache { kWriteback, kUnsafe } cache_type = Cache::kWriteback;
  enum class IoEngine { kAsync, kSync } io_engine = IoEngine::kAsync;
  std::optional<std::string> serial;  // kiln_serial: GET_ID's answer (default: the drive id)
  bool operator==(const DriveConfig&) const = default;
};

// Firecracker's /entropy body: a virtio-rng device. Its rate limiter is not there yet.
struct EntropyConfig {
  bool operator==(const EntropyConfig&) const = default;
};

// `where` names the body in errors ("drives[1]", "PUT /drives/rootfs").
Result<DriveConfig> drive_config_from_json(const nlohmann::json& j, std::string_view where);
nlohmann::json to_json(const DriveConfig& d);
Result<EntropyConfig> entropy_config_from_json(const nlohmann::json& j);
nlohmann::json to_json(const EntropyConfig& e);

// One --disk flag: path=FILE[,id=ID][,readonly][,root][,serial=S][,cache=writeback|unsafe]
// [,engine=uring|sync]. `index`: its place among the --disk flags, for the default id.
Result<DriveConfig> parse_disk_flag(std::string_view spec, std::size_t index);

// A drive id as Firecracker takes it: 1-64 letters, digits and '_'.
Result<void> check_drive_id(std::string_view id, std::string_view where);
// The drives together: unique ids, at most one root.
Result<void> check_drives(const std::vector<DriveConfig>& drives);
// The command-line arguments the root drive needs: root=/dev/vda (or PARTUUID) and rw or ro. The
// root drive is the first virtio-blk device, so it is vda.
std::string root_drive_args(const DriveConfig& root);

}  // namespace kiln
