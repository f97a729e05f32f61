#include "arch/x86/boot_cpu.h"

#include <cstring>

#include "arch/x86/msrs.h"

#include <array>

#include "arch/x86/layout.h"

namespace kiln::x86 {

std::uint64_t gdt_entry(std::uint16_t flags, std::uint32_t base, std::uint32_t limit) {
  return ((static_cast<std::uint64_t>(base) & 0xff000000u) << (56 - 24)) |
         ((static_cast<std::uint64_t>(flags) & 0x0000f0ffu) << 40) |
         ((static_cast<std::uint64_t>(limit) & 0x000f0000u) << (48 - 16)) |
         ((static_cast<std::uint64_t>(base) & 0x00ffffffu) << 16) | (static_cast<std::uint64_t>(limit) & 0x0000ffffu);
}

Segment segment_from_gdt_entry(std::uint64_t e, std::uint16_t selector) {
  Segment s;
  s.base = ((e >> 16) & 0xffffff) | (((e >> 56) & 0xff) << 24);
  std::uint32_t limit = static_cast<std::uint32_t>((e & 0xffff) | (((e >> 48) & 0xf) << 16));
  s.g = static_cast<std::uint8_t>((e >> 55) & 1);
  // The hidden limit is in bytes: with G set the 20-bit limit counts 4 KiB pages.
  s.limit = s.g != 0 ? (limit << 12) | 0xfff : limit;
  s.selector = selector;
  s.type = static_cast<std::uint8_t>((e >> 40) & 0xf);
  s.s = static_cast<std::uint8_t>((e >> 44) & 1);
  s.dpl = static_cast<std::uint8_t>((e >> 45) & 3);
  s.present = static_cast<std::uint8_t>((e >> 47) & 1);
  s.avl = static_cast<std::uint8_t>((e >> 52) & 1);
  s.l = static_cast<std::uint8_t>((e >> 53) & 1);
  s.db = static_cast<std::uint8_t>((e >> 54) & 1);
  s.unusable = s.present != 0 ? 0 : 1;
  return s;
}

namespace {

Result<void> write_identity_page_tables(const GuestMemory& mem) {
  constexpr std::uint64_t kPresentWritable = 0x3;
  constexpr std::uint64_t kHuge = 0x80;
  KILN_CHECK(mem.fill(GuestAddress{kPml4Addr}, std::byte{0}, 0x1000));
  KILN_CHECK(mem.write_obj<std::uint64_t>(GuestAddress{kPml4Addr}, kPdptAddr | kPresentWritable));
  for (std::uint64_t i = 0; i < 4; ++i) {
    const std::uint64_t pd = kPdAddr + i * 0x1000;
    KILN_CHECK(mem.write_obj<std::uint64_t>(GuestAddress{kPdptAddr + i * 8}, pd | kPresentWritable));
    std::array<std::uint64_t, 512> entries{};
    for (std::uint64_t j = 0; j < 512; ++j) entries[j] = ((i << 30) | (j << 21)) | kPresentWritable | kHuge;
    KILN_CHECK(mem.write(GuestAddress{pd}, std::as_bytes(std::span(entries))));
  }
  KILN_CHECK(mem.fill(GuestAddress{kPdptAddr + 32}, std::byte{0}, 0x1000 - 32));
  return {};
}

}  // namespace

Result<BootCpuState> setup_boot_cpu(const GuestMemory& mem, EntryMode mode, std::uint64_t entry,
                                    std::uint64_t boot_info_addr) {
  const bool long_mode = mode == EntryMode::kLinux64;
  // null, null, code, data, tss: selectors 0x10, 0x18, 0x20 as the boot protocols expect.
  const std::array<std::uint64_t, 5> gdt = {
      0,
      0,
      gdt_entry(long_mode ? 0xa09b : 0xc09b, 0, 0xfffff),
      gdt_entry(0xc093, 0, 0xfffff),
      gdt_entry(0x008b, 0, 0x67),
  };
  KILN_CHECK(mem.write(GuestAddress{kGdtAddr}, std::as_bytes(std::span(gdt))));
  KILN_CHECK(mem.write_obj<std::uint64_t>(GuestAddress{kIdtAddr}, 0));

  BootCpuState st;
  auto& s = st.sregs;
  s.gdt = {kGdtAddr, static_cast<std::uint16_t>(sizeof(gdt) - 1)};
  s.idt = {kIdtAddr, 7};
  s.cs = segment_from_gdt_entry(gdt[2], kBootCodeSelector);
  s.ds = segment_from_gdt_entry(gdt[3], kBootDataSelector);
  s.es = s.fs = s.gs = s.ss = s.ds;
  s.tr = segment_from_gdt_entry(gdt[4], kBootTssSelector);
  s.ldt.unusable = 1;
  s.ldt.type = 2;
  s.ldt.present = 1;
  s.cr0 = kCr0Pe | kCr0Et;
  st.regs.rflags = kRflagsReserved1;
  st.regs.rip = entry;
  if (long_mode) {
    KILN_CHECK(write_identity_page_tables(mem));
    s.cr3 = kPml4Addr;
    s.cr4 = kCr4Pae;
    s.cr0 |= kCr0Pg;
    s.efer = kEferLme | kEferLma;
    st.regs.rsi = boot_info_addr;
    st.regs.rsp = kBootStackTop;
    st.regs.rbp = kBootStackTop;
  } else {
    st.regs.rbx = boot_info_addr;
  }
  return st;
}

std::vector<std::pair<std::uint32_t, std::uint64_t>> boot_msrs(bool amd) {
  constexpr std::uint32_t kMtrrEnable = 1u << 11;
  constexpr std::uint64_t kMtrrTypeWb = 6;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> msrs = {
      {msr::kSysenterCs, 0}, {msr::kSysenterEsp, 0}, {msr::kSysenterEip, 0}, {msr::kStar, 0}, {msr::kCstar, 0},
      {msr::kKernelGsBase, 0}, {msr::kSyscallMask, 0}, {msr::kLstar, 0}, {msr::kTsc, 0},
      {msr::kMiscEnable, msr::kMiscEnableFastString}, {msr::kMtrrDefType, kMtrrEnable | kMtrrTypeWb},
  };
  if (amd) msrs.emplace_back(msr::kAmdHwcr, msr::kAmdHwcrTscFreqSel);
  return msrs;
}

void set_firmware_lint(std::span<std::byte> lapic_regs) {
  constexpr std::size_t kLvtLint0 = 0x350, kLvtLint1 = 0x360;
  constexpr std::uint32_t kDeliveryExtInt = 7u << 8, kDeliveryNmi = 4u << 8;
  auto set_lvt = [&](std::size_t off, std::uint32_t mode) {
    if (off + 4 > lapic_regs.size()) return;
    std::uint32_t v;
    std::memcpy(&v, lapic_regs.data() + off, 4);
    v = (v & ~0x700u) | mode;
    std::memcpy(lapic_regs.data() + off, &v, 4);
  };
  set_lvt(kLvtLint0, kDeliveryExtInt);
  set_lvt(kLvtLint1, kDeliveryNmi);
}

}  // namespace kiln::x86
