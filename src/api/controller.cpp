#include "api/controller.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace kiln::api {

using nlohmann::json;

namespace {

// Bytes a client sent can be echoed in an answer, and need not be UTF-8: they are replaced, never a
// reason to throw.
HttpResponse ok_json(const json& body) { return {200, body.dump(-1, ' ', false, json::error_handler_t::replace)}; }
HttpResponse no_content() { return {204, {}}; }

// Firecracker resources kiln does not have yet: any method on them is a 400 that says so.
struct MissingResource {
  std::string_view prefix;  // the path, or its first segment for "/drives/{id}"
  bool has_id;
  std::string_view what;
};
constexpr std::array kMissing = {
    MissingResource{"/balloon", false, "balloon device"},
    MissingResource{"/balloon/statistics", false, "balloon device"},
    MissingResource{"/snapshot/create", false, "snapshots"},
    MissingResource{"/snapshot/load", false, "snapshots"},
    MissingResource{"/serial", false, "serial device configured over the API (use --serial)"},
    MissingResource{"/hotplug/memory", false, "memory hotplug"},
};

const MissingResource* missing_resource(std::string_view path) {
  for (const auto& m : kMissing) {
    if (path == m.prefix) return &m;
    if (m.has_id && path.starts_with(m.prefix) && path.size() > m.prefix.size() && path[m.prefix.size()] == '/')
      return &m;
  }
  return nullptr;
}

const char* state_name(VmState s) {
  switch (s) {
    case VmState::kNotStarted: return "Not started";
    case VmState::kRunning: return "Running";
    case VmState::kPaused: return "Paused";
  }
  return "?";
}

// A copy of `list` with `item` in place of the entry with its id (`id` is the id's member), or
// after the others when there is none: what a PUT of a resource by id does, checked before it is kept.
template <class T>
std::vector<T> with_put(const std::vector<T>& list, const T& item, std::string T::*id) {
  std::vector<T> out = list;
  auto it = std::find_if(out.begin(), out.end(), [&](const T& e) { return e.*id == item.*id; });
  if (it != out.end()) *it = item;
  else out.push_back(item);
  return out;
}

Result<json> parse_body(const HttpRequest& r) {
  if (r.body.empty()) return plain_error("{} {}: the request needs a JSON body", r.method, r.path);
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return plain_error("{} {}: the body is not valid JSON", r.method, r.path);
  return j;
}

Result<void> with_where(Result<void> r, std::string_view where) {
  if (!r) return plain_error("{}: {}", where, r.error().message());
  return {};
}

}  // namespace

HttpResponse Controller::handle(const HttpRequest& request) {
  std::lock_guard lock(mu_);
  auto r = route(request);
  if (r) return *r;
  return fault(400, r.error().message());
}

Result<void> Controller::pre_boot() const {
  if (state_ != VmState::kNotStarted)
    return plain_error("The requested operation is not supported after starting the microVM.");
  return {};
}

Result<void> Controller::post_boot() const {
  if (state_ == VmState::kNotStarted)
    return plain_error("The requested operation is not supported before starting the microVM.");
  return {};
}

