#pragma once
// The Intel MultiProcessor Specification 1.4 table: a floating pointer and a configuration table
// listing the processors, the ISA bus, the I/O APIC and how ISA IRQs reach it. Kernels built
// without ACPI (or booted with acpi=off) find their CPUs through it.
#include <cstdint>
#include <vector>

namespace kiln::x86 {

struct MpTableConfig {
  std::uint32_t cpu_count = 1;  // APIC ids 0..count-1; id 0 is the bootstrap processor
  std::uint8_t ioapic_id = 0;
  std::uint32_t ioapic_addr = 0xfec0'0000;
  std::uint32_t lapic_addr = 0xfee0'0000;
};

// The floating pointer at `addr` followed by the configuration table. The MP spec has 8-bit APIC
// ids: at most 255 CPUs (more need ACPI).
std::vector<std::uint8_t> build_mp_table(const MpTableConfig& c, std::uint32_t addr);

inline constexpr std::uint32_t kMpMaxCpus = 255;

}  // namespace kiln::x86
