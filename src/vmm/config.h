#pragma once
// The VM's configuration, in the shape of Firecracker's `GET /vm/config` (boot-source,
// machine-config, drives, ...), so that flags, a config file and the API all fill one object.
// kiln's own settings that Firecracker has no field for live under "kiln".
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/common.h>

#include "arch/x86/cpu_template.h"
#include "base/error.h"

namespace kiln {

struct BootSource {
  std::string kernel_image_path;
  std::optional<std::string> initrd_path;
  std::optional<std::string> boot_args;
};

struct MachineConfig {
  std::uint32_t vcpu_count = 1;
  std::uint64_t mem_size_mib = 256;
  bool smt = false;
  bool track_dirty_pages = false;
  std::string cpu_template = "host";  // "host" or "minimal" (Firecracker's "None" means host)
};

struct SerialConfig {
  enum class Mode { kStdio, kFile, kNone };
  Mode mode = Mode::kStdio;
  std::string path;  // for kFile
};

struct KilnConfig {
  SerialConfig serial;
  bool boot_timer = false;
  bool host_kernel_args = true;  // add the kernel arguments this kind of host needs
};

// A custom CPU template: Firecracker's /cpu-config body, kept as given and as parsed.
struct CpuConfig {
  nlohmann::json source;
  x86::CpuTemplate parsed;
};

// Firecracker's /logger: where kiln's log goes and how its lines look.
struct LoggerConfig {
  std::string log_path;  // empty: stderr
  std::string level = "Info";  // Error, Warning, Info, Debug, Trace or Off (any case)
  bool show_level = false;
  bool show_log_origin = false;
};

// Firecracker's /metrics: a file or FIFO that gets a JSON line every 60 s and on FlushMetrics.
struct MetricsConfig {
  std::string metrics_path;
};

struct VmConfig {
  BootSource boot_source;
  MachineConfig machine_config;
  std::optional<CpuConfig> cpu_config;
  std::optional<LoggerConfig> logger;
  std::optional<MetricsConfig> metrics;
  KilnConfig kiln;
};

// The default kernel command line when none is given (Firecracker's idea, with the console on).
inline constexpr const char* kDefaultBootArgs = "console=ttyS0 panic=1";

// Limits kiln checks before anything starts.
inline constexpr std::uint32_t kMaxVcpus = 255;
inline constexpr std::uint64_t kMinMemMib = 16;
inline constexpr std::uint64_t kMaxMemMib = 1024ull * 1024;  // 1 TiB

nlohmann::json to_json(const VmConfig& c);
// An error naming the first field of `obj` not in `allowed` ("where: unknown field 'x'").
Result<void> only_fields(const nlohmann::json& obj, std::string_view where,
                         std::initializer_list<std::string_view> allowed);
// Strict: unknown fields and wrong types are errors naming the field.
Result<VmConfig> vm_config_from_json(const nlohmann::json& j);
// The parts, as the API's bodies give them. `whole`: a PUT, which needs vcpu_count and mem_size_mib
// and resets what it leaves out; otherwise a PATCH over `base`.
Result<BootSource> boot_source_from_json(const nlohmann::json& j);
Result<MachineConfig> machine_config_from_json(const nlohmann::json& j, MachineConfig base, bool whole);
Result<LoggerConfig> logger_config_from_json(const nlohmann::json& j);
Result<MetricsConfig> metrics_config_from_json(const nlohmann::json& j);
// Firecracker's level names (Error, Warning, Info, Debug, Trace, Off), in any case.
std::optional<spdlog::level::level_enum> log_level_from_name(std::string_view name);
// Range checks that do not need the host; each error names the field and the fix.
Result<void> validate(const VmConfig& c);
Result<void> validate(const MachineConfig& m);

// "512", "512M", "512MiB", "2G", "1T" -> MiB (a bare number is MiB, as QEMU's -m).
Result<std::uint64_t> parse_mem_size_mib(std::string_view text);
// Firecracker's custom CPU template JSON (cpuid_modifiers, msr_modifiers); errors name the field.
Result<x86::CpuTemplate> cpu_template_from_json(const nlohmann::json& j, std::string_view where);
// The built-in template a cpu_template value names.
Result<x86::BuiltinCpuTemplate> parse_cpu_template_name(std::string_view name);

// "stdio", "none", "file:PATH"
Result<SerialConfig> parse_serial(std::string_view text);

}  // namespace kiln
