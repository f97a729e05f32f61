#include "vmm/config.h"

#include <cctype>
#include <charconv>
#include <set>

namespace kiln {

using nlohmann::json;

json to_json(const VmConfig& c) {
  json boot = {{"kernel_image_path", c.boot_source.kernel_image_path}};
  if (c.boot_source.initrd_path) boot["initrd_path"] = *c.boot_source.initrd_path;
  if (c.boot_source.boot_args) boot["boot_args"] = *c.boot_source.boot_args;
  json serial;
  switch (c.kiln.serial.mode) {
    case SerialConfig::Mode::kStdio: serial = "stdio"; break;
    case SerialConfig::Mode::kNone: serial = "none"; break;
    case SerialConfig::Mode::kFile: serial = "file:" + c.kiln.serial.path; break;
  }
  json out = {
      {"boot-source", boot},
      {"machine-config",
       {{"vcpu_count", c.machine_config.vcpu_count},
        {"mem_size_mib", c.machine_config.mem_size_mib},
        {"smt", c.machine_config.smt},
        {"track_dirty_pages", c.machine_config.track_dirty_pages},
        // Firecracker's enum has its static templates and "None"; kiln has none of those, so
        // its own template ("host" or "minimal") goes in an extension field of its own.
        {"cpu_template", "None"},
        {"kiln_cpu_template", c.machine_config.cpu_template}}},
      {"drives", json::array()},
      {"network-interfaces", json::array()},
      {"kiln", {{"serial", serial}, {"boot_timer", c.kiln.boot_timer}, {"host_kernel_args", c.kiln.host_kernel_args}}},
  };
  if (c.cpu_config) out["cpu-config"] = c.cpu_config->source;
  if (c.logger)
    out["logger"] = {{"log_path", c.logger->log_path},
                     {"level", c.logger->level},
                     {"show_level", c.logger->show_level},
                     {"show_log_origin", c.logger->show_log_origin}};
  if (c.metrics) out["metrics"] = {{"metrics_path", c.metrics->metrics_path}};
  return out;
}

namespace {

template <class T>
Result<void> get_field(const json& obj, std::string_view where, const char* name, T& out) {
  if (!obj.contains(name)) return {};
  try {
    out = obj.at(name).get<T>();
  } catch (const json::exception&) {
    return plain_error("{}.{}: wrong type ({})", where, name, obj.at(name).type_name());
  }
  return {};
}

}  // namespace

Result<void> only_fields(const json& obj, std::string_view where, std::initializer_list<std::string_view> allowed) {
  if (!obj.is_object()) return plain_error("{}: expected a JSON object", where);
  const std::set<std::string_view> ok(allowed);
  for (const auto& [k, v] : obj.items()) {
    if (!ok.contains(k)) return plain_error("{}: unknown field '{}'", where, k);
  }
  return {};
}

Result<BootSource> boot_source_from_json(const json& b) {
  BootSource out;
  KILN_TRY(only_fields(b, "boot-source", {"kernel_image_path", "initrd_path", "boot_args"}));
  if (!b.contains("kernel_image_path")) return plain_error("boot-source.kernel_image_path is required");
  KILN_TRY(get_field(b, "boot-source", "kernel_image_path", out.kernel_image_path));
  if (out.kernel_image_path.empty())
    return plain_error("boot-source.kernel_image_path: empty; give the path of a bzImage or ELF vmlinux");
  std::string s;
  if (b.contains("initrd_path") && !b.at("initrd_path").is_null()) {
    KILN_TRY(get_field(b, "boot-source", "initrd_path", s));
    out.initrd_path = s;
  }
  if (b.contains("boot_args") && !b.at("boot_args").is_null()) {
    KILN_TRY(get_field(b, "boot-source", "boot_args", s));
    out.boot_args = s;
  }
  return out;
}

Result<MachineConfig> machine_config_from_json(const json& m, MachineConfig base, bool whole) {
  KILN_TRY(only_fields(m, "machine-config",
                       {"vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "cpu_template", "kiln_cpu_template",
                        "huge_pages"}));
  if (whole) {
    for (const char* required : {"vcpu_count", "mem_size_mib"})
      if (!m.contains(required)) return plain_error("machine-config.{} is required", required);
    base = MachineConfig{};  // a PUT replaces the whole: what it leaves out takes its default
  }
  if (m.contains("huge_pages") && m.at("huge_pages") != "None")
    return plain_error("machine-config.huge_pages: kiln backs guest memory with ordinary pages; use \"None\"");
  // cpu_template: Firecracker's field. "None" (or null) is kiln's host template; kiln's own names
  // are still taken there, but its answers put them in kiln_cpu_template.
  std::string fc_template;
  if (m.contains("cpu_template") && m.at("cpu_template").is_null()) fc_template = "None";
  else KILN_TRY(get_field(m, "machine-config", "cpu_template", fc_template));
  if (!fc_template.empty()) {
    if (fc_template != "None" && fc_template != "host" && fc_template != "minimal")
      return plain_error("machine-config.cpu_template: kiln has no static CPU template '{}'; use \"None\", or "
                         "kiln_cpu_template \"minimal\", or a custom template with PUT /cpu-config",
                         fc_template);
    base.cpu_template = fc_template == "None" ? "host" : fc_template;
  }
  std::string kiln_template;
  KILN_TRY(get_field(m, "machine-config", "kiln_cpu_template", kiln_template));
  if (!kiln_template.empty()) {
    if (!fc_template.empty() && fc_template != "None" && fc_template != kiln_template)
      return plain_error("machine-config: cpu_template '{}' and kiln_cpu_template '{}' disagree; give one",
                         fc_template, kiln_template);
    base.cpu_template = kiln_template;
  }
  KILN_TRY(get_field(m, "machine-config", "vcpu_count", base.vcpu_count));
  KILN_TRY(get_field(m, "machine-config", "mem_size_mib", base.mem_size_mib));
  KILN_TRY(get_field(m, "machine-config", "smt", base.smt));
  KILN_TRY(get_field(m, "machine-config", "track_dirty_pages", base.track_dirty_pages));
  // Firecracker tracks dirty pages for diff snapshots; kiln has no snapshots yet, and taking the
  // setting without honouring it would let a client believe it.
  if (base.track_dirty_pages)
    return plain_error("machine-config.track_dirty_pages: kiln has no snapshots yet, so it does not track dirty "
                       "pages; leave it false");
  KILN_TRY(validate(base));
  return base;
}

Result<LoggerConfig> logger_config_from_json(const json& j) {
  LoggerConfig out;
  KILN_TRY(only_fields(j, "logger", {"log_path", "level", "show_level", "show_log_origin", "module"}));
  KILN_TRY(get_field(j, "logger", "log_path", out.log_path));
  KILN_TRY(get_field(j, "logger", "level", out.level));
  KILN_TRY(get_field(j, "logger", "show_level", out.show_level));
  KILN_TRY(get_field(j, "logger", "show_log_origin", out.show_log_origin));
  if (j.contains("module") && !j.at("module").is_null())
    return plain_error("logger.module: kiln logs every module to one logger; remove the field");
  if (!log_level_from_name(out.level))
    return plain_error("logger.level '{}': expected Error, Warning, Info, Debug, Trace or Off", out.level);
  return out;
}

Result<MetricsConfig> metrics_config_from_json(const json& j) {
  MetricsConfig out;
  KILN_TRY(only_fields(j, "metrics", {"metrics_path"}));
  if (!j.contains("metrics_path")) return plain_error("metrics.metrics_path is required");
  KILN_TRY(get_field(j, "metrics", "metrics_path", out.metrics_path));
  if (out.metrics_path.empty()) return plain_error("metrics.metrics_path: empty; give a file or FIFO path");
  return out;
}

std::optional<spdlog::level::level_enum> log_level_from_name(std::string_view name) {
  std::string n(name);
  for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (n == "error") return spdlog::level::err;
  if (n == "warning" || n == "warn") return spdlog::level::warn;
  if (n == "info") return spdlog::level::info;
  if (n == "debug") return spdlog::level::debug;
  if (n == "trace") return spdlog::level::trace;
  if (n == "off") return spdlog::level::off;
  return std::nullopt;
}

Result<VmConfig> vm_config_from_json(const json& j) {
  VmConfig c;
  KILN_TRY(only_fields(j, "config", {"boot-source", "machine-config", "drives", "network-interfaces", "kiln",
                                     "logger", "metrics", "vsock", "entropy", "balloon", "mmds-config",
                                     "cpu-config"}));
  for (const char* unsupported : {"vsock", "entropy", "balloon", "mmds-config"}) {
    if (j.contains(unsupported) && !j.at(unsupported).is_null())
      return plain_error("config: '{}' is not supported by this kiln yet; remove it", unsupported);
  }
  for (const char* list : {"drives", "network-interfaces"}) {
    if (j.contains(list) && !(j.at(list).is_array() && j.at(list).empty()))
      return plain_error("config: '{}' is not supported by this kiln yet; leave it empty", list);
  }
  if (!j.contains("boot-source")) return plain_error("config: 'boot-source' is required");
  c.boot_source = KILN_TRY(boot_source_from_json(j.at("boot-source")));
  if (j.contains("machine-config"))
    c.machine_config = KILN_TRY(machine_config_from_json(j.at("machine-config"), MachineConfig{}, false));
  if (j.contains("logger") && !j.at("logger").is_null()) c.logger = KILN_TRY(logger_config_from_json(j.at("logger")));
  if (j.contains("metrics") && !j.at("metrics").is_null())
    c.metrics = KILN_TRY(metrics_config_from_json(j.at("metrics")));
  if (j.contains("cpu-config") && !j.at("cpu-config").is_null()) {
    auto parsed = KILN_TRY(cpu_template_from_json(j.at("cpu-config"), "cpu-config"));  // before the aggregate: see controller.cpp
    c.cpu_config = CpuConfig{j.at("cpu-config"), std::move(parsed)};
  }
  if (j.contains("kiln")) {
    const json& k = j.at("kiln");
    std::string s;
    KILN_TRY(only_fields(k, "kiln", {"serial", "boot_timer", "host_kernel_args"}));
    if (k.contains("serial")) {
      KILN_TRY(get_field(k, "kiln", "serial", s));
      c.kiln.serial = KILN_TRY(parse_serial(s));
    }
    KILN_TRY(get_field(k, "kiln", "boot_timer", c.kiln.boot_timer));
    KILN_TRY(get_field(k, "kiln", "host_kernel_args", c.kiln.host_kernel_args));
  }
  KILN_TRY(validate(c));
  return c;
}

Result<void> validate(const VmConfig& c) {
  if (c.boot_source.kernel_image_path.empty())
    return plain_error("boot-source.kernel_image_path (--kernel) is required: the path of a Linux bzImage or ELF vmlinux");
  return validate(c.machine_config);
}

Result<void> validate(const MachineConfig& m) {
  if (m.vcpu_count < 1 || m.vcpu_count > kMaxVcpus)
    return plain_error("machine-config.vcpu_count {} (--cpus): must be between 1 and {}", m.vcpu_count,
                       kMaxVcpus);
  if (auto t = parse_cpu_template_name(m.cpu_template); !t) return std::unexpected(t.error());
  if (m.smt) return plain_error("machine-config.smt: SMT is not supported; set it to false");
  if (m.mem_size_mib < kMinMemMib || m.mem_size_mib > kMaxMemMib)
    return plain_error("machine-config.mem_size_mib {} (--memory): must be between {} MiB and {} MiB",
                       m.mem_size_mib, kMinMemMib, kMaxMemMib);
  return {};
}

Result<std::uint64_t> parse_mem_size_mib(std::string_view text) {
  std::uint64_t n = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, n);
  if (ec != std::errc() || p == text.data())
    return plain_error("--memory '{}': expected a size such as 512M or 2G", text);
  std::string_view unit(p, static_cast<std::size_t>(end - p));
  if (unit.ends_with("iB")) unit.remove_suffix(2);
  else if (unit.ends_with("B")) unit.remove_suffix(1);
  if (unit == "K" || unit == "k") {
    if (n % 1024 != 0) return plain_error("--memory '{}': must be a whole number of MiB", text);
    return n / 1024;
  }
  std::uint64_t mib_per_unit = 0;
  if (unit.empty() || unit == "M" || unit == "m") mib_per_unit = 1;
  else if (unit == "G" || unit == "g") mib_per_unit = 1024;
  else if (unit == "T" || unit == "t") mib_per_unit = 1024 * 1024;
  else return plain_error("--memory '{}': unknown unit '{}'; use K, M, G or T", text, unit);
  // Compared before multiplying, so no product can overflow.
  if (n > kMaxMemMib / mib_per_unit)
    return plain_error("--memory '{}': more than the {} MiB kiln allows", text, kMaxMemMib);
  return n * mib_per_unit;
}

