#include "cli/vmm_backend.h"

#include "base/log.h"

#include <optional>

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <utility>

namespace kiln {


VmmBackend::~VmmBackend() {
  if (metrics_timer_) (void)loop_.cancel_timer(*metrics_timer_);
}

Result<void> VmmBackend::configure_logger(const LoggerConfig& config) {
  return configure_log_output({.path = config.log_path,
                               .level = log_level_from_name(config.level).value_or(spdlog::level::info),
                               .show_level = config.show_level,
                               .show_origin = config.show_log_origin});
}

Result<void> VmmBackend::configure_metrics(const MetricsConfig& config) {
  KILN_ASSIGN(UniqueFd fd, open_output(config.metrics_path, "metrics_path"));
  {
    std::lock_guard lock(mu_);
    metrics_fd_ = std::move(fd);
  }
  KILN_ASSIGN(metrics_timer_, loop_.add_timer(metrics_period_, metrics_period_, [this] { (void)write_metrics_line(); }));
  return {};
}

std::chrono::milliseconds VmmBackend::metrics_period_from_env() {
  const char* env = std::getenv("KILN_METRICS_PERIOD_MS");
  if (env == nullptr || *env == '\0') return kMetricsPeriod;
  char* end = nullptr;
  const long ms = std::strtol(env, &end, 10);
  if (*end != '\0' || ms < 10 || ms > 3'600'000) {
    SPDLOG_WARN("KILN_METRICS_PERIOD_MS='{}' is not a number of milliseconds from 10 to 3600000; using 60 s", env);
    return kMetricsPeriod;
  }
  return std::chrono::milliseconds(ms);
}

void VmmBackend::machine_config_changed(const MachineConfig& config) {
  // A preparation still running is waited for here (a few ms), and its VM dropped.
  prepared_ = std::async(std::launch::async, [mib = config.mem_size_mib] { return PreparedVm::create(mib); });
}

Result<void> VmmBackend::check_drive(const DriveConfig& drive) {
  KILN_ASSIGN(auto image, virtio::DiskImage::open(drive.path_on_host, drive.is_read_only, "path_on_host"));
  (void)image;  // closed again: InstanceStart opens and locks it for the VM
  return {};
}

Result<void> VmmBackend::update_drive(const DriveConfig& drive) {
  KILN_ASSIGN(auto image, virtio::DiskImage::open(drive.path_on_host, drive.is_read_only, "path_on_host"));
  std::lock_guard lock(mu_);
  if (!machine_) return plain_error("the VM is not running");
  return machine_->replace_drive_image(drive.drive_id, std::move(image));
}

Result<void> VmmBackend::start(const VmConfig& config) {
  std::optional<PreparedVm> prepared;
  if (prepared_.valid()) {
    if (auto p = prepared_.get(); p) prepared = std::move(*p);
    else SPDLOG_DEBUG("the VM prepared ahead of InstanceStart failed ({}); building it now", p.error().message());
  }
  auto machine = VmBuilder::build(config, io_, std::move(prepared));
  if (!machine) {
    machine_config_changed(config.machine_config);  // for the next InstanceStart
    return std::unexpected(machine.error());
  }
  KILN_CHECK((*machine)->start());
  {
    std::lock_guard lock(mu_);
    machine_ = std::move(*machine);
    started_ = true;
  }
  const std::uint64_t one = 1;
  (void)!::write(started_fd_.get(), &one, sizeof(one));
  return {};
}

Result<void> VmmBackend::pause() { return machine_->pause(); }
Result<void> VmmBackend::resume() { return machine_->resume(); }
Result<void> VmmBackend::send_ctrl_alt_del() { return machine_->send_ctrl_alt_del(); }
Result<void> VmmBackend::flush_metrics() { return write_metrics_line(); }

void VmmBackend::count_request(bool ok) {
  std::lock_guard lock(mu_);
  ++(ok ? requests_ok_ : requests_failed_);
}

std::string VmmBackend::metrics_line() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  nlohmann::json line = {
      {"utc_timestamp_ms", std::chrono::duration_cast<std::chrono::milliseconds>(now).count()},
      {"api_server", {{"requests_ok", requests_ok_}, {"requests_failed", requests_failed_}}},
      {"metrics", {{"lines_written", metrics_lines_}, {"lines_lost", metrics_lines_lost_}}},
      {"logger", {{"missed_log_count", log_lines_missed()}, {"missed_metrics_count", metrics_lines_lost_}}},
  };
  if (machine_) line["vm"] = machine_->metrics();
  return line.dump() + "\n";
}

Result<void> VmmBackend::write_metrics_line() {
  std::lock_guard lock(mu_);
  if (!metrics_fd_) return plain_error("no metrics path; PUT /metrics first");
  const std::string line = metrics_line();
  // One write: a reader of the FIFO sees whole lines; a full FIFO loses the line, not kiln's time.
  const ssize_t n = ::write(metrics_fd_.get(), line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    ++metrics_lines_lost_;
    if (n < 0) return errno_error("writing the metrics line");
    return plain_error("the metrics line was cut short (the FIFO is full)");
  }
  ++metrics_lines_;
  return {};
}

void VmmBackend::watch_stop_signals() {
  // The machine does not watch them too: one handler, here, for the VM's whole life.
  stop_signals_ = std::exchange(io_.stop_signals, -1);
  if (stop_signals_ < 0) return;
  if (auto r = loop_.add(stop_signals_, EPOLLIN, [this](std::uint32_t) { on_stop_signal(); }); !r) {
    SPDLOG_ERROR("the stop signals cannot be watched: {}", r.error().message());
    std::abort();  // without it SIGTERM would not stop kiln: nothing sensible to go on with
  }
}

void VmmBackend::on_stop_signal() {
  signalfd_siginfo si{};
  if (::read(stop_signals_, &si, sizeof(si)) != static_cast<ssize_t>(sizeof(si))) return;
  const std::string name = ::strsignal(static_cast<int>(si.ssi_signo));
  std::lock_guard lock(mu_);
  if (started_) {
    machine_->request_stop({VmEnd::kSignal, 0, name});
    return;
  }
  if (stopped_before_start_) return;
  stopped_before_start_ = name;
  const std::uint64_t one = 1;
  (void)!::write(started_fd_.get(), &one, sizeof(one));  // wakes run_until_end
}

VmExitStatus VmmBackend::run_until_end() {
  // InstanceStart, or a stop signal before it (both on the VMM loop), writes the eventfd.
  pollfd fd{started_fd_.get(), POLLIN, 0};
  while (::poll(&fd, 1, -1) < 0 && errno == EINTR) {
  }
  Machine* machine;
  {
    std::lock_guard lock(mu_);
    if (!started_) return {VmEnd::kSignal, 0, stopped_before_start_.value_or("a signal") + " before InstanceStart"};
    machine = machine_.get();
  }
  const VmExitStatus status = machine->wait();
  if (metrics_fd_) (void)write_metrics_line();  // the last counters
  return status;
}

}  // namespace kiln
