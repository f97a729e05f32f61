#pragma once
// Firecracker's /machine-config: vCPUs, memory, and the CPU template (kiln's own, parsed once: the
// API answers it in kiln_cpu_template, since Firecracker's cpu_template enum has no such names).
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "arch/x86/cpu_template.h"
#include "base/error.h"

namespace kiln {

struct MachineConfig {
  std::uint32_t vcpu_count = 1;
  std::uint64_t mem_size_mib = 256;
  bool smt = false;
  bool track_dirty_pages = false;
  x86::BuiltinCpuTemplate cpu_template = x86::BuiltinCpuTemplate::kHost;
  // kiln_virtio_transport: how the VM's virtio devices reach the guest. virtio-mmio by default:
  // Firecracker's guest kernels are built for it (many have no PCI at all), and kiln announces the
  // devices both on the command line and in the DSDT, where a stock kernel's udev finds them too.
  enum class Transport { kMmio, kPci } transport = Transport::kMmio;
  bool operator==(const MachineConfig&) const = default;
};

// Limits kiln checks before anything starts.
inline constexpr std::uint32_t kMaxVcpus = 255;
inline constexpr std::uint64_t kMinMemMib = 16;
inline constexpr std::uint64_t kMaxMemMib = 1024ull * 1024;  // 1 TiB

// `whole`: a PUT, which needs vcpu_count and mem_size_mib and resets what it leaves out; otherwise
// a PATCH over `base`.
Result<MachineConfig> machine_config_from_json(const nlohmann::json& j, MachineConfig base, bool whole);
nlohmann::json to_json(const MachineConfig& m);
// Range checks that do not need the host; each error names the field and the fix.
Result<void> validate(const MachineConfig& m);

// "512", "512M", "512MiB", "2G", "1T" -> MiB (a bare number is MiB, as QEMU's -m).
Result<std::uint64_t> parse_mem_size_mib(std::string_view text);
// The built-in template a name gives: host (or Firecracker's "None") or minimal.
Result<x86::BuiltinCpuTemplate> parse_cpu_template_name(std::string_view name);
const char* cpu_template_name(x86::BuiltinCpuTemplate t);
// "mmio" or "pci".
Result<MachineConfig::Transport> parse_transport_name(std::string_view name, std::string_view where);
const char* transport_name(MachineConfig::Transport t);

}  // namespace kiln