Result<x86::BuiltinCpuTemplate> parse_cpu_template_name(std::string_view name) {
  if (name == "host" || name == "None") return x86::BuiltinCpuTemplate::kHost;
  if (name == "minimal") return x86::BuiltinCpuTemplate::kMinimal;
  return plain_error("--cpu-template '{}': expected host or minimal (or a custom template with --cpu-config FILE)",
                     name);
}

namespace {

// A number written as a JSON number or a string ("0x1f", "31").
Result<std::uint64_t> number_field(const json& obj, const std::string& where, const char* name, bool required) {
  if (!obj.contains(name)) {
    if (required) return plain_error("{}.{} is required", where, name);
    return 0;
  }
  const json& v = obj.at(name);
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    std::string_view t = s;
    int base = 10;
    if (t.starts_with("0x") || t.starts_with("0X")) {
      base = 16;
      t.remove_prefix(2);
    }
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), n, base);
    if (ec == std::errc() && p == t.data() + t.size() && !t.empty()) return n;
  }
  return plain_error("{}.{}: expected a number such as 7 or \"0x7\", got {}", where, name, v.dump());
}

Result<std::uint32_t> u32_field(const json& obj, const std::string& where, const char* name, bool required) {
  const std::uint64_t n = KILN_TRY(number_field(obj, where, name, required));
  if (n > 0xffff'ffff) return plain_error("{}.{}: {:#x} does not fit in 32 bits", where, name, n);
  return static_cast<std::uint32_t>(n);
}

Result<x86::Bitmap> bitmap_field(const json& obj, const std::string& where, int width) {
  if (!obj.contains("bitmap")) return plain_error("{}.bitmap is required", where);
  if (!obj.at("bitmap").is_string()) return plain_error("{}.bitmap: expected a string such as \"0bxx1x0\"", where);
  auto b = x86::parse_bitmap(obj.at("bitmap").get<std::string>(), width);
  if (!b) return plain_error("{}.{}", where, b.error().message());
  return *b;
}

}  // namespace

