#include "arch/x86/page_walk.h"

#include <algorithm>

namespace kiln::x86 {

namespace {

constexpr std::uint64_t kPresent = 1;
constexpr std::uint64_t kPageSize = 1ull << 7;
constexpr std::uint64_t kAddrMask = 0x000f'ffff'ffff'f000ull;

Result<std::uint64_t> entry_at(const GuestMemory& mem, std::uint64_t table, std::uint64_t index,
                               std::uint64_t linear) {
  auto e = mem.read_obj<std::uint64_t>(GuestAddress{table + index * 8});
  if (!e) return std::unexpected(e.error());
  if ((*e & kPresent) == 0) return make_error(std::errc::bad_address, "linear {:#x} is not mapped", linear);
  return *e;
}

}  // namespace

Result<std::uint64_t> translate(const GuestMemory& mem, const SpecialRegisters& s, std::uint64_t linear) {
  if ((s.cr0 & kCr0Pg) == 0) return (s.efer & kEferLma) != 0 ? linear : (linear & 0xffff'ffffull);

  if ((s.efer & kEferLma) != 0) {
    const int levels = (s.cr4 & kCr4La57) != 0 ? 5 : 4;
    std::uint64_t table = s.cr3 & kAddrMask;
    for (int level = levels; level >= 1; --level) {
      const int shift = 12 + 9 * (level - 1);
      KILN_ASSIGN(const std::uint64_t e, entry_at(mem, table, (linear >> shift) & 0x1ff, linear));
      if (level == 1 || ((level == 2 || level == 3) && (e & kPageSize) != 0)) {
        const std::uint64_t page_mask = (1ull << shift) - 1;
        return ((e & kAddrMask) & ~page_mask) | (linear & page_mask);
      }
      table = e & kAddrMask;
    }
    return make_error(std::errc::bad_address, "unreachable");
  }

  const std::uint64_t lin32 = linear & 0xffff'ffffull;
  if ((s.cr4 & kCr4Pae) != 0) {
    KILN_ASSIGN(const std::uint64_t pdpte, entry_at(mem, s.cr3 & 0xffff'ffe0ull, lin32 >> 30, linear));
    KILN_ASSIGN(const std::uint64_t pde, entry_at(mem, pdpte & kAddrMask, (lin32 >> 21) & 0x1ff, linear));
    if ((pde & kPageSize) != 0) return ((pde & kAddrMask) & ~0x1f'ffffull) | (lin32 & 0x1f'ffff);
    KILN_ASSIGN(const std::uint64_t pte, entry_at(mem, pde & kAddrMask, (lin32 >> 12) & 0x1ff, linear));
    return (pte & kAddrMask) | (lin32 & 0xfff);
  }

  // Legacy 32-bit paging: 4-byte entries.
  auto pde = mem.read_obj<std::uint32_t>(GuestAddress{(s.cr3 & 0xffff'f000ull) + (lin32 >> 22) * 4});
  if (!pde) return std::unexpected(pde.error());
  if ((*pde & kPresent) == 0) return make_error(std::errc::bad_address, "linear {:#x} is not mapped", linear);
  if ((s.cr4 & kCr4Pse) != 0 && (*pde & kPageSize) != 0)
    return (static_cast<std::uint64_t>(*pde) & 0xffc0'0000ull) | (lin32 & 0x3f'ffff);
  auto pte = mem.read_obj<std::uint32_t>(GuestAddress{(*pde & 0xffff'f000ull) + ((lin32 >> 12) & 0x3ff) * 4});
  if (!pte) return std::unexpected(pte.error());
  if ((*pte & kPresent) == 0) return make_error(std::errc::bad_address, "linear {:#x} is not mapped", linear);
  return (static_cast<std::uint64_t>(*pte) & 0xffff'f000ull) | (lin32 & 0xfff);
}

std::size_t read_linear(const GuestMemory& mem, const SpecialRegisters& s, std::uint64_t linear,
                        std::span<std::byte> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    const std::uint64_t at = linear + done;
    const std::size_t chunk = std::min<std::size_t>(out.size() - done, 0x1000 - (at & 0xfff));
    auto pa = translate(mem, s, at);
    if (!pa || !mem.read(GuestAddress{*pa}, out.subspan(done, chunk))) break;
    done += chunk;
  }
  return done;
}

Result<void> write_linear(const GuestMemory& mem, const SpecialRegisters& s, std::uint64_t linear,
                          std::span<const std::byte> in) {
  std::size_t done = 0;
  while (done < in.size()) {
    const std::uint64_t at = linear + done;
    const std::size_t chunk = std::min<std::size_t>(in.size() - done, 0x1000 - (at & 0xfff));
    KILN_ASSIGN(const std::uint64_t pa, translate(mem, s, at));
    KILN_CHECK(mem.write(GuestAddress{pa}, in.subspan(done, chunk)));
    done += chunk;
  }
  return {};
}

}  // namespace kiln::x86
