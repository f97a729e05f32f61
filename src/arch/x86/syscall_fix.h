#pragma once
// The run-time syscall redirect for unmodified Linux kernels on nested-PVM hosts.
//
// There a 64-bit SYSCALL from guest user mode loads RCX and R11 and jumps to MSR_LSTAR but stays
// at CPL3; fetching the kernel's (supervisor) entry page faults, so the kernel receives a
// user-mode #PF whose RIP is LSTAR (shared/guide/this-host.md). Such a fault is the system call
// itself. kiln installs a small stub in the running guest and points the IDT's #PF gate at it:
// for a fault from CPL3 at RIP == LSTAR, it drops the exception frame, takes back the user's
// stack pointer and continues at LSTAR as SYSCALL would have (RCX and R11 are already right);
// every other #PF goes on to the kernel's own handler.
//
// Everything comes from the running guest, no symbol file: LSTAR, the IDT (base, limit, gate 14),
// and the guest's page tables. The stub goes into the int3 (0xcc) padding that ends the 2 MiB page
// holding LSTAR: Linux aligns the end of its entry text to 2 MiB when it is built with page-table
// isolation and fills .text gaps with int3, and with isolation that page is also mapped in user
// page tables, as an exception entry must be. A kernel without that padding is refused.
#include <array>
#include <cstdint>
#include <string>

#include "arch/x86/cpu_state.h"
#include "memory/guest_memory.h"

namespace kiln::x86 {

// The stub's bytes for a given LSTAR and kernel #PF handler (the two 8-byte literals at its end).
inline constexpr std::size_t kSyscallStubSize = 64;
std::array<std::byte, kSyscallStubSize> syscall_stub(std::uint64_t lstar, std::uint64_t original_handler);

struct SyscallFixState {
  enum class Kind {
    kNotYet,     // the kernel has not set LSTAR or its IDT yet: ask again later
    kInstalled,  // the stub was written and gate 14 points at it now
    kInPlace,    // gate 14 already points at kiln's stub (the literals are up to date)
    kRefused,    // this kernel lacks what the stub needs: `why` says what
  };
  Kind kind = Kind::kNotYet;
  std::uint64_t stub = 0;      // the stub's linear address (kInstalled, kInPlace)
  std::uint64_t original = 0;  // the kernel's #PF handler
  std::string why;
};

// Looks at the running guest (its registers as of a vCPU exit, MSR_LSTAR) and installs or
// refreshes the redirect. Only CPL-independent state is used; the guest may be in user or kernel
// mode. The gate is switched with one 8-byte store (offset bits 0-31 of a kernel-half handler
// live in its first 8 bytes), so a vCPU taking a #PF meanwhile sees the old gate or the new one.
SyscallFixState install_syscall_fix(const GuestMemory& mem, const SpecialRegisters& sregs, std::uint64_t lstar);

}  // namespace kiln::x86
