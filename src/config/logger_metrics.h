#pragma once
// Firecracker's /logger and /metrics: where kiln's log and its metrics lines go.
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <spdlog/common.h>

#include "base/error.h"

namespace kiln {

struct LoggerConfig {
  std::string log_path;  // empty: stderr
  std::string level = "Info";  // Error, Warning, Info, Debug, Trace or Off (any case)
  bool show_level = false;
  bool show_log_origin = false;
};

// A file or FIFO that gets a JSON line every 60 s and on FlushMetrics.
struct MetricsConfig {
  std::string metrics_path;
};

Result<LoggerConfig> logger_config_from_json(const nlohmann::json& j);
Result<MetricsConfig> metrics_config_from_json(const nlohmann::json& j);
nlohmann::json to_json(const LoggerConfig& l);
nlohmann::json to_json(const MetricsConfig& m);
// Firecracker's level names (Error, Warning, Info, Debug, Trace, Off), in any case.
std::optional<spdlog::level::level_enum> log_level_from_name(std::string_view name);

}  // namespace kiln
