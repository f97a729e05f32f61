#include "base/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace kiln {

namespace {
// Taken during static initialization, the earliest point kiln's own code runs after exec. The
// benchmark measures from before exec from the outside (see bench/), using the absolute
// CLOCK_MONOTONIC stamp the boot timer prints.
const std::chrono::steady_clock::time_point g_start = std::chrono::steady_clock::now();
}  // namespace

std::chrono::steady_clock::time_point process_start_time() { return g_start; }

void init_logging(std::string_view level) {
  auto logger = spdlog::stderr_color_mt("kiln");
  logger->set_pattern("%^[kiln %l]%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
}

bool RateLimit::allow() {
  const auto now = std::chrono::steady_clock::now();
  if (last_.time_since_epoch().count() != 0 && now - last_ < every_) {
    ++suppressed_;
    return false;
  }
  last_ = now;
  return true;
}

}  // namespace kiln
