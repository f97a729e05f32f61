#include "config/vm_config.h"

namespace kiln {

using nlohmann::json;

json to_json(const VmConfig& c) {
  json out = {
      {"boot-source", to_json(c.boot_source)},
      {"machine-config", to_json(c.machine_config)},
      {"drives", json::array()},
      {"network-interfaces", json::array()},
      {"kiln", to_json(c.kiln)},
  };
  for (const auto& d : c.drives) out["drives"].push_back(to_json(d));
  for (const auto& n : c.network_interfaces) out["network-interfaces"].push_back(to_json(n));
  if (c.entropy) out["entropy"] = to_json(*c.entropy);
  if (c.mmds) out["mmds-config"] = to_json(*c.mmds);
  if (c.vsock) out["vsock"] = to_json(*c.vsock);
  if (c.cpu_config) out["cpu-config"] = c.cpu_config->source;
  if (c.logger) out["logger"] = to_json(*c.logger);
  if (c.metrics) out["metrics"] = to_json(*c.metrics);
  return out;
}

Result<VmConfig> vm_config_from_json(const json& j) {
  VmConfig c;
  KILN_CHECK(only_fields(j, "config", {"boot-source", "machine-config", "drives", "network-interfaces", "kiln",
                                     "logger", "metrics", "vsock", "entropy", "balloon", "mmds-config",
                                     "cpu-config"}));
  for (const char* unsupported : {"balloon"}) {
    if (j.contains(unsupported) && !j.at(unsupported).is_null())
      return plain_error("config: '{}' is not supported by this kiln yet; remove it", unsupported);
  }
  if (!j.contains("boot-source")) return plain_error("config: 'boot-source' is required");
  KILN_ASSIGN(c.boot_source, boot_source_from_json(j.at("boot-source")));
  if (j.contains("machine-config")) {
    KILN_ASSIGN(c.machine_config, machine_config_from_json(j.at("machine-config"), MachineConfig{}, false));
  }
  if (j.contains("drives") && !j.at("drives").is_null()) {
    if (!j.at("drives").is_array()) return plain_error("config: 'drives' must be a list of drive objects");
    for (std::size_t i = 0; i < j.at("drives").size(); ++i) {
      KILN_ASSIGN(auto d, drive_config_from_json(j.at("drives")[i], fmt::format("drives[{}]", i)));
      c.drives.push_back(std::move(d));
    }
  }
  if (j.contains("network-interfaces") && !j.at("network-interfaces").is_null()) {
    const json& list = j.at("network-interfaces");
    if (!list.is_array()) return plain_error("config: 'network-interfaces' must be a list of interface objects");
    for (std::size_t i = 0; i < list.size(); ++i) {
      KILN_ASSIGN(auto n, network_interface_from_json(list[i], fmt::format("network-interfaces[{}]", i)));
      c.network_interfaces.push_back(std::move(n));
    }
  }
  if (j.contains("vsock") && !j.at("vsock").is_null()) {
    KILN_ASSIGN(c.vsock, vsock_from_json(j.at("vsock"), "vsock"));
  }
  if (j.contains("mmds-config") && !j.at("mmds-config").is_null()) {
    KILN_ASSIGN(c.mmds, mmds_config_from_json(j.at("mmds-config"), "mmds-config"));
  }
  if (j.contains("entropy") && !j.at("entropy").is_null()) {
    KILN_ASSIGN(c.entropy, entropy_config_from_json(j.at("entropy")));
  }
  if (j.contains("logger") && !j.at("logger").is_null()) {
    KILN_ASSIGN(c.logger, logger_config_from_json(j.at("logger")));
  }
  if (j.contains("metrics") && !j.at("metrics").is_null()) {
    KILN_ASSIGN(c.metrics, metrics_config_from_json(j.at("metrics")));
  }
  if (j.contains("cpu-config") && !j.at("cpu-config").is_null()) {
    KILN_ASSIGN(auto parsed, cpu_template_from_json(j.at("cpu-config"), "cpu-config"));  // before the aggregate: see controller.cpp
    c.cpu_config = CpuConfig{j.at("cpu-config"), std::move(parsed)};
  }
  if (j.contains("kiln")) {
    KILN_ASSIGN(c.kiln, kiln_config_from_json(j.at("kiln")));
  }
  KILN_CHECK(validate(c));
  return c;
}

Result<void> validate(const VmConfig& c) {
  if (c.boot_source.kernel_image_path.empty())
    return plain_error("boot-source.kernel_image_path (--kernel) is required: the path of a Linux bzImage or ELF vmlinux");
  KILN_CHECK(check_drives(c.drives));
  KILN_CHECK(check_network_interfaces(c.network_interfaces));
  if (c.mmds) KILN_CHECK(check_mmds_interfaces(*c.mmds, c.network_interfaces));
  return validate(c.machine_config);
}

}  // namespace kiln
