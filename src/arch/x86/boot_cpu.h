#pragma once
// The CPU state a boot protocol starts a kernel in, and the tables (GDT, identity page tables)
// that state needs in guest memory.
#include <span>
#include <utility>
#include <vector>

#include "arch/x86/cpu_state.h"
#include "base/error.h"
#include "memory/guest_memory.h"

namespace kiln::x86 {

enum class EntryMode {
  kLinux64,  // Linux 64-bit boot protocol: long mode, identity paging, RSI = boot_params
  kPvh32,    // PVH: 32-bit protected mode, paging off, EBX = hvm_start_info
};

struct BootCpuState {
  Registers regs;
  SpecialRegisters sregs;
};

// GDT selectors kiln's boot GDT provides (the Linux boot protocol requires __BOOT_CS = 0x10,
// __BOOT_DS = 0x18).
inline constexpr std::uint16_t kBootCodeSelector = 0x10;
inline constexpr std::uint16_t kBootDataSelector = 0x18;
inline constexpr std::uint16_t kBootTssSelector = 0x20;

// Writes the GDT (and, for kLinux64, identity page tables for the first 4 GiB) into guest memory
// and returns the BSP's starting registers.
Result<BootCpuState> setup_boot_cpu(const GuestMemory& mem, EntryMode mode, std::uint64_t entry,
                                    std::uint64_t boot_info_addr);

// The MSRs a booting kernel expects firmware to have set (and AMD's HWCR on AMD CPUs), in the order
// to set them: HWCR last, since KVM_SET_MSRS stops at the first MSR it refuses.
std::vector<std::pair<std::uint32_t, std::uint64_t>> boot_msrs(bool amd);

// The local APIC as firmware leaves it: LINT0 delivers the PIC's interrupts (ExtINT), LINT1 NMIs.
// `lapic_regs` is the LAPIC's 1 KiB register page (kvm_lapic_state.regs).
void set_firmware_lint(std::span<std::byte> lapic_regs);

// A GDT entry from base, limit and the packed flags word (access byte in bits 0-7, flags in 12-15).
std::uint64_t gdt_entry(std::uint16_t flags, std::uint32_t base, std::uint32_t limit);
Segment segment_from_gdt_entry(std::uint64_t entry, std::uint16_t selector);

}  // namespace kiln::x86
