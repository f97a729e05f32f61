#include "config/kiln_settings.h"

#include <charconv>

#include "config/json_fields.h"

namespace kiln {

using nlohmann::json;

Result<SerialConfig> parse_serial(std::string_view text) {
  if (text == "stdio") return SerialConfig{SerialConfig::Mode::kStdio, {}};
  if (text == "none") return SerialConfig{SerialConfig::Mode::kNone, {}};
  if (text.starts_with("file:") && text.size() > 5) return SerialConfig{SerialConfig::Mode::kFile, std::string(text.substr(5))};
  return plain_error("--serial '{}': expected stdio, none or file:PATH", text);
}

Result<UnpackKernel> parse_unpack_kernel(std::string_view text, std::string_view what) {
  if (text == "auto") return UnpackKernel::kAuto;
  if (text == "on") return UnpackKernel::kOn;
  if (text == "off") return UnpackKernel::kOff;
  return plain_error("{} '{}': expected auto (on nested-PVM hosts only), on or off", what, text);
}

std::string_view unpack_kernel_name(UnpackKernel u) {
  return u == UnpackKernel::kOn ? "on" : u == UnpackKernel::kOff ? "off" : "auto";
}

Result<TimerFloor> parse_timer_floor(std::string_view text, std::string_view what) {
  if (text == "auto") return TimerFloor{};
  if (text == "off") return TimerFloor{.mode = TimerFloor::Mode::kOff, .us = 0};
  std::uint32_t us = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), us);
  if (ec != std::errc{} || end != text.data() + text.size() || us < TimerFloor::kMinUs || us > TimerFloor::kMaxUs)
    return plain_error("{} '{}': expected auto ({} us on nested-PVM hosts only), off, or microseconds from {} to {}",
                       what, text, TimerFloor::kDefaultUs, TimerFloor::kMinUs, TimerFloor::kMaxUs);
  return TimerFloor{.mode = TimerFloor::Mode::kOn, .us = us};
}

std::string timer_floor_name(const TimerFloor& f) {
  switch (f.mode) {
    case TimerFloor::Mode::kAuto: return "auto";
    case TimerFloor::Mode::kOff: return "off";
    case TimerFloor::Mode::kOn: break;
  }
  return std::to_string(f.us);
}

Result<void> check_profile(const ProfileConfig& p, std::string_view prefix) {
  if (p.path.empty()) return plain_error("{}path: give the file the profile report goes to", prefix);
  if (p.hz == 0 || p.hz > ProfileConfig::kMaxHz)
    return plain_error("{}hz {}: give a sampling rate from 1 to {} per second", prefix, p.hz, ProfileConfig::kMaxHz);
  if (p.top == 0 || p.top > ProfileConfig::kMaxTop)
    return plain_error("{}top {}: give how many functions the report lists, from 1 to {}", prefix, p.top,
                       ProfileConfig::kMaxTop);
  return {};
}

Result<KilnConfig> kiln_config_from_json(const json& k) {
  KilnConfig out;
  KILN_CHECK(only_fields(k, "kiln", {"serial", "boot_timer", "host_kernel_args", "profile", "unpack_kernel", "syscall_fix", "timer_floor"}));
  if (k.contains("serial")) {
    std::string s;
    KILN_CHECK(get_field(k, "kiln", "serial", s));
    KILN_ASSIGN(out.serial, parse_serial(s));
  }
  KILN_CHECK(get_field(k, "kiln", "boot_timer", out.boot_timer));
  KILN_CHECK(get_field(k, "kiln", "host_kernel_args", out.host_kernel_args));
  KILN_CHECK(get_field(k, "kiln", "syscall_fix", out.syscall_fix));
  if (k.contains("unpack_kernel")) {
    std::string u;
    KILN_CHECK(get_field(k, "kiln", "unpack_kernel", u));
    KILN_ASSIGN(out.unpack_kernel, parse_unpack_kernel(u, "kiln.unpack_kernel"));
  }
  if (k.contains("timer_floor")) {
    // "auto", "off", or microseconds (a number, or the same as a string).
    std::string f;
    const json& v = k["timer_floor"];
    if (v.is_number_integer()) f = std::to_string(v.get<std::int64_t>());
    else KILN_CHECK(get_field(k, "kiln", "timer_floor", f));
    KILN_ASSIGN(out.timer_floor, parse_timer_floor(f, "kiln.timer_floor"));
  }
  if (k.contains("profile")) {
    const json& p = k["profile"];
    if (!p.is_object()) return plain_error("kiln.profile: expected an object with path, hz, symbols and top");
    KILN_CHECK(only_fields(p, "kiln.profile", {"path", "hz", "symbols", "top"}));
    ProfileConfig pc;
    KILN_CHECK(get_field(p, "kiln.profile", "path", pc.path));
    KILN_CHECK(get_field(p, "kiln.profile", "hz", pc.hz));
    KILN_CHECK(get_field(p, "kiln.profile", "symbols", pc.symbols));
    KILN_CHECK(get_field(p, "kiln.profile", "top", pc.top));
    KILN_CHECK(check_profile(pc, "kiln.profile."));
    out.profile = pc;
  }
  return out;
}

json to_json(const KilnConfig& k) {
  json serial;
  switch (k.serial.mode) {
    case SerialConfig::Mode::kStdio: serial = "stdio"; break;
    case SerialConfig::Mode::kNone: serial = "none"; break;
    case SerialConfig::Mode::kFile: serial = "file:" + k.serial.path; break;
  }
  json out = {{"serial", serial}, {"boot_timer", k.boot_timer}, {"host_kernel_args", k.host_kernel_args},
              {"syscall_fix", k.syscall_fix}};
  out["unpack_kernel"] = unpack_kernel_name(k.unpack_kernel);
  out["timer_floor"] = timer_floor_name(k.timer_floor);
  if (k.profile)
    out["profile"] = {
        {"path", k.profile->path}, {"hz", k.profile->hz}, {"symbols", k.profile->symbols}, {"top", k.profile->top}};
  return out;
}

}  // namespace kiln