Result<HttpResponse> Controller::route(const HttpRequest& r) {
  const std::string& m = r.method;
  const std::string& p = r.path;
  if (m == "GET") {
    if (p == "/")
      return ok_json({{"id", info_.id}, {"state", state_name(state_)}, {"vmm_version", info_.version}, {"app_name", "kiln"}});
    if (p == "/version") return ok_json({{"firecracker_version", info_.version}});
    if (p == "/machine-config") return ok_json(to_json(config_)["machine-config"]);
    if (p == "/vm/config") return ok_json(to_json(config_));
    if (p == "/mmds") return ok_json(mmds_->get().value_or(json::object()));
  } else if (m == "PUT" || m == "PATCH") {
    const bool put = m == "PUT";
    if (p == "/machine-config") {
      KILN_ASSIGN(const json body, parse_body(r));
      KILN_CHECK(pre_boot());
      KILN_ASSIGN(config_.machine_config, machine_config_from_json(body, config_.machine_config, put));
      backend_.machine_config_changed(config_.machine_config);
      return no_content();
    }
    if (put && p == "/boot-source") {
      KILN_ASSIGN(const json body, parse_body(r));
      KILN_CHECK(pre_boot());
      KILN_ASSIGN(config_.boot_source, boot_source_from_json(body));
      boot_source_set_ = true;
      return no_content();
    }
    if (put && p == "/cpu-config") {
      KILN_ASSIGN(const json body, parse_body(r));
      KILN_CHECK(pre_boot());
      // Parsed before the CpuConfig is built: a return from the middle of building an aggregate (as
      // the old statement-expression KILN_TRY allowed) leaked what it had built so far under clang.
      KILN_ASSIGN(auto parsed, cpu_template_from_json(body, "cpu-config"));
      config_.cpu_config = CpuConfig{body, std::move(parsed)};
      return no_content();
    }
    if (put && p == "/logger") {
      KILN_ASSIGN(const json body, parse_body(r));
      KILN_CHECK(pre_boot());
      KILN_ASSIGN(auto logger, logger_config_from_json(body));
      KILN_CHECK(with_where(backend_.configure_logger(logger), "logger"));
      config_.logger = std::move(logger);
      return no_content();
    }
    if (put && p == "/metrics") {
      KILN_ASSIGN(const json body, parse_body(r));
      KILN_CHECK(pre_boot());
      if (config_.metrics) return plain_error("metrics: already configured; the metrics path can be set once");
      KILN_ASSIGN(auto metrics, metrics_config_from_json(body));
      KILN_CHECK(with_where(backend_.configure_metrics(metrics), "metrics"));
      config_.metrics = std::move(metrics);
      return no_content();
    }
    if (put && p == "/actions") {
      KILN_ASSIGN(const nlohmann::json body, parse_body(r));
      return put_action(body);
    }
    if (p.starts_with("/drives/")) {
      KILN_ASSIGN(const nlohmann::json body, parse_body(r));
      const std::string id = p.substr(8);
      return put ? put_drive(id, body) : patch_drive(id, body);
    }
    if (p.starts_with("/network-interfaces/")) {
      KILN_ASSIGN(const nlohmann::json body, parse_body(r));
      const std::string id = p.substr(20);
      return put ? put_network_interface(id, body) : patch_network_interface(id, body);
    }
    if (put && p == "/entropy") {
      KILN_ASSIGN(const nlohmann::json body, parse_body(r));
      KILN_CHECK(pre_boot());
      KILN_ASSIGN(config_.entropy, entropy_config_from_json(body));
      return no_content();
    }
    if (p == "/mmds") {
      KILN_ASSIGN(const nlohmann::json body, parse_body(r));
      KILN_CHECK(put ? mmds_->put(body) : mmds_->patch(body));
      return no_content();
    }
    if (put && p == "/vsock") {
      KILN_ASSIGN(const nlohmann::json body, parse_body(r));
      KILN_CHECK(pre_boot());
      KILN_ASSIGN(config_.vsock, vsock_from_json(body, "vsock"));
      return no_content();
    }
    if (put && p == "/mmds/config") {
      KILN_ASSIGN(const nlohmann::json body, parse_body(r));
      KILN_CHECK(pre_boot());
      KILN_ASSIGN(auto mmds, mmds_config_from_json(body, "mmds/config"));
      KILN_CHECK(check_mmds_interfaces(mmds, config_.network_interfaces));
      config_.mmds = std::move(mmds);
      return no_content();
    }
    if (!put && p == "/vm") {
      KILN_ASSIGN(const nlohmann::json body, parse_body(r));
      return patch_vm(body);
    }
  }
  if (const auto* missing = missing_resource(p))
    return plain_error("kiln has no {} yet: {} {} is not supported by this version", missing->what, m, p);
  return plain_error("Invalid request method and/or path: {} {}.", m, p);
}

Result<HttpResponse> Controller::put_action(const json& body) {
  if (!body.is_object() || !body.contains("action_type") || !body.at("action_type").is_string())
    return plain_error("actions: action_type is required: InstanceStart, SendCtrlAltDel or FlushMetrics");
  KILN_CHECK(only_fields(body, "actions", {"action_type"}));
  const std::string type = body.at("action_type").get<std::string>();
  if (type == "InstanceStart") {
    KILN_CHECK(instance_start());
  } else if (type == "SendCtrlAltDel") {
    KILN_CHECK(post_boot());
    KILN_CHECK(with_where(backend_.send_ctrl_alt_del(), "SendCtrlAltDel"));
  } else if (type == "FlushMetrics") {
    if (!config_.metrics) return plain_error("FlushMetrics: no metrics path; PUT /metrics with metrics_path first");
    KILN_CHECK(with_where(backend_.flush_metrics(), "FlushMetrics"));
  } else {
    return plain_error("actions.action_type '{}': expected InstanceStart, SendCtrlAltDel or FlushMetrics", type);
  }
  return no_content();
}

Result<HttpResponse> Controller::patch_vm(const json& body) {
  if (!body.is_object() || !body.contains("state") || !body.at("state").is_string())
    return plain_error("vm: state is required: Paused or Resumed");
  KILN_CHECK(only_fields(body, "vm", {"state"}));
  const std::string want = body.at("state").get<std::string>();
  if (want != "Paused" && want != "Resumed") return plain_error("vm.state '{}': expected Paused or Resumed", want);
  KILN_CHECK(post_boot());
  if (want == "Paused" && state_ == VmState::kRunning) {
    KILN_CHECK(with_where(backend_.pause(), "pause"));
    state_ = VmState::kPaused;
  } else if (want == "Resumed" && state_ == VmState::kPaused) {
    KILN_CHECK(with_where(backend_.resume(), "resume"));
    state_ = VmState::kRunning;
  }
  return no_content();
}

