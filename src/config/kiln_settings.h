#pragma once
// kiln's own settings, which Firecracker has no field for (the "kiln" section of the config).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace kiln {

struct SerialConfig {
  enum class Mode { kStdio, kFile, kNone };
  Mode mode = Mode::kStdio;
  std::string path;  // for kFile
};

// The guest profiler (--profile): each vCPU's RIP sampled `hz` times a second, the report
// written to `path` when the VM ends, symbolized with `symbols` (a System.map or an ELF with
// symbols; empty: the kernel itself when it is an ELF vmlinux).
struct ProfileConfig {
  std::string path;
  unsigned hz = 1000;
  std::string symbols;
  unsigned top = 40;  // functions the report lists
  static constexpr unsigned kMaxHz = 10000;
  static constexpr unsigned kMaxTop = 100000;
};

// Whether kiln unpacks a bzImage's payload itself instead of running its decompressor in the
// guest: on nested-PVM hosts only (auto), always (on) or never (off).
enum class UnpackKernel { kAuto, kOn, kOff };
Result<UnpackKernel> parse_unpack_kernel(std::string_view text, std::string_view what);
std::string_view unpack_kernel_name(UnpackKernel u);

// Timer pacing (arch/x86/timer_pacing.h): a floor under how soon a vCPU's TSC-deadline timer fires
// after the guest arms it. auto: on nested-PVM hosts only, with kDefaultUs; off: never; a number of
// microseconds: on every host, with that floor.
struct TimerFloor {
  enum class Mode { kAuto, kOff, kOn };
  Mode mode = Mode::kAuto;
  std::uint32_t us = 0;  // for kOn
  static constexpr std::uint32_t kDefaultUs = 20'000;
  static constexpr std::uint32_t kMinUs = 100;
  static constexpr std::uint32_t kMaxUs = 1'000'000;
};
Result<TimerFloor> parse_timer_floor(std::string_view text, std::string_view what);
std::string timer_floor_name(const TimerFloor& f);

struct KilnConfig {
  SerialConfig serial;
  UnpackKernel unpack_kernel = UnpackKernel::kAuto;
  TimerFloor timer_floor;
  std::optional<ProfileConfig> profile;
  bool boot_timer = false;
  bool host_kernel_args = true;  // add the kernel arguments this kind of host needs
  // The run-time syscall redirect for guest user space (nested-PVM hosts only; off elsewhere).
  bool syscall_fix = true;
};

// "stdio", "none", "file:PATH"
Result<SerialConfig> parse_serial(std::string_view text);
Result<KilnConfig> kiln_config_from_json(const nlohmann::json& j);
// A profile's path is given and its rate is in range; `prefix` names the fields ("--profile-").
Result<void> check_profile(const ProfileConfig& p, std::string_view prefix);
nlohmann::json to_json(const KilnConfig& k);

}  // namespace kiln
