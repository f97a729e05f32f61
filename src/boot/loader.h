#pragma once
// Loads a Linux kernel (bzImage through the 64-bit boot protocol, or an ELF vmlinux through PVH,
// picked by the file's content), its initrd and command line into guest memory. Every problem
// with the images is found here, before any vCPU runs.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "arch/x86/boot_cpu.h"
#include "base/error.h"
#include "memory/guest_memory.h"

namespace kiln::boot {

enum class KernelFormat { kBzImage, kElfPvh, kBzImageUnpacked };

struct LoadedKernel {
  KernelFormat format;
  x86::EntryMode mode;
  std::uint64_t entry;           // guest physical
  std::uint64_t boot_info_addr;  // boot_params or hvm_start_info
  std::uint64_t kernel_end;      // first byte past what the kernel needs
  std::optional<std::pair<std::uint64_t, std::uint64_t>> initrd;  // addr, size
  std::string describe() const;
};

// Which format a kernel file is, or a clear error if it is neither.
Result<KernelFormat> detect_kernel_format(std::span<const std::byte> image);

// rsdp_addr, when given, is handed to the kernel (boot_params.acpi_rsdp_addr or
// hvm_start_info.rsdp_paddr), so it need not scan for the ACPI tables.
// `unpacked`: a bzImage's payload unpacked by kiln (unpack.h), booted in place of the bzImage's
// own decompressor; empty: the kernel as it is.
Result<LoadedKernel> load_linux(const GuestMemory& mem, std::span<const std::byte> kernel,
                                std::span<const std::byte> initrd, std::string_view cmdline,
                                std::optional<std::uint64_t> rsdp_addr = std::nullopt,
                                std::span<const std::byte> unpacked = {});

// The memory map both protocols describe: RAM below the EBDA, RAM from 1 MiB to the hole, RAM above 4 GiB.
struct MemoryMapEntry {
  std::uint64_t addr, size;
  std::uint32_t type;
};
std::vector<MemoryMapEntry> memory_map(const GuestMemory& mem);

// Reads a whole file for loading, with errors that name it ("--kernel: ...").
Result<std::vector<std::byte>> read_image_file(const std::string& path, std::string_view what);

// A bzImage's setup header is whole and names a 64-bit kernel that is all in the file (what
// load_bzimage checks first); the error says what is wrong.
Result<void> check_bzimage(std::span<const std::byte> kernel);

// Internal steps, exposed for unit tests.
Result<LoadedKernel> load_bzimage(const GuestMemory& mem, std::span<const std::byte> kernel);
// A bzImage whose payload kiln unpacked (`vmlinux`, an ELF): its boot_params as for the bzImage,
// the vmlinux's segments at their physical addresses, and the vCPU at its 64-bit entry point,
// where the kernel's decompressor would have jumped (without the decompressor's KASLR).
Result<LoadedKernel> load_bzimage_unpacked(const GuestMemory& mem, std::span<const std::byte> kernel,
                                           std::span<const std::byte> vmlinux);
// An ELF's loadable segments written to guest memory at their physical addresses.
struct LoadedElf {
  std::uint64_t e_entry = 0;
  std::optional<std::uint64_t> pvh_entry;  // the XEN_ELFNOTE_PHYS32_ENTRY note
  std::uint64_t kernel_end = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> segments;  // guest physical start, size
  [[nodiscard]] bool inside(std::uint64_t addr) const;
};
Result<LoadedElf> load_elf_segments(const GuestMemory& mem, std::span<const std::byte> kernel);
Result<LoadedKernel> load_elf_pvh(const GuestMemory& mem, std::span<const std::byte> kernel);
// Highest page-aligned address for an initrd of `size` bytes between kernel_end and `limit`.
Result<std::uint64_t> place_initrd(const GuestMemory& mem, std::uint64_t kernel_end, std::uint64_t limit,
                                   std::uint64_t size);

}  // namespace kiln::boot
