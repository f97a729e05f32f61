#pragma once
// The API's VM: api::VmBackend over a Machine, plus the metrics file. Its calls run on the VMM
// thread (the event loop `loop`, behind api::PostedBackend): InstanceStart builds and starts the
// Machine there, the metrics timer fires there; the main thread waits in run_until_end().
#include <sys/eventfd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "api/controller.h"
#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "vmm/builder.h"

namespace kiln {

class VmmBackend final : public api::VmBackend {
 public:
  VmmBackend(MachineIo io, EventLoop& loop)
      : io_(io), loop_(loop), started_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    io_.loop = &loop_;
    watch_stop_signals();
    // Without it run_until_end() could never learn that the VM started: nothing to go on with.
    if (!started_fd_) {
      std::perror("kiln: eventfd");
      std::abort();
    }
  }
  ~VmmBackend() override;

  Result<void> configure_logger(const LoggerConfig& config) override;
  Result<void> configure_metrics(const MetricsConfig& config) override;
  void machine_config_changed(const MachineConfig& config) override;
  Result<void> check_drive(const DriveConfig& drive) override;
  Result<void> update_drive(const DriveConfig& drive) override;
  Result<void> start(const VmConfig& config) override;
  Result<void> pause() override;
  Result<void> resume() override;
  Result<void> send_ctrl_alt_del() override;
  Result<void> flush_metrics() override;

  // Waits for InstanceStart (or a stop signal before it), then for the VM's end.
  VmExitStatus run_until_end();
  // The stop signals are served on the VMM loop, before InstanceStart and after it.
  void watch_stop_signals();
  void on_stop_signal();
  // Counts one API request (for the metrics).
  void count_request(bool ok);

  // How often the metrics file gets a line without being asked: every 60 s as in Firecracker, or
  // every KILN_METRICS_PERIOD_MS milliseconds if that is set (for tests).
  static constexpr std::chrono::milliseconds kMetricsPeriod{60000};

 private:
  Result<void> write_metrics_line();
  std::string metrics_line();

  MachineIo io_;
  EventLoop& loop_;
  // The VM being prepared for InstanceStart (see PreparedVm), for the memory size last configured.
  std::future<Result<PreparedVm>> prepared_;
  std::mutex mu_;
  std::unique_ptr<Machine> machine_;
  bool started_ = false;
  std::optional<std::string> stopped_before_start_;  // the signal's name
  int stop_signals_ = -1;
  UniqueFd started_fd_;  // an eventfd: readable once the VM runs
  UniqueFd metrics_fd_;
  std::uint64_t metrics_lines_ = 0, metrics_lines_lost_ = 0;
  std::uint64_t requests_ok_ = 0, requests_failed_ = 0;
  std::optional<EventLoop::TimerId> metrics_timer_;
  std::chrono::milliseconds metrics_period_ = metrics_period_from_env();
  static std::chrono::milliseconds metrics_period_from_env();
};

}  // namespace kiln
