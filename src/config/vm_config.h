#pragma once
// The VM's configuration, in the shape of Firecracker's `GET /vm/config` (boot-source,
// machine-config, drives, ...), so that flags, a config file and the API all fill one object. Each
// resource has its own file here (its struct, its JSON, its checks); this one puts them together.
#include <optional>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "config/boot_source.h"
#include "config/cpu_config.h"
#include "config/drive.h"
#include "config/json_fields.h"
#include "config/kiln_settings.h"
#include "config/logger_metrics.h"
#include "config/machine_config.h"
#include "config/mmds.h"
#include "config/network.h"
#include "config/vsock.h"

namespace kiln {

struct VmConfig {
  BootSource boot_source;
  MachineConfig machine_config;
  std::optional<CpuConfig> cpu_config;
  std::vector<DriveConfig> drives;        // in the order given; the root drive becomes vda
  std::optional<EntropyConfig> entropy;   // a virtio-rng device
  std::vector<NetworkInterfaceConfig> network_interfaces;  // virtio-net, in the order given
  std::optional<MmdsConfig> mmds;  // the metadata service, reached over some of those interfaces
  std::optional<VsockSettings> vsock;  // a virtio-vsock device
  std::optional<LoggerConfig> logger;
  std::optional<MetricsConfig> metrics;
  KilnConfig kiln;
};

nlohmann::json to_json(const VmConfig& c);
// Strict: unknown fields and wrong types are errors naming the field.
Result<VmConfig> vm_config_from_json(const nlohmann::json& j);
Result<void> validate(const VmConfig& c);

}  // namespace kiln
