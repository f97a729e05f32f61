#include "arch/x86/syscall_fix.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "arch/x86/page_walk.h"

namespace kiln::x86 {
namespace {

// Layout of the stub (see syscall_fix.h). The frame at a #PF: [rsp] error code, +8 RIP, +16 CS,
// +24 RFLAGS, +32 RSP, +40 SS.
constexpr std::size_t kLstarLiteral = 48, kOriginalLiteral = 56;
constexpr std::uint8_t kStubCode[kLstarLiteral] = {
    0xf3, 0x0f, 0x1e, 0xfa,                    //  0: endbr64
    0x50,                                      //  4: push %rax
    0x48, 0x8b, 0x05, 36, 0, 0, 0,             //  5: mov lstar(%rip), %rax
    0x48, 0x39, 0x44, 0x24, 0x10,              // 12: cmp %rax, 16(%rsp)    (the fault's RIP)
    0x58,                                      // 17: pop %rax              (flags kept)
    0x75, 18,                                  // 18: jne 38
    0xf6, 0x44, 0x24, 0x10, 0x03,              // 20: testb $3, 16(%rsp)    (the fault's CS: from CPL3?)
    0x74, 11,                                  // 25: jz 38
    0x48, 0x8b, 0x64, 0x24, 0x20,              // 27: mov 32(%rsp), %rsp    (the user's stack pointer)
    0xff, 0x25, 10, 0, 0, 0,                   // 32: jmp *lstar(%rip)      (enter as SYSCALL would have)
    0xff, 0x25, 12, 0, 0, 0,                   // 38: jmp *original(%rip)   (the kernel's own #PF entry)
    0xcc, 0xcc, 0xcc, 0xcc,                    // 44: int3 padding
};
static_assert(sizeof(kStubCode) + 16 == kSyscallStubSize);

constexpr std::uint64_t kTwoMiB = 2ull << 20;

std::uint64_t gate_offset(const std::array<std::byte, 16>& g) {
  std::uint16_t lo, mid;
  std::uint32_t hi;
  std::memcpy(&lo, g.data(), 2);
  std::memcpy(&mid, g.data() + 6, 2);
  std::memcpy(&hi, g.data() + 8, 4);
  return std::uint64_t{lo} | (std::uint64_t{mid} << 16) | (std::uint64_t{hi} << 32);
}

SyscallFixState not_yet(std::string why) { return {SyscallFixState::Kind::kNotYet, 0, 0, std::move(why)}; }
SyscallFixState refused(std::string why) { return {SyscallFixState::Kind::kRefused, 0, 0, std::move(why)}; }

}  // namespace

std::array<std::byte, kSyscallStubSize> syscall_stub(std::uint64_t lstar, std::uint64_t original_handler) {
  std::array<std::byte, kSyscallStubSize> s{};
  std::memcpy(s.data(), kStubCode, sizeof(kStubCode));
  std::memcpy(s.data() + kLstarLiteral, &lstar, 8);
  std::memcpy(s.data() + kOriginalLiteral, &original_handler, 8);
  return s;
}

SyscallFixState install_syscall_fix(const GuestMemory& mem, const SpecialRegisters& sregs, std::uint64_t lstar) {
  if ((sregs.efer & kEferLma) == 0 || (sregs.cr0 & kCr0Pg) == 0) return not_yet("not in long mode yet");
  if (lstar == 0) return not_yet("MSR_LSTAR is not set yet");
  constexpr std::uint64_t kGateEnd = (kVectorPageFault + 1) * 16ull;
  if (sregs.idt.limit + 1ull < kGateEnd) return not_yet("the IDT has no #PF gate yet");

  // Gate 14: a present 64-bit interrupt or trap gate.
  const std::uint64_t gate_at = sregs.idt.base + kVectorPageFault * 16ull;
  std::array<std::byte, 16> gate{};
  if (read_linear(mem, sregs, gate_at, gate) != gate.size()) return not_yet("the IDT's #PF gate is not mapped");
  const auto type_attr = std::to_integer<std::uint8_t>(gate[5]);
  if ((type_attr & 0x80) == 0) return not_yet("the #PF gate is not present yet");
  if ((type_attr & 0x0f) != 0xe && (type_attr & 0x0f) != 0xf)
    return refused(fmt::format("the #PF gate is not a 64-bit interrupt or trap gate (type {:#x})", type_attr & 0xf));
  const std::uint64_t current = gate_offset(gate);

  // The stub's place: the last 64 bytes of the 2 MiB page holding LSTAR.
  const std::uint64_t site = (lstar | (kTwoMiB - 1)) + 1 - kSyscallStubSize;
  if (lstar >= site) return refused("LSTAR is in the last 64 bytes of its 2 MiB page");

  std::array<std::byte, kSyscallStubSize> there{};
  // Unmapped in the page tables of the moment (a user process's, with page-table isolation): later.
  if (read_linear(mem, sregs, site, there) != there.size())
    return not_yet(fmt::format("the end of LSTAR's 2 MiB page ({:#x}) is not mapped", site));
  const bool ours = std::memcmp(there.data(), kStubCode, sizeof(kStubCode)) == 0;

  if (ours && current == site) {
    std::uint64_t lit_lstar, lit_orig;
    std::memcpy(&lit_lstar, there.data() + kLstarLiteral, 8);
    std::memcpy(&lit_orig, there.data() + kOriginalLiteral, 8);
    if (lit_lstar != lstar) {
      const auto phys = translate(mem, sregs, site + kLstarLiteral);
      if (!phys || !mem.store_release<std::uint64_t>(GuestAddress{*phys}, lstar))
        return refused("the stub's LSTAR literal is not writable RAM");
    }
    return {SyscallFixState::Kind::kInPlace, site, lit_orig, {}};
  }
  if (!ours && !std::all_of(there.begin(), there.end(), [](std::byte b) { return b == std::byte{0xcc}; }))
    return refused(fmt::format("no int3 padding at the end of LSTAR's 2 MiB page ({:#x}): the kernel's entry text "
                               "is not aligned to 2 MiB (built without page-table isolation?)",
                               site));
  if ((current >> 32) != (site >> 32))
    return refused(fmt::format("the kernel's #PF handler {:#x} and the stub {:#x} are in different 4 GiB", current,
                               site));
  // The kernel's handler as it is now (a gate at the stub's place without the stub is not ours).
  if (current == site) return refused("the #PF gate points at the stub's place but the stub is not there");
  const std::uint64_t original = current;

  // The stub first, then the gate's first 8 bytes (offset bits 0-31) in one store.
  if (!write_linear(mem, sregs, site, syscall_stub(lstar, original)))
    return refused(fmt::format("cannot write the stub at {:#x}", site));
  const auto gate_phys = translate(mem, sregs, gate_at);
  if (!gate_phys) return refused("the IDT's #PF gate is not mapped");
  std::uint64_t first8;
  std::memcpy(&first8, gate.data(), 8);
  first8 = (first8 & 0x0000'ffff'ffff'0000ull) | (site & 0xffff) | (((site >> 16) & 0xffff) << 48);
  if ((*gate_phys & 7) != 0 || !mem.store_release<std::uint64_t>(GuestAddress{*gate_phys}, first8))
    return refused("the IDT's #PF gate is not 8-byte aligned RAM");
  return {SyscallFixState::Kind::kInstalled, site, original, {}};
}

}  // namespace kiln::x86
