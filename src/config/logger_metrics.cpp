#include "config/logger_metrics.h"

#include <cctype>

#include "config/json_fields.h"

namespace kiln {

using nlohmann::json;

Result<LoggerConfig> logger_config_from_json(const json& j) {
  LoggerConfig out;
  KILN_CHECK(only_fields(j, "logger", {"log_path", "level", "show_level", "show_log_origin", "module"}));
  KILN_CHECK(get_field(j, "logger", "log_path", out.log_path));
  KILN_CHECK(get_field(j, "logger", "level", out.level));
  KILN_CHECK(get_field(j, "logger", "show_level", out.show_level));
  KILN_CHECK(get_field(j, "logger", "show_log_origin", out.show_log_origin));
  if (j.contains("module") && !j.at("module").is_null())
    return plain_error("logger.module: kiln logs every module to one logger; remove the field");
  if (!log_level_from_name(out.level))
    return plain_error("logger.level '{}': expected Error, Warning, Info, Debug, Trace or Off", out.level);
  return out;
}

Result<MetricsConfig> metrics_config_from_json(const json& j) {
  MetricsConfig out;
  KILN_CHECK(only_fields(j, "metrics", {"metrics_path"}));
  if (!j.contains("metrics_path")) return plain_error("metrics.metrics_path is required");
  KILN_CHECK(get_field(j, "metrics", "metrics_path", out.metrics_path));
  if (out.metrics_path.empty()) return plain_error("metrics.metrics_path: empty; give a file or FIFO path");
  return out;
}

std::optional<spdlog::level::level_enum> log_level_from_name(std::string_view name) {
  std::string n(name);
  for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (n == "error") return spdlog::level::err;
  if (n == "warning" || n == "warn") return spdlog::level::warn;
  if (n == "info") return spdlog::level::info;
  if (n == "debug") return spdlog::level::debug;
  if (n == "trace") return spdlog::level::trace;
  if (n == "off") return spdlog::level::off;
  return std::nullopt;
}

json to_json(const LoggerConfig& l) {
  return {{"log_path", l.log_path}, {"level", l.level}, {"show_level", l.show_level}, {"show_log_origin", l.show_log_origin}};
}

json to_json(const MetricsConfig& m) { return {{"metrics_path", m.metrics_path}}; }

}  // namespace kiln
