#pragma once
// Logging goes through spdlog; kiln's own lines go to stderr so the guest console keeps stdout.
#include <chrono>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "base/error.h"
#include "base/unique_fd.h"

namespace kiln {

void init_logging(std::string_view level);

// Firecracker's /logger: kiln's log goes to `path` (a file, appended to, or a FIFO; empty keeps
// stderr), at `level`, each line with its level and/or its source file:line if asked. A writer that
// cannot keep up (a FIFO nobody drains) loses lines, and kiln never waits for it.
struct LogOutput {
  std::string path;
  spdlog::level::level_enum level = spdlog::level::info;
  bool show_level = false;
  bool show_origin = false;
};
Result<void> configure_log_output(const LogOutput& out);
// Lines lost so far because the log's file or FIFO could not take them at once (Firecracker's
// logger.missed_log_count).
std::uint64_t log_lines_missed();

// For the log and the metrics: a file (created if missing, appended to) or a FIFO (opened
// read-write, so that opening never waits for a reader); writes to it never block. `field` names
// the setting in the error.
Result<UniqueFd> open_output(const std::string& path, std::string_view field);

// Monotonic time at process start (for the boot timer: time since exec).
std::chrono::steady_clock::time_point process_start_time();

// Calls fn at most once per `every` (for messages a guest can trigger in a loop).
class RateLimit {
 public:
  explicit RateLimit(std::chrono::milliseconds every = std::chrono::seconds(1)) : every_(every) {}
  bool allow();
  [[nodiscard]] unsigned long suppressed() const { return suppressed_; }

 private:
  std::chrono::milliseconds every_;
  std::chrono::steady_clock::time_point last_{};
  unsigned long suppressed_ = 0;
};

}  // namespace kiln
