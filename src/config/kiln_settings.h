#pragma once
// kiln's own settings, which Firecracker has no field for (the "kiln" section of the config).
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace kiln {

struct SerialConfig {
  enum class Mode { kStdio, kFile, kNone };
  Mode mode = Mode::kStdio;
  std::string path;  // for kFile
};

struct KilnConfig {
  SerialConfig serial;
  bool boot_timer = false;
  bool host_kernel_args = true;  // add the kernel arguments this kind of host needs
};

// "stdio", "none", "file:PATH"
Result<SerialConfig> parse_serial(std::string_view text);
Result<KilnConfig> kiln_config_from_json(const nlohmann::json& j);
nlohmann::json to_json(const KilnConfig& k);

}  // namespace kiln
