#pragma once
// Logging goes through spdlog; kiln's own lines go to stderr so the guest console keeps stdout.
#include <chrono>
#include <string_view>

#include <spdlog/spdlog.h>

namespace kiln {

void init_logging(std::string_view level);

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
