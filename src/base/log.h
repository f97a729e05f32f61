#pragma once
// Logging goes through spdlog; kiln's own lines go to stderr so the guest console keeps stdout.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
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

// A limit on log lines a guest can trigger in a loop: allow() is true at most once per `every`,
// from any number of threads; the lines held back in between are counted, and the next line that
// gets through can say how many (suppressed_note()).
class RateLimit {
 public:
  explicit RateLimit(std::chrono::milliseconds every = std::chrono::seconds(1)) : every_(every) {}
  bool allow();
  // ", N similar lines suppressed" for the lines held back since the last one allowed (and resets
  // the count), or "" if there were none.
  std::string suppressed_note();
  [[nodiscard]] std::uint64_t suppressed_total() const { return total_suppressed_.load(std::memory_order_relaxed); }

 private:
  std::chrono::milliseconds every_;
  std::atomic<std::int64_t> last_ns_{std::numeric_limits<std::int64_t>::min()};
  std::atomic<std::uint64_t> suppressed_{0}, total_suppressed_{0};
};

}  // namespace kiln
