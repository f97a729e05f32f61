#pragma once
// Firecracker's /boot-source: the kernel, the initrd and the command line.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace kiln {

struct BootSource {
  std::string kernel_image_path;
  std::optional<std::string> initrd_path;
  std::optional<std::string> boot_args;
};

// The default kernel command line when none is given (Firecracker's idea, with the console on).
inline constexpr const char* kDefaultBootArgs = "console=ttyS0 panic=1";

Result<BootSource> boot_source_from_json(const nlohmann::json& j);
nlohmann::json to_json(const BootSource& b);

}  // namespace kiln
