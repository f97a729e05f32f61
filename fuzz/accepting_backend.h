#pragma once
// A VmBackend that accepts every call, so that fuzzed requests reach the post-boot routes too.
#include "api/controller.h"

namespace kiln::fuzz {

struct AcceptingBackend : api::VmBackend {
  Result<void> configure_logger(const LoggerConfig&) override { return {}; }
  Result<void> configure_metrics(const MetricsConfig&) override { return {}; }
  void machine_config_changed(const MachineConfig&) override {}
  Result<void> check_drive(const DriveConfig&) override { return {}; }
  Result<void> update_drive(const DriveConfig&) override { return {}; }
  Result<void> start(const VmConfig&) override { return {}; }
  Result<void> pause() override { return {}; }
  Result<void> resume() override { return {}; }
  Result<void> send_ctrl_alt_del() override { return {}; }
  Result<void> flush_metrics() override { return {}; }
};

}  // namespace kiln::fuzz
