#pragma once
// Guest linear -> guest physical, walking the guest's own page tables (no paging, 32-bit,
// PAE, 4- and 5-level). Used to read the instruction at RIP when KVM's emulator gives up.
#include <cstdint>

#include "arch/x86/cpu_state.h"
#include "base/error.h"
#include "memory/guest_memory.h"

namespace kiln::x86 {

Result<std::uint64_t> translate(const GuestMemory& mem, const SpecialRegisters& sregs, std::uint64_t linear);

// Reads up to out.size() bytes of guest virtual memory at `linear`, page by page; returns how
// many bytes could be read (stops at the first unmapped page).
std::size_t read_linear(const GuestMemory& mem, const SpecialRegisters& sregs, std::uint64_t linear,
                        std::span<std::byte> out);
// Writes all of `in` or fails.
Result<void> write_linear(const GuestMemory& mem, const SpecialRegisters& sregs, std::uint64_t linear,
                          std::span<const std::byte> in);

}  // namespace kiln::x86
