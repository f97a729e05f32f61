// The Linux x86 64-bit boot protocol for a bzImage: the protected-mode kernel goes to 1 MiB, the
// setup header is copied into a fresh boot_params, and the vCPU starts at the 64-bit entry
// (load address + 0x200) in long mode.
#include <algorithm>
#include <ranges>
#include <cstring>

#include "arch/x86/layout.h"
#include "boot/boot_params.h"
#include "boot/loader.h"

namespace kiln::boot {

namespace {

// The setup header, checked: a 64-bit boot protocol kernel whose protected-mode part is whole.
struct Header {
  SetupHeader hdr;
  std::uint64_t setup_size;
};

Result<Header> read_header(std::span<const std::byte> kernel) {
  if (kernel.size() < 0x1f1 + sizeof(SetupHeader))
    return plain_error("--kernel: truncated bzImage ({} bytes): the setup header is incomplete", kernel.size());
  Header h;
  std::memcpy(&h.hdr, kernel.data() + 0x1f1, sizeof(h.hdr));
  if (h.hdr.boot_flag != kBootFlag || h.hdr.header != kHdrSMagic)
    return plain_error("--kernel: not a bzImage (no boot header)");
  if (h.hdr.version < 0x20c || (h.hdr.xloadflags & kXlfKernel64) == 0)
    return plain_error(
        "--kernel: this bzImage (boot protocol {}.{:02}) has no 64-bit entry point; kiln boots 64-bit kernels "
        "(boot protocol 2.12 or later)",
        h.hdr.version >> 8, h.hdr.version & 0xff);
  const std::uint64_t setup_sects = h.hdr.setup_sects == 0 ? 4 : h.hdr.setup_sects;
  h.setup_size = (setup_sects + 1) * 512;
  const std::uint64_t kernel_size = static_cast<std::uint64_t>(h.hdr.syssize) * 16;
  if (kernel.size() < h.setup_size + kernel_size)
    return plain_error("--kernel: truncated bzImage: its header promises {} bytes, the file has {}",
                       h.setup_size + kernel_size, kernel.size());
  return h;
}

// A fresh boot_params with the bzImage's setup header, as a boot loader fills it in.
Result<void> write_boot_params(const GuestMemory& mem, std::span<const std::byte> kernel, std::uint64_t load) {
  BootParams bp{};
  // The header runs from 0x1f1 to 0x202 + the byte at 0x201 (the jump's offset).
  const std::size_t hdr_end = std::min<std::size_t>(0x202 + static_cast<std::uint8_t>(kernel[0x201]), 0x1f1 + sizeof(SetupHeader));
  std::memcpy(reinterpret_cast<std::byte*>(&bp) + 0x1f1, kernel.data() + 0x1f1, hdr_end - 0x1f1);
  bp.hdr.type_of_loader = 0xff;  // undefined boot loader
  bp.hdr.loadflags |= kCanUseHeap;
  bp.hdr.heap_end_ptr = 0xfe00;
  bp.hdr.vid_mode = 0xffff;  // normal
  bp.hdr.code32_start = static_cast<std::uint32_t>(load);
  return mem.write_obj(GuestAddress{x86::kZeroPageAddr}, bp);
}

}  // namespace

Result<void> check_bzimage(std::span<const std::byte> kernel) {
  KILN_CHECK(read_header(kernel));
  return {};
}

Result<LoadedKernel> load_bzimage(const GuestMemory& mem, std::span<const std::byte> kernel) {
  KILN_ASSIGN(const Header h, read_header(kernel));
  const std::uint64_t payload = kernel.size() - h.setup_size;
  // The kernel decompresses in place and needs init_size bytes from its load address.
  const std::uint64_t load = x86::kBzImageLoadAddr;
  const std::uint64_t need = std::max<std::uint64_t>(payload, h.hdr.init_size);
  if (!mem.contains(GuestAddress{load}, need))
    return plain_error("--memory: too small for this kernel: it needs {} MiB above 1 MiB", (need >> 20) + 1);
  KILN_CHECK(mem.write(GuestAddress{load}, kernel.subspan(h.setup_size)));
  KILN_CHECK(write_boot_params(mem, kernel, load));
  return LoadedKernel{KernelFormat::kBzImage, x86::EntryMode::kLinux64, load + 0x200, x86::kZeroPageAddr,
                      load + need, std::nullopt};
}

Result<LoadedKernel> load_bzimage_unpacked(const GuestMemory& mem, std::span<const std::byte> kernel,
                                           std::span<const std::byte> vmlinux) {
  KILN_ASSIGN(const Header h, read_header(kernel));
  KILN_ASSIGN(const LoadedElf elf, load_elf_segments(mem, vmlinux));
  // A vmlinux's ELF entry is the physical address of startup_64, where the decompressor jumps
  // with boot_params in RSI once the kernel is in place.
  if (!elf.inside(elf.e_entry))
    return plain_error("--kernel: the unpacked kernel's entry point {:#x} is not inside its loadable segments",
                       elf.e_entry);
  const std::uint64_t start = std::ranges::min(elf.segments, {}, &std::pair<std::uint64_t, std::uint64_t>::first).first;
  // The kernel needs init_size bytes from where it runs (its brk and early page tables follow _end).
  const std::uint64_t end = std::max(elf.kernel_end, start + h.hdr.init_size);
  if (!mem.contains(GuestAddress{start}, end - start))
    return plain_error("--memory: too small for this kernel: it needs {} MiB", (end >> 20) + 1);
  KILN_CHECK(write_boot_params(mem, kernel, x86::kBzImageLoadAddr));
  return LoadedKernel{KernelFormat::kBzImageUnpacked, x86::EntryMode::kLinux64, elf.e_entry, x86::kZeroPageAddr, end,
                      std::nullopt};
}

}  // namespace kiln::boot
