// PVH boot of an ELF vmlinux: PT_LOAD segments go to their physical addresses and the vCPU starts
// in 32-bit protected mode at the address of the XEN_ELFNOTE_PHYS32_ENTRY note.
#include <elf.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "arch/x86/layout.h"
#include "boot/boot_params.h"
#include "boot/loader.h"

namespace kiln::boot {

namespace {

// Looks for the PVH entry note in one note area; nullopt if absent.
std::optional<std::uint64_t> find_pvh_note(std::span<const std::byte> notes) {
  std::size_t off = 0;
  while (notes.size() - off >= sizeof(Elf64_Nhdr)) {
    Elf64_Nhdr nh;
    std::memcpy(&nh, notes.data() + off, sizeof(nh));
    off += sizeof(nh);
    const std::size_t name_len = (static_cast<std::size_t>(nh.n_namesz) + 3) & ~std::size_t{3};
    const std::size_t desc_len = (static_cast<std::size_t>(nh.n_descsz) + 3) & ~std::size_t{3};
    if (name_len > notes.size() - off || desc_len > notes.size() - off - name_len) return std::nullopt;
    const bool xen = nh.n_namesz == 4 && std::memcmp(notes.data() + off, "Xen", 4) == 0;
    if (xen && nh.n_type == kXenElfNotePhys32Entry && (nh.n_descsz == 4 || nh.n_descsz == 8)) {
      std::uint64_t entry = 0;
      std::memcpy(&entry, notes.data() + off + name_len, nh.n_descsz);
      return entry & 0xffff'ffffull;  // a 32-bit physical entry point
    }
    off += name_len + desc_len;
  }
  return std::nullopt;
}

}  // namespace

Result<LoadedElf> load_elf_segments(const GuestMemory& mem, std::span<const std::byte> kernel) {
  if (kernel.size() < sizeof(Elf64_Ehdr)) return plain_error("--kernel: truncated ELF file ({} bytes)", kernel.size());
  Elf64_Ehdr eh;
  std::memcpy(&eh, kernel.data(), sizeof(eh));
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64)
    return plain_error("--kernel: ELF file is not a 64-bit x86 kernel");
  if (eh.e_type != ET_EXEC) return plain_error("--kernel: ELF file is not an executable (a vmlinux is ET_EXEC)");
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
      eh.e_phoff > kernel.size() || eh.e_phnum * sizeof(Elf64_Phdr) > kernel.size() - eh.e_phoff)
    return plain_error("--kernel: truncated or malformed ELF program headers");

  std::optional<std::uint64_t> entry;
  std::uint64_t kernel_end = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> segments;  // guest physical start, size
  for (std::size_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, kernel.data() + eh.e_phoff + i * sizeof(ph), sizeof(ph));
    if (ph.p_offset > kernel.size() || ph.p_filesz > kernel.size() - ph.p_offset)
      return plain_error("--kernel: truncated ELF: segment {} needs bytes {:#x}..{:#x} of a {}-byte file", i,
                         ph.p_offset, ph.p_offset + ph.p_filesz, kernel.size());
    const auto bytes = kernel.subspan(ph.p_offset, ph.p_filesz);
    if (ph.p_type == PT_NOTE && !entry) entry = find_pvh_note(bytes);
    if (ph.p_type != PT_LOAD) continue;
    if (ph.p_filesz > ph.p_memsz) return plain_error("--kernel: malformed ELF: segment {} filesz > memsz", i);
    if (!mem.contains(GuestAddress{ph.p_paddr}, ph.p_memsz))
      return plain_error("--memory: too small for this kernel: segment {} needs {:#x}..{:#x}", i, ph.p_paddr,
                         ph.p_paddr + ph.p_memsz);
    KILN_CHECK(mem.write(GuestAddress{ph.p_paddr}, bytes));
    KILN_CHECK(mem.fill(GuestAddress{ph.p_paddr + ph.p_filesz}, std::byte{0}, ph.p_memsz - ph.p_filesz));
    kernel_end = std::max(kernel_end, ph.p_paddr + ph.p_memsz);
    segments.emplace_back(ph.p_paddr, ph.p_memsz);
  }
  if (segments.empty()) return plain_error("--kernel: ELF file has no loadable segments");
  return LoadedElf{eh.e_entry, entry, kernel_end, std::move(segments)};
}

bool LoadedElf::inside(std::uint64_t addr) const {
  return std::ranges::any_of(segments, [&](const auto& seg) { return addr >= seg.first && addr - seg.first < seg.second; });
}

Result<LoadedKernel> load_elf_pvh(const GuestMemory& mem, std::span<const std::byte> kernel) {
  KILN_ASSIGN(const LoadedElf elf, load_elf_segments(mem, kernel));
  const auto& entry = elf.pvh_entry;
  if (!entry)
    return plain_error(
        "--kernel: this ELF vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); build it with CONFIG_PVH=y "
        "or boot its bzImage");
  if (!elf.inside(*entry))
    return plain_error("--kernel: the PVH entry point {:#x} is not inside any loadable segment of this ELF vmlinux; the "
                       "file is damaged",
                       *entry);
  return LoadedKernel{KernelFormat::kElfPvh, x86::EntryMode::kPvh32, *entry, x86::kPvhStartInfoAddr, elf.kernel_end,
                      std::nullopt};
}

}  // namespace kiln::boot
