#pragma once
// CPU templates: a set of CPUID and MSR modifications applied on top of what KVM supports, in the
// shape of Firecracker's custom CPU templates (cpuid_modifiers / msr_modifiers with bitmaps of
// 0, 1 and x). kiln has two built-in ones: "host" (no change) and "minimal" (the x86-64 baseline
// plus what a guest of a VMM needs). What a template could not apply is reported, not hidden.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arch/x86/cpuid.h"
#include "base/error.h"

namespace kiln::x86 {

// A bitmap: bits where `mask` is 1 are forced to `value`; the others keep what they were.
struct Bitmap {
  std::uint64_t mask = 0;
  std::uint64_t value = 0;
  [[nodiscard]] std::uint64_t apply(std::uint64_t v) const { return (v & ~mask) | (value & mask); }
};
// "0b" then up to `width` characters 0, 1 or x, most significant first; missing high bits are x.
Result<Bitmap> parse_bitmap(std::string_view text, int width);

enum class CpuidRegister { kEax, kEbx, kEcx, kEdx };
struct CpuidModifier {
  std::uint32_t leaf = 0, subleaf = 0;
  std::uint32_t flags = 0;  // KVM_CPUID_FLAG_SIGNIFCANT_INDEX when the subleaf matters
  CpuidRegister reg = CpuidRegister::kEax;
  Bitmap bits;
};
struct MsrModifier {
  std::uint32_t addr = 0;
  Bitmap bits;
};
struct CpuTemplate {
  std::string name;
  std::vector<CpuidModifier> cpuid;
  std::vector<MsrModifier> msrs;
};

enum class BuiltinCpuTemplate { kHost, kMinimal };
CpuTemplate builtin_cpu_template(BuiltinCpuTemplate t);

// What a host does with the CPUID table it is given.
struct CpuidHostLimits {
  const std::vector<CpuidEntry>* supported = nullptr;  // KVM_GET_SUPPORTED_CPUID
  // Nested-PVM hosts show the guest their own leaf 1 and leaf 7 feature bits whatever the table
  // says: the host's CPUID, or nullptr where the table is what the guest sees.
  const std::vector<CpuidEntry>* forced = nullptr;
};

// Applies the template's CPUID modifiers to `table`; returns one line per thing that could not be
// applied (a feature KVM cannot offer is left clear; a bit the host shows anyway is named with the
// clearcpuid= number that hides it from Linux).
std::vector<std::string> apply_cpuid_template(std::vector<CpuidEntry>& table, const CpuTemplate& t,
                                              const CpuidHostLimits& host);

// The Linux X86_FEATURE number (for clearcpuid=) of a feature bit, where Linux has one.
std::optional<std::uint32_t> linux_feature_number(std::uint32_t leaf, std::uint32_t subleaf, CpuidRegister reg,
                                                  std::uint32_t bit);

std::string_view register_name(CpuidRegister r);

}  // namespace kiln::x86
