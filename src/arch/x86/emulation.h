#pragma once
// The instruction-emulation fallback: when KVM's own emulator gives up on an instruction
// (KVM_EXIT_INTERNAL_ERROR / EMULATION, common on nested-PVM hosts), kiln decodes it with zydis
// and carries it out on the vCPU's saved state, or reports it with its bytes if it cannot.
#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "arch/x86/cpu_state.h"
#include "memory/guest_memory.h"

namespace kiln::x86 {

struct EmulationOutcome {
  enum class Kind {
    kEmulated,         // registers (and maybe FPU state) updated, RIP advanced
    kInjectException,  // RIP set as the exception needs; inject `vector`
    kUnknown,          // not an instruction kiln emulates (or bytes that do not decode)
    kFault,            // the instruction's memory operand could not be accessed
  };
  Kind kind = Kind::kUnknown;
  std::uint8_t vector = 0;
  bool fpu_changed = false;
  std::string name;    // what the counters call it: "int3", "clac", ...
  std::string detail;  // disassembly or the reason, for the report
  // Carried out (or turned into an exception): the vCPU can go on.
  [[nodiscard]] bool handled() const { return kind == Kind::kEmulated || kind == Kind::kInjectException; }
};

// Reads the instruction bytes at CS:RIP through the guest's page tables (up to 15).
std::size_t fetch_instruction(const GuestMemory& mem, const SpecialRegisters& sregs, const Registers& regs,
                              std::array<std::byte, 15>& out);

// Decodes `bytes` (the instruction at regs.rip) and carries it out.
EmulationOutcome emulate_instruction(std::span<const std::byte> bytes, Registers& regs,
                                     const SpecialRegisters& sregs, FpuState& fpu, const GuestMemory& mem);

// The fallback for one failure: the bytes KVM reported fetching come first, since memory may hold
// something else by now (another vCPU patching kernel text, as text_poke does: int3 first, then the
// rest, then the new first byte, can rewrite the instruction between the failure and any read of
// it, and the guest's int3 handler counts on the #BP for the int3 this vCPU met). Without usable
// bytes from KVM (older kernels, or part of an instruction), the instruction is read at CS:RIP.
struct FailedInstruction {
  EmulationOutcome outcome;
  std::array<std::byte, 15> bytes{};  // the bytes the outcome came from
  std::size_t length = 0;
  bool from_kvm = false;
  [[nodiscard]] std::span<const std::byte> used() const { return std::span(bytes).first(length); }
};
FailedInstruction emulate_failed_instruction(std::span<const std::byte> fetched_by_kvm, Registers& regs,
                                             const SpecialRegisters& sregs, FpuState& fpu, const GuestMemory& mem);

// "0f 01 ca" style hex for reports.
std::string hex_bytes(std::span<const std::byte> bytes);

}  // namespace kiln::x86
