#include "config/cpu_config.h"

#include <charconv>

#include "config/json_fields.h"

namespace kiln {

using nlohmann::json;

namespace {

// A number written as a JSON number or a string ("0x1f", "31").
Result<std::uint64_t> number_field(const json& obj, const std::string& where, const char* name, bool required) {
  if (!obj.contains(name)) {
    if (required) return plain_error("{}.{} is required", where, name);
    return 0;
  }
  const json& v = obj.at(name);
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(v.get<std::int64_t>());
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
  KILN_ASSIGN(const std::uint64_t n, number_field(obj, where, name, required));
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
  KILN_CHECK(only_fields(j, where, {"kvm_capabilities", "cpuid_modifiers", "msr_modifiers", "vcpu_features",
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
      KILN_CHECK(only_fields(m, w, {"leaf", "subleaf", "flags", "modifiers"}));
      KILN_ASSIGN(const std::uint32_t leaf, u32_field(m, w, "leaf", true));
      KILN_ASSIGN(const std::uint32_t subleaf, u32_field(m, w, "subleaf", false));
      KILN_ASSIGN(const std::uint32_t flags, u32_field(m, w, "flags", false));
      if (!m.contains("modifiers") || !m.at("modifiers").is_array())
        return plain_error("{}.modifiers: expected an array of {{\"register\", \"bitmap\"}}", w);
      const json& regs = m.at("modifiers");
      for (std::size_t r = 0; r < regs.size(); ++r) {
        const std::string rw = fmt::format("{}.modifiers[{}]", w, r);
        KILN_CHECK(only_fields(regs[r], rw, {"register", "bitmap"}));
        const json given = regs[r].value("register", json());  // any type: a wrong one is named below
        const std::string reg = given.is_string() ? given.get<std::string>() : std::string();
        x86::CpuidRegister cr;
        if (reg == "eax") cr = x86::CpuidRegister::kEax;
        else if (reg == "ebx") cr = x86::CpuidRegister::kEbx;
        else if (reg == "ecx") cr = x86::CpuidRegister::kEcx;
        else if (reg == "edx") cr = x86::CpuidRegister::kEdx;
        else return plain_error("{}.register: expected eax, ebx, ecx or edx, got {}", rw, given.dump());
        KILN_ASSIGN(const x86::Bitmap bits, bitmap_field(regs[r], rw, 32));
        t.cpuid.push_back({leaf, subleaf, flags, cr, bits});
      }
    }
  }
  if (j.contains("msr_modifiers")) {
    const json& mods = j.at("msr_modifiers");
    if (!mods.is_array()) return plain_error("{}.msr_modifiers: expected an array", where);
    for (std::size_t i = 0; i < mods.size(); ++i) {
      const std::string w = fmt::format("{}.msr_modifiers[{}]", where, i);
      KILN_CHECK(only_fields(mods[i], w, {"addr", "bitmap"}));
      KILN_ASSIGN(const std::uint32_t addr, u32_field(mods[i], w, "addr", true));
      KILN_ASSIGN(const x86::Bitmap bits, bitmap_field(mods[i], w, 64));
      t.msrs.push_back({addr, bits});
    }
  }
  return t;
}

}  // namespace kiln