Result<x86::CpuTemplate> cpu_template_from_json(const json& j, std::string_view where_sv) {
  const std::string where(where_sv);
  KILN_TRY(only_fields(j, where, {"kvm_capabilities", "cpuid_modifiers", "msr_modifiers", "vcpu_features",
                                  "reg_modifiers"}));
  for (const char* arm : {"vcpu_features", "reg_modifiers"})
    if (j.contains(arm) && !(j.at(arm).is_array() && j.at(arm).empty()))
      return plain_error("{}.{}: an aarch64 setting; kiln runs x86-64 guests only: remove it", where, arm);
  if (j.contains("kvm_capabilities") && !(j.at("kvm_capabilities").is_array() && j.at("kvm_capabilities").empty()))
    return plain_error("{}.kvm_capabilities: kiln checks the KVM capabilities it needs itself and takes no changes "
                       "to them; remove the field",
                       where);
  x86::CpuTemplate t{"custom", {}, {}};
  if (j.contains("cpuid_modifiers")) {
    const json& mods = j.at("cpuid_modifiers");
    if (!mods.is_array()) return plain_error("{}.cpuid_modifiers: expected an array", where);
    for (std::size_t i = 0; i < mods.size(); ++i) {
      const std::string w = fmt::format("{}.cpuid_modifiers[{}]", where, i);
      const json& m = mods[i];
      KILN_TRY(only_fields(m, w, {"leaf", "subleaf", "flags", "modifiers"}));
      const std::uint32_t leaf = KILN_TRY(u32_field(m, w, "leaf", true));
      const std::uint32_t subleaf = KILN_TRY(u32_field(m, w, "subleaf", false));
      const std::uint32_t flags = KILN_TRY(u32_field(m, w, "flags", false));
      if (!m.contains("modifiers") || !m.at("modifiers").is_array())
        return plain_error("{}.modifiers: expected an array of {{\"register\", \"bitmap\"}}", w);
      const json& regs = m.at("modifiers");
      for (std::size_t r = 0; r < regs.size(); ++r) {
        const std::string rw = fmt::format("{}.modifiers[{}]", w, r);
        KILN_TRY(only_fields(regs[r], rw, {"register", "bitmap"}));
        const json given = regs[r].value("register", json());  // any type: a wrong one is named below
        const std::string reg = given.is_string() ? given.get<std::string>() : std::string();
        x86::CpuidRegister cr;
        if (reg == "eax") cr = x86::CpuidRegister::kEax;
        else if (reg == "ebx") cr = x86::CpuidRegister::kEbx;
        else if (reg == "ecx") cr = x86::CpuidRegister::kEcx;
        else if (reg == "edx") cr = x86::CpuidRegister::kEdx;
        else return plain_error("{}.register: expected eax, ebx, ecx or edx, got {}", rw, given.dump());
        t.cpuid.push_back({leaf, subleaf, flags, cr, KILN_TRY(bitmap_field(regs[r], rw, 32))});
      }
    }
  }
  if (j.contains("msr_modifiers")) {
    const json& mods = j.at("msr_modifiers");
    if (!mods.is_array()) return plain_error("{}.msr_modifiers: expected an array", where);
    for (std::size_t i = 0; i < mods.size(); ++i) {
      const std::string w = fmt::format("{}.msr_modifiers[{}]", where, i);
      KILN_TRY(only_fields(mods[i], w, {"addr", "bitmap"}));
      t.msrs.push_back({KILN_TRY(u32_field(mods[i], w, "addr", true)), KILN_TRY(bitmap_field(mods[i], w, 64))});
    }
  }
  return t;
}

Result<SerialConfig> parse_serial(std::string_view text) {
  if (text == "stdio") return SerialConfig{SerialConfig::Mode::kStdio, {}};
  if (text == "none") return SerialConfig{SerialConfig::Mode::kNone, {}};
  if (text.starts_with("file:") && text.size() > 5) return SerialConfig{SerialConfig::Mode::kFile, std::string(text.substr(5))};
  return plain_error("--serial '{}': expected stdio, none or file:PATH", text);
}

}  // namespace kiln
