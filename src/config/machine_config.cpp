#include "config/machine_config.h"

#include <charconv>

#include "config/json_fields.h"

namespace kiln {

using nlohmann::json;

Result<MachineConfig> machine_config_from_json(const json& m, MachineConfig base, bool whole) {
  KILN_CHECK(only_fields(m, "machine-config",
                       {"vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "cpu_template", "kiln_cpu_template",
                        "huge_pages", "kiln_virtio_transport"}));
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
  else KILN_CHECK(get_field(m, "machine-config", "cpu_template", fc_template));
  if (!fc_template.empty()) {
    if (fc_template != "None" && fc_template != "host" && fc_template != "minimal")
      return plain_error("machine-config.cpu_template: kiln has no static CPU template '{}'; use \"None\", or "
                         "kiln_cpu_template \"minimal\", or a custom template with PUT /cpu-config",
                         fc_template);
    KILN_ASSIGN(base.cpu_template, parse_cpu_template_name(fc_template));
  }
  std::string kiln_template;
  KILN_CHECK(get_field(m, "machine-config", "kiln_cpu_template", kiln_template));
  if (kiln_template == "None") kiln_template = "host";
  if (!kiln_template.empty()) {
    if (!fc_template.empty() && fc_template != "None" && fc_template != kiln_template)
      return plain_error("machine-config: cpu_template '{}' and kiln_cpu_template '{}' disagree; give one",
                         fc_template, kiln_template);
    auto t = parse_cpu_template_name(kiln_template);
    if (!t) return plain_error("machine-config.kiln_cpu_template '{}': expected host or minimal", kiln_template);
    base.cpu_template = *t;
  }
  std::string transport;
  KILN_CHECK(get_field(m, "machine-config", "kiln_virtio_transport", transport));
  if (!transport.empty()) {
    KILN_ASSIGN(base.transport, parse_transport_name(transport, "machine-config.kiln_virtio_transport"));
  }
  KILN_CHECK(get_field(m, "machine-config", "vcpu_count", base.vcpu_count));
  KILN_CHECK(get_field(m, "machine-config", "mem_size_mib", base.mem_size_mib));
  KILN_CHECK(get_field(m, "machine-config", "smt", base.smt));
  KILN_CHECK(get_field(m, "machine-config", "track_dirty_pages", base.track_dirty_pages));
  // Firecracker tracks dirty pages for diff snapshots; kiln has no snapshots yet, and taking the
  // setting without honouring it would let a client believe it.
  if (base.track_dirty_pages)
    return plain_error("machine-config.track_dirty_pages: kiln has no snapshots yet, so it does not track dirty "
                       "pages; leave it false");
  KILN_CHECK(validate(base));
  return base;
}

json to_json(const MachineConfig& m) {
  return {{"vcpu_count", m.vcpu_count},
          {"mem_size_mib", m.mem_size_mib},
          {"smt", m.smt},
          {"track_dirty_pages", m.track_dirty_pages},
          // Firecracker's enum has its static templates and "None"; kiln has none of those, so
          // its own template ("host" or "minimal") goes in an extension field of its own.
          {"cpu_template", "None"},
          {"kiln_cpu_template", cpu_template_name(m.cpu_template)},
          {"kiln_virtio_transport", transport_name(m.transport)}};
}

Result<MachineConfig::Transport> parse_transport_name(std::string_view name, std::string_view where) {
  if (name == "mmio") return MachineConfig::Transport::kMmio;
  if (name == "pci") return MachineConfig::Transport::kPci;
  return plain_error("{} '{}': expected mmio or pci", where, name);
}

const char* transport_name(MachineConfig::Transport t) { return t == MachineConfig::Transport::kPci ? "pci" : "mmio"; }

Result<void> validate(const MachineConfig& m) {
  if (m.vcpu_count < 1 || m.vcpu_count > kMaxVcpus)
    return plain_error("machine-config.vcpu_count {} (--cpus): must be between 1 and {}", m.vcpu_count,
                       kMaxVcpus);
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

const char* cpu_template_name(x86::BuiltinCpuTemplate t) {
  return t == x86::BuiltinCpuTemplate::kMinimal ? "minimal" : "host";
}

}  // namespace kiln
