#pragma once
// vCPU register state in kiln's own types, so that arch/ and boot/ never include <linux/kvm.h>;
// kvm/ converts to and from kvm_regs / kvm_sregs / kvm_fpu in one place.
#include <array>
#include <cstdint>

namespace kiln::x86 {

struct Segment {
  std::uint64_t base = 0;
  std::uint32_t limit = 0;
  std::uint16_t selector = 0;
  std::uint8_t type = 0;
  std::uint8_t present = 0, dpl = 0, db = 0, s = 0, l = 0, g = 0, avl = 0;
  std::uint8_t unusable = 0;
};

struct DescriptorTable {
  std::uint64_t base = 0;
  std::uint16_t limit = 0;
};

struct SpecialRegisters {
  Segment cs, ds, es, fs, gs, ss, tr, ldt;
  DescriptorTable gdt, idt;
  std::uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0, efer = 0, apic_base = 0;
};

// The order of kvm_regs.
struct Registers {
  std::uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0, rsp = 0, rbp = 0;
  std::uint64_t r8 = 0, r9 = 0, r10 = 0, r11 = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  std::uint64_t rip = 0, rflags = 0;
  bool operator==(const Registers&) const = default;
};

struct FpuState {
  std::uint16_t fcw = 0x37f;
  std::uint32_t mxcsr = 0x1f80;
};

// Architectural bits the loader and the fallback need.
inline constexpr std::uint64_t kCr0Pe = 1ull << 0;
inline constexpr std::uint64_t kCr0Et = 1ull << 4;
inline constexpr std::uint64_t kCr0Pg = 1ull << 31;
inline constexpr std::uint64_t kCr4Pse = 1ull << 4;
inline constexpr std::uint64_t kCr4Pae = 1ull << 5;
inline constexpr std::uint64_t kCr4La57 = 1ull << 12;
inline constexpr std::uint64_t kEferLme = 1ull << 8;
inline constexpr std::uint64_t kEferLma = 1ull << 10;
inline constexpr std::uint64_t kRflagsReserved1 = 1ull << 1;
inline constexpr std::uint64_t kRflagsCf = 1ull << 0;
inline constexpr std::uint64_t kRflagsPf = 1ull << 2;
inline constexpr std::uint64_t kRflagsAf = 1ull << 4;
inline constexpr std::uint64_t kRflagsZf = 1ull << 6;
inline constexpr std::uint64_t kRflagsSf = 1ull << 7;
inline constexpr std::uint64_t kRflagsOf = 1ull << 11;
inline constexpr std::uint64_t kRflagsAc = 1ull << 18;

// The state INIT or RESET leaves a vCPU in (CS:IP = f000:fff0 at base ffff0000, real mode). On AMD
// hosts KVM puts a vCPU in it when the guest shuts down (a triple fault: the VMCB is undefined after
// a SHUTDOWN intercept), so what the vCPU held at the fault is gone by the time kiln asks for it.
inline bool is_reset_state(const Registers& r, const SpecialRegisters& s) {
  return r.rip == 0xfff0 && s.cs.selector == 0xf000 && s.cs.base == 0xffff0000 && (s.cr0 & kCr0Pe) == 0;
}

inline constexpr std::uint8_t kVectorBreakpoint = 3;
inline constexpr std::uint8_t kVectorInvalidOpcode = 6;
inline constexpr std::uint8_t kVectorGeneralProtection = 13;
inline constexpr std::uint8_t kVectorPageFault = 14;

}  // namespace kiln::x86