Result<HttpResponse> Controller::put_drive(const std::string& id, const json& body) {
  const std::string where = "drives/" + id;
  KILN_CHECK(check_drive_id(id, where));
  KILN_ASSIGN(auto drive, drive_config_from_json(body, where));
  if (drive.drive_id != id)
    return plain_error("{}: the body's drive_id '{}' is not the path's '{}'", where, drive.drive_id, id);
  KILN_CHECK(pre_boot());
  // A drive with this id is replaced; the list is checked as a whole before anything changes.
  auto drives = with_put(config_.drives, drive, &DriveConfig::drive_id);
  KILN_CHECK(check_drives(drives));
  KILN_CHECK(with_where(backend_.check_drive(drive), where));
  config_.drives = std::move(drives);
  return no_content();
}

Result<HttpResponse> Controller::patch_drive(const std::string& id, const json& body) {
  const std::string where = "drives/" + id;
  if (!body.is_object()) return plain_error("{}: expected a JSON object", where);
  KILN_CHECK(only_fields(body, where, {"drive_id", "path_on_host", "rate_limiter"}));
  if (body.contains("rate_limiter") && !body.at("rate_limiter").is_null())
    return plain_error("{}.rate_limiter: rate limiters are not there yet in kiln; remove the field", where);
  std::string drive_id, path;
  KILN_CHECK(get_field(body, where, "drive_id", drive_id));
  KILN_CHECK(get_field(body, where, "path_on_host", path));
  if (drive_id != id) return plain_error("{}: the body's drive_id '{}' is not the path's '{}'", where, drive_id, id);
  KILN_CHECK(post_boot());
  auto it = std::find_if(config_.drives.begin(), config_.drives.end(),
                         [&](const DriveConfig& d) { return d.drive_id == id; });
  if (it == config_.drives.end()) return plain_error("{}: no such drive in this VM", where);
  if (path.empty()) return no_content();  // nothing to change
  DriveConfig updated = *it;
  updated.path_on_host = path;
  KILN_CHECK(with_where(backend_.update_drive(updated), where));
  *it = std::move(updated);
  return no_content();
}

Result<HttpResponse> Controller::put_network_interface(const std::string& id, const json& body) {
  const std::string where = "network-interfaces/" + id;
  KILN_ASSIGN(auto net, network_interface_from_json(body, where));
  if (net.iface_id != id)
    return plain_error("{}: the body's iface_id '{}' is not the path's '{}'", where, net.iface_id, id);
  KILN_CHECK(pre_boot());
  auto nets = with_put(config_.network_interfaces, net, &NetworkInterfaceConfig::iface_id);
  KILN_CHECK(check_network_interfaces(nets));
  config_.network_interfaces = std::move(nets);
  return no_content();
}

// Firecracker's PATCH changes an interface's rate limiters, which kiln does not have yet.
Result<HttpResponse> Controller::patch_network_interface(const std::string& id, const json& body) {
  const std::string where = "network-interfaces/" + id;
  if (!body.is_object()) return plain_error("{}: expected a JSON object", where);
  KILN_CHECK(only_fields(body, where, {"iface_id", "rx_rate_limiter", "tx_rate_limiter"}));
  for (const char* limiter : {"rx_rate_limiter", "tx_rate_limiter"})
    if (body.contains(limiter) && !body.at(limiter).is_null())
      return plain_error("{}.{}: rate limiters are not there yet in kiln; remove the field", where, limiter);
  if (std::none_of(config_.network_interfaces.begin(), config_.network_interfaces.end(),
                   [&](const auto& n) { return n.iface_id == id; }))
    return plain_error("{}: no such network interface in this VM", where);
  return no_content();
}

Result<void> Controller::instance_start() {
  KILN_CHECK(pre_boot());
  if (!boot_source_set_)
    return plain_error("InstanceStart: no kernel to boot; PUT /boot-source with kernel_image_path first");
  KILN_CHECK(validate(config_));
  KILN_CHECK(with_where(backend_.start(config_), "InstanceStart"));
  state_ = VmState::kRunning;
  return {};
}

Result<void> Controller::start_from_config(VmConfig config) {
  std::lock_guard lock(mu_);
  if (config.logger) KILN_CHECK(with_where(backend_.configure_logger(*config.logger), "logger"));
  if (config.metrics) KILN_CHECK(with_where(backend_.configure_metrics(*config.metrics), "metrics"));
  config_ = std::move(config);
  boot_source_set_ = true;
  return instance_start();
}

VmState Controller::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

VmConfig Controller::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

}  // namespace kiln::api
