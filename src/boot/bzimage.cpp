// The Linux x86 64-bit boot protocol for a bzImage: the protected-mode kernel goes to 1 MiB, the
// setup header is copied into a fresh boot_params, and the vCPU starts at the 64-bit entry
// (load address + 0x200) in long mode.
#include <algorithm>
#include <cstring>

#include "arch/x86/layout.h"
#include "boot/boot_params.h"
#include "boot/loader.h"

namespace kiln::boot {

Result<LoadedKernel> load_bzimage(const GuestMemory& mem, std::span<const std::byte> kernel) {
  if (kernel.size() < 0x1f1 + sizeof(SetupHeader))
    return plain_error("--kernel: truncated bzImage ({} bytes): the setup header is incomplete", kernel.size());
  SetupHeader hdr;
  std::memcpy(&hdr, kernel.data() + 0x1f1, sizeof(hdr));
  if (hdr.boot_flag != kBootFlag || hdr.header != kHdrSMagic)
    return plain_error("--kernel: not a bzImage (no boot header)");
  if (hdr.version < 0x20c || (hdr.xloadflags & kXlfKernel64) == 0)
    return plain_error(
        "--kernel: this bzImage (boot protocol {}.{:02}) has no 64-bit entry point; kiln boots 64-bit kernels "
        "(boot protocol 2.12 or later)",
        hdr.version >> 8, hdr.version & 0xff);

  const std::uint64_t setup_sects = hdr.setup_sects == 0 ? 4 : hdr.setup_sects;
  const std::uint64_t setup_size = (setup_sects + 1) * 512;
  const std::uint64_t kernel_size = static_cast<std::uint64_t>(hdr.syssize) * 16;
  if (kernel.size() < setup_size + kernel_size)
    return plain_error("--kernel: truncated bzImage: its header promises {} bytes, the file has {}",
                       setup_size + kernel_size, kernel.size());
  const std::uint64_t payload = kernel.size() - setup_size;

  // The kernel decompresses in place and needs init_size bytes from its load address.
  const std::uint64_t load = x86::kBzImageLoadAddr;
  const std::uint64_t need = std::max<std::uint64_t>(payload, hdr.init_size);
  if (!mem.contains(GuestAddress{load}, need))
    return plain_error("--memory: too small for this kernel: it needs {} MiB above 1 MiB", (need >> 20) + 1);
  KILN_CHECK(mem.write(GuestAddress{load}, kernel.subspan(setup_size)));

  BootParams bp{};
  // The header runs from 0x1f1 to 0x202 + the byte at 0x201 (the jump's offset).
  const std::size_t hdr_end = std::min<std::size_t>(0x202 + static_cast<std::uint8_t>(kernel[0x201]), 0x1f1 + sizeof(SetupHeader));
  std::memcpy(reinterpret_cast<std::byte*>(&bp) + 0x1f1, kernel.data() + 0x1f1, hdr_end - 0x1f1);
  bp.hdr.type_of_loader = 0xff;  // undefined boot loader
  bp.hdr.loadflags |= kCanUseHeap;
  bp.hdr.heap_end_ptr = 0xfe00;
  bp.hdr.vid_mode = 0xffff;  // normal
  bp.hdr.code32_start = static_cast<std::uint32_t>(load);
  KILN_CHECK(mem.write_obj(GuestAddress{x86::kZeroPageAddr}, bp));

  return LoadedKernel{KernelFormat::kBzImage, x86::EntryMode::kLinux64, load + 0x200, x86::kZeroPageAddr,
                      load + need, std::nullopt};
}

}  // namespace kiln::boot
