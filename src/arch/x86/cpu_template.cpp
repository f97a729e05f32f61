#include "arch/x86/cpu_template.h"

#include <fmt/format.h>

namespace kiln::x86 {

namespace {

// The register of an entry, const or not.
template <class Entry>
auto& reg_of(Entry& e, CpuidRegister r) {
  switch (r) {
    case CpuidRegister::kEax: return e.eax;
    case CpuidRegister::kEbx: return e.ebx;
    case CpuidRegister::kEcx: return e.ecx;
    case CpuidRegister::kEdx: break;
  }
  return e.edx;
}

// The entry in an optional table, or nullptr.
const CpuidEntry* find(const std::vector<CpuidEntry>* t, std::uint32_t leaf, std::uint32_t subleaf) {
  return t == nullptr ? nullptr : find_cpuid(*t, leaf, subleaf);
}

// Registers that are feature flags (where "KVM supports it" has a meaning).
bool is_feature_register(std::uint32_t leaf, std::uint32_t subleaf, CpuidRegister r) {
  switch (leaf) {
    case 0x1: return r == CpuidRegister::kEcx || r == CpuidRegister::kEdx;
    case 0x7: return subleaf == 0 && r != CpuidRegister::kEax;
    case 0xd: return subleaf == 1 && r == CpuidRegister::kEax;
    case 0x80000001: return r == CpuidRegister::kEcx || r == CpuidRegister::kEdx;
    default: return false;
  }
}

// Leaves whose feature bits nested-PVM hosts OR into what the guest sees.
bool is_forced_register(std::uint32_t leaf, std::uint32_t subleaf, CpuidRegister r) {
  return (leaf == 0x1 && (r == CpuidRegister::kEcx || r == CpuidRegister::kEdx)) ||
         (leaf == 0x7 && subleaf == 0 && r != CpuidRegister::kEax);
}

CpuidModifier mod(std::uint32_t leaf, std::uint32_t subleaf, CpuidRegister reg, std::uint32_t keep_mask) {
  // Clear every bit but those in keep_mask, which keep what KVM offers.
  return {leaf, subleaf, leaf == 0x7 ? kCpuidFlagSignificantIndex : 0u, reg, Bitmap{~keep_mask & 0xffff'ffffull, 0}};
}

constexpr std::uint32_t bits(std::initializer_list<int> l) {
  std::uint32_t m = 0;
  for (int b : l) m |= 1u << b;
  return m;
}

}  // namespace

std::string_view register_name(CpuidRegister r) {
  switch (r) {
    case CpuidRegister::kEax: return "eax";
    case CpuidRegister::kEbx: return "ebx";
    case CpuidRegister::kEcx: return "ecx";
    case CpuidRegister::kEdx: break;
  }
  return "edx";
}

Result<Bitmap> parse_bitmap(std::string_view text, int width) {
  if (text.size() < 3 || text.substr(0, 2) != "0b")
    return plain_error("bitmap '{}': write \"0b\" followed by 0, 1 or x for each bit, most significant first", text);
  const std::string_view digits = text.substr(2);
  if (digits.size() > static_cast<std::size_t>(width))
    return plain_error("bitmap '{}': {} bits given, the register has {}", text, digits.size(), width);
  Bitmap b;
  for (char c : digits) {
    b.mask <<= 1;
    b.value <<= 1;
    if (c == '0') {
      b.mask |= 1;
    } else if (c == '1') {
      b.mask |= 1;
      b.value |= 1;
    } else if (c != 'x' && c != 'X') {
      return plain_error("bitmap '{}': '{}' is not 0, 1 or x", text, c);
    }
  }
  return b;
}

std::optional<std::uint32_t> linux_feature_number(std::uint32_t leaf, std::uint32_t subleaf, CpuidRegister reg,
                                                  std::uint32_t bit) {
  // Linux's capability words (arch/x86/include/asm/cpufeatures.h): word * 32 + bit.
  std::optional<std::uint32_t> word;
  if (leaf == 0x1 && reg == CpuidRegister::kEdx) word = 0;
  if (leaf == 0x1 && reg == CpuidRegister::kEcx) word = 4;
  if (leaf == 0x80000001 && reg == CpuidRegister::kEdx) word = 1;
  if (leaf == 0x80000001 && reg == CpuidRegister::kEcx) word = 6;
  if (leaf == 0x7 && subleaf == 0 && reg == CpuidRegister::kEbx) word = 9;
  if (leaf == 0x7 && subleaf == 0 && reg == CpuidRegister::kEcx) word = 16;
  if (leaf == 0x7 && subleaf == 0 && reg == CpuidRegister::kEdx) word = 18;
  if (!word) return std::nullopt;
  return *word * 32 + bit;
}

CpuTemplate builtin_cpu_template(BuiltinCpuTemplate t) {
  if (t == BuiltinCpuTemplate::kHost) return {"host", {}, {}};
  CpuTemplate m{"minimal", {}, {}};
  using R = CpuidRegister;
  // Leaf 1: the x86-64 baseline (x87, TSC, MSRs, PAE, CX8, APIC, SEP, MTRR, PGE, CMOV, PAT,
  // CLFLUSH, MMX, FXSR, SSE, SSE2), HTT (kiln sets it for SMP), and x2APIC, TSC deadline and the
  // hypervisor bit, which a guest of a VMM relies on.
  m.cpuid.push_back(mod(0x1, 0, R::kEdx, bits({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 19, 23,
                                                24, 25, 26, 28})));
  m.cpuid.push_back(mod(0x1, 0, R::kEcx, bits({21, 24, 31})));
  // Leaf 7: no extended features.
  m.cpuid.push_back(mod(0x7, 0, R::kEbx, 0));
  m.cpuid.push_back(mod(0x7, 0, R::kEcx, 0));
  m.cpuid.push_back(mod(0x7, 0, R::kEdx, 0));
  // Extended leaf 1: SYSCALL, NX, long mode, LAHF/SAHF in long mode.
  m.cpuid.push_back(mod(0x80000001, 0, R::kEdx, bits({11, 20, 29})));
  m.cpuid.push_back(mod(0x80000001, 0, R::kEcx, bits({0})));
  return m;
}

std::vector<std::string> apply_cpuid_template(std::vector<CpuidEntry>& table, const CpuTemplate& t,
                                              const CpuidHostLimits& host) {
  std::vector<std::string> not_applied;
  std::vector<std::uint32_t> clearcpuid;
  for (const auto& m : t.cpuid) {
    CpuidEntry* e = find_cpuid(table, m.leaf, m.subleaf);
    if (e == nullptr) {
      table.push_back(CpuidEntry{m.leaf, m.subleaf, m.flags, 0, 0, 0, 0});
      e = &table.back();
    }
    std::uint32_t& r = reg_of(*e, m.reg);
    auto wanted = static_cast<std::uint32_t>(m.bits.apply(r));
    const std::string where = fmt::format("leaf {:#x} subleaf {} {}", m.leaf, m.subleaf, register_name(m.reg));
    const auto bit_list = [](std::uint32_t v, auto&& name) {
      std::string out;
      for (std::uint32_t bit = 0; bit < 32; ++bit)
        if (v & (1u << bit)) out += fmt::format("{}{}", out.empty() ? "" : ",", name(bit));
      return out;
    };
    if (is_feature_register(m.leaf, m.subleaf, m.reg)) {
      std::uint32_t offered = 0;
      if (const CpuidEntry* s = find(host.supported, m.leaf, m.subleaf)) offered = reg_of(*s, m.reg);
      if (const std::uint32_t missing = wanted & ~offered & ~r; missing != 0) {
        not_applied.push_back(fmt::format("{} bits {}: KVM on this host cannot offer them; left clear", where,
                                          bit_list(missing, [](std::uint32_t b) { return b; })));
        wanted &= ~missing;
      }
    }
    r = wanted;
    if (is_forced_register(m.leaf, m.subleaf, m.reg)) {
      if (const CpuidEntry* f = find(host.forced, m.leaf, m.subleaf)) {
        const std::uint32_t shown = reg_of(*f, m.reg) & ~wanted & static_cast<std::uint32_t>(m.bits.mask);
        if (shown != 0) {
          std::string clear = bit_list(shown, [&](std::uint32_t b) {
            auto n = linux_feature_number(m.leaf, m.subleaf, m.reg, b);
            return n ? std::to_string(*n) : std::string("?");
          });
          not_applied.push_back(fmt::format("{} bits {}: this host shows them to the guest anyway "
                                            "(clearcpuid={} hides them from Linux)",
                                            where, bit_list(shown, [](std::uint32_t b) { return b; }), clear));
        }
      }
    }
  }
  return not_applied;
}

}  // namespace kiln::x86
