#pragma once
// The API thread's side of the VM: every VmBackend call is posted to the VMM thread's event loop
// and waited for, so the API thread itself never touches KVM, guest memory or files (and its
// seccomp filter can stay small). On the loop's own thread a call goes straight through; once the
// loop has stopped (the VM is gone) a call fails at once instead of waiting for ever.
#include "api/controller.h"
#include "base/event_loop.h"

namespace kiln::api {

class PostedBackend final : public VmBackend {
 public:
  PostedBackend(EventLoop& loop, VmBackend& inner) : loop_(loop), inner_(inner) {}

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

 private:
  Result<void> call(const std::function<Result<void>(VmBackend&)>& fn);
  EventLoop& loop_;
  VmBackend& inner_;
};

}  // namespace kiln::api
