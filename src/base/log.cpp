#include "base/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "base/unique_fd.h"

namespace kiln {

namespace {
// Taken during static initialization, the earliest point kiln's own code runs after exec. The
// benchmark measures from before exec from the outside (see bench/), using the absolute
// CLOCK_MONOTONIC stamp the boot timer prints.
const std::chrono::steady_clock::time_point g_start = std::chrono::steady_clock::now();

std::atomic<std::uint64_t> g_missed{0};

// Writes each line with one non-blocking write(): a full FIFO or pipe drops the line, counted.
class FdSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit FdSink(UniqueFd fd) : fd_(std::move(fd)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    if (::write(fd_.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      g_missed.fetch_add(1, std::memory_order_relaxed);
  }
  void flush_() override {}

 private:
  UniqueFd fd_;
};

}  // namespace

Result<UniqueFd> open_output(const std::string& path, std::string_view field) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600));
  if (!fd) return errno_error("{} '{}': cannot open it for writing (check the directory and permissions)", field, path);
  return fd;
}

Result<void> configure_log_output(const LogOutput& out) {
  std::shared_ptr<spdlog::logger> logger;
  if (out.path.empty()) {
    logger = std::make_shared<spdlog::logger>("kiln", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  } else {
    KILN_ASSIGN(UniqueFd fd, open_output(out.path, "log_path"));
    logger = std::make_shared<spdlog::logger>("kiln", std::make_shared<FdSink>(std::move(fd)));
  }
  std::string pattern = "%Y-%m-%dT%H:%M:%S.%f [kiln]";
  if (out.show_level) pattern += " [%l]";
  if (out.show_origin) pattern += " [%s:%#]";
  pattern += " %v";
  logger->set_pattern(pattern);
  logger->set_level(out.level);
  spdlog::set_default_logger(logger);
  spdlog::set_level(out.level);
  return {};
}

std::chrono::steady_clock::time_point process_start_time() { return g_start; }

std::uint64_t log_lines_missed() { return g_missed.load(std::memory_order_relaxed); }

void init_logging(std::string_view level) {
  auto logger = std::make_shared<spdlog::logger>("kiln", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_pattern("%^[kiln %l]%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
}

bool RateLimit::allow() {
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  std::int64_t last = last_ns_.load(std::memory_order_relaxed);
  // One thread wins the slot; the others, and every call until `every_` has passed, are counted.
  if ((last == std::numeric_limits<std::int64_t>::min() || now - last >= every_.count() * 1'000'000) &&
      last_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed))
    return true;
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  total_suppressed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

std::string RateLimit::suppressed_note() {
  const std::uint64_t n = suppressed_.exchange(0, std::memory_order_relaxed);
  return n == 0 ? std::string() : fmt::format(" ({} similar lines suppressed)", n);
}

}  // namespace kiln
