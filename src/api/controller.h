#pragma once
// Firecracker's REST API, answered for one VM: routing, body parsing and the pre-boot / post-boot
// rules. The VM itself is behind VmBackend, so this layer has no KVM in it and is unit-tested and
// fuzzed with a fake backend. Thread-safe: the HTTP server calls handle() from its own thread.
#include <memory>
#include <mutex>
#include <string>

#include "api/http.h"
#include "base/error.h"
#include "config/vm_config.h"
#include "mmds/store.h"

namespace kiln::api {

enum class VmState { kNotStarted, kRunning, kPaused };

// What the controller asks of the VM. Each call is made with the controller's lock held, once the
// request has passed every check that does not need the VM.
class VmBackend {
 public:
  virtual ~VmBackend() = default;
  // Pre-boot: where the log and the metrics go (opened now, so a bad path is the request's error).
  virtual Result<void> configure_logger(const LoggerConfig& config) = 0;
  virtual Result<void> configure_metrics(const MetricsConfig& config) = 0;
  // Pre-boot: the machine's shape as configured so far, for work that needs only that (creating
  // the VM and registering its memory ahead of InstanceStart). A hint: nothing may depend on it.
  virtual void machine_config_changed(const MachineConfig& config) = 0;
  // Pre-boot: a drive's image can be opened as the drive asks (it exists, is a file or block
  // device, is not held by another VM, can be written if the drive is writable). Nothing is kept.
  virtual Result<void> check_drive(const DriveConfig& drive) = 0;
  // Post-boot: drive `id` gets the image at `path_on_host` (opened as the drive was); the guest
  // sees the new size through a config-change interrupt.
  virtual Result<void> update_drive(const DriveConfig& drive) = 0;
  // InstanceStart: build the VM from `config` and start its vCPUs; returns once they run.
  virtual Result<void> start(const VmConfig& config) = 0;
  virtual Result<void> pause() = 0;
  virtual Result<void> resume() = 0;
  virtual Result<void> send_ctrl_alt_del() = 0;
  virtual Result<void> flush_metrics() = 0;
};

struct InstanceInfo {
  std::string id = "anonymous-instance";
  std::string version;
};

class Controller {
 public:
  // `mmds`: the metadata service's data store (/mmds), shared with the VM that serves it.
  Controller(VmBackend& backend, InstanceInfo info, VmConfig initial = {},
             std::shared_ptr<mmds::DataStore> mmds = std::make_shared<mmds::DataStore>())
      : backend_(backend), info_(std::move(info)), config_(std::move(initial)), mmds_(std::move(mmds)) {}

  HttpResponse handle(const HttpRequest& request);

  // --config-file: the whole configuration, then InstanceStart, as if each had come over the API.
  Result<void> start_from_config(VmConfig config);

  [[nodiscard]] VmState state() const;
  [[nodiscard]] VmConfig config() const;

 private:
  Result<HttpResponse> route(const HttpRequest& request);
  Result<HttpResponse> put_action(const nlohmann::json& body);
  Result<HttpResponse> patch_vm(const nlohmann::json& body);
  Result<HttpResponse> put_drive(const std::string& id, const nlohmann::json& body);
  Result<HttpResponse> patch_drive(const std::string& id, const nlohmann::json& body);
  Result<HttpResponse> put_network_interface(const std::string& id, const nlohmann::json& body);
  Result<HttpResponse> patch_network_interface(const std::string& id, const nlohmann::json& body);
  Result<void> instance_start();
  Result<void> pre_boot() const;
  Result<void> post_boot() const;

  VmBackend& backend_;
  InstanceInfo info_;
  mutable std::mutex mu_;
  VmConfig config_;
  std::shared_ptr<mmds::DataStore> mmds_;
  bool boot_source_set_ = false;
  VmState state_ = VmState::kNotStarted;
};

}  // namespace kiln::api
