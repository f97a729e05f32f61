#include "api/posted_backend.h"

#include <future>

namespace kiln::api {

Result<void> PostedBackend::call(const std::function<Result<void>(VmBackend&)>& fn) {
  if (loop_.in_loop_thread()) return fn(inner_);
  auto done = std::make_shared<std::promise<Result<void>>>();
  auto answer = done->get_future();
  if (!loop_.post([this, done, &fn] { done->set_value(fn(inner_)); }))
    return plain_error("the VMM has stopped; the request was not carried out");
  try {
    return answer.get();
  } catch (const std::future_error&) {  // the loop stopped with the request still queued
    return plain_error("the VMM stopped before carrying out the request");
  }
}

Result<void> PostedBackend::configure_logger(const LoggerConfig& config) {
  return call([&](VmBackend& b) { return b.configure_logger(config); });
}
Result<void> PostedBackend::configure_metrics(const MetricsConfig& config) {
  return call([&](VmBackend& b) { return b.configure_metrics(config); });
}
void PostedBackend::machine_config_changed(const MachineConfig& config) {
  (void)call([&](VmBackend& b) {
    b.machine_config_changed(config);
    return Result<void>{};
  });
}
Result<void> PostedBackend::check_drive(const DriveConfig& drive) {
  return call([&](VmBackend& b) { return b.check_drive(drive); });
}
Result<void> PostedBackend::update_drive(const DriveConfig& drive) {
  return call([&](VmBackend& b) { return b.update_drive(drive); });
}
Result<void> PostedBackend::start(const VmConfig& config) {
  return call([&](VmBackend& b) { return b.start(config); });
}
Result<void> PostedBackend::pause() {
  return call([](VmBackend& b) { return b.pause(); });
}
Result<void> PostedBackend::resume() {
  return call([](VmBackend& b) { return b.resume(); });
}
Result<void> PostedBackend::send_ctrl_alt_del() {
  return call([](VmBackend& b) { return b.send_ctrl_alt_del(); });
}
Result<void> PostedBackend::flush_metrics() {
  return call([](VmBackend& b) { return b.flush_metrics(); });
}

}  // namespace kiln::api
