// The emulation fallback's decoder and executor, fed what a hostile guest controls when KVM's own
// emulator gives up: the instruction bytes (from KVM or read at CS:RIP through the guest's page
// tables), every general register, RIP and RFLAGS, the CPU mode and privilege level, and guest
// memory, page tables included. The fallback either carries the instruction out (RIP advanced by
// its length), turns it into an exception, or declines; it never crashes or reads outside RAM.
//
// Input: byte 0 = flags (bit 0: compat mode instead of 64-bit; bit 1: CPL3; bits 4-7: how many
// of the instruction bytes KVM reported, 0-15); bytes 1-15 = instruction bytes; then 18 little-
// endian u64 (rax ... r15, rip, rflags); then a u32 guest address; the rest is written to guest
// memory there (it may land on the page tables).
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "arch/x86/boot_cpu.h"
#include "arch/x86/emulation.h"
#include "arch/x86/layout.h"

namespace {

constexpr std::size_t kRam = 8 << 20;
constexpr std::size_t kHeader = 1 + 15 + 18 * 8 + 4;

kiln::GuestMemory make_memory() {
  const kiln::RegionLayout layout[] = {{0, kRam}};
  auto m = kiln::GuestMemory::create(layout);
  if (!m) std::abort();
  return std::move(*m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kiln::x86;
  if (size < kHeader) return 0;
  static kiln::GuestMemory mem = make_memory();
  // A fresh boot state each time: long mode with the boot page tables, which the input may overwrite.
  const std::array<std::byte, 4096> zero{};
  for (std::uint64_t a = 0; a < 0x10000; a += zero.size()) (void)mem.write(kiln::GuestAddress{a}, zero);
  auto boot = setup_boot_cpu(mem, EntryMode::kLinux64, 0x200000, kZeroPageAddr);
  if (!boot) std::abort();
  SpecialRegisters sregs = boot->sregs;
  Registers regs{};
  const std::uint8_t flags = data[0];
  if ((flags & 1) != 0) sregs.cs.l = 0, sregs.cs.db = 1;
  if ((flags & 2) != 0) sregs.cs.dpl = 3, sregs.cs.selector |= 3, sregs.ss.dpl = 3;
  const std::size_t from_kvm = std::min<std::size_t>(flags >> 4, 15);
  std::array<std::byte, 15> insn{};
  std::memcpy(insn.data(), data + 1, insn.size());
  std::uint64_t r[18];
  std::memcpy(r, data + 16, sizeof(r));
  std::memcpy(&regs, r, sizeof(regs));
  std::uint32_t at = 0;
  std::memcpy(&at, data + 16 + sizeof(r), sizeof(at));
  const auto payload = std::as_bytes(std::span(data + kHeader, size - kHeader));
  if (!payload.empty()) (void)mem.write(kiln::GuestAddress{at % kRam}, payload.first(std::min(payload.size(), kRam - at % kRam)));

  FpuState fpu;
  const std::uint64_t rip = regs.rip;
  auto failed = emulate_failed_instruction(std::span(insn).first(from_kvm), regs, sregs, fpu, mem);
  if (failed.length > failed.bytes.size()) std::abort();
  if (failed.outcome.kind == kiln::x86::EmulationOutcome::Kind::kEmulated) {
    const std::uint64_t advanced = regs.rip - rip;
    if (advanced == 0 || advanced > 15) std::abort();
  }
  (void)hex_bytes(failed.used());

  // And the decoder alone on the raw bytes, whatever the state.
  Registers again{};
  std::memcpy(&again, r, sizeof(again));
  auto o = emulate_instruction(insn, again, sregs, fpu, mem);
  (void)o.handled();
  return 0;
}
