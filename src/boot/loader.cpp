#include "boot/loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "arch/x86/layout.h"
#include "base/unique_fd.h"
#include "boot/boot_params.h"

namespace kiln::boot {

std::string LoadedKernel::describe() const {
  switch (format) {
    case KernelFormat::kBzImage: return "bzImage (Linux 64-bit boot protocol)";
    case KernelFormat::kBzImageUnpacked: return "bzImage unpacked by kiln (its vmlinux at its 64-bit entry)";
    case KernelFormat::kElfPvh: break;
  }
  return "ELF vmlinux (PVH entry)";
}

Result<KernelFormat> detect_kernel_format(std::span<const std::byte> image) {
  if (image.size() >= 4 && std::memcmp(image.data(), "\x7f" "ELF", 4) == 0) return KernelFormat::kElfPvh;
  if (image.size() >= 0x206) {
    std::uint16_t flag;
    std::uint32_t magic;
    std::memcpy(&flag, image.data() + 0x1fe, 2);
    std::memcpy(&magic, image.data() + 0x202, 4);
    if (flag == kBootFlag && magic == kHdrSMagic) return KernelFormat::kBzImage;
  }
  return plain_error(
      "not a Linux kernel: neither a bzImage (no 'HdrS' boot header at 0x202) nor an ELF vmlinux; "
      "pass the kernel image (e.g. /boot/vmlinuz-*)");
}

std::vector<MemoryMapEntry> memory_map(const GuestMemory& mem) {
  std::vector<MemoryMapEntry> out;
  out.push_back({0, x86::kEbdaStart, kE820Ram});
  out.push_back({x86::kEbdaStart, x86::kHighMemStart - x86::kEbdaStart, kE820Reserved});
  for (const auto& r : mem.regions()) {
    const std::uint64_t start = std::max(r.start.value, x86::kHighMemStart);
    if (r.end() > start) out.push_back({start, r.end() - start, kE820Ram});
  }
  return out;
}

Result<std::uint64_t> place_initrd(const GuestMemory& mem, std::uint64_t kernel_end, std::uint64_t limit,
                                   std::uint64_t size) {
  const std::uint64_t top = std::min(mem.end_below_4g(), limit);
  const std::uint64_t lowest = (kernel_end + 0xfff) & ~0xfffull;
  if (size > top || ((top - size) & ~0xfffull) < lowest)
    return plain_error(
        "--initrd: the initrd ({} KiB) does not fit in guest memory above the kernel (room: {} KiB below {} MiB); "
        "raise --memory",
        size / 1024, top > lowest ? (top - lowest) / 1024 : 0, top >> 20);
  return (top - size) & ~0xfffull;
}

Result<LoadedKernel> load_linux(const GuestMemory& mem, std::span<const std::byte> kernel,
                                std::span<const std::byte> initrd, std::string_view cmdline,
                                std::optional<std::uint64_t> rsdp_addr, std::span<const std::byte> unpacked) {
  KILN_ASSIGN(KernelFormat fmt, detect_kernel_format(kernel));
  if (cmdline.size() + 1 > x86::kCmdlineMax)
    return plain_error("--cmdline: {} bytes is longer than the {} kiln has room for", cmdline.size(),
                       x86::kCmdlineMax - 1);
  const bool bz = fmt == KernelFormat::kBzImage;
  KILN_ASSIGN(LoadedKernel k, !bz                ? load_elf_pvh(mem, kernel)
                              : unpacked.empty() ? load_bzimage(mem, kernel)
                                                 : load_bzimage_unpacked(mem, kernel, unpacked));

  // The command line.
  KILN_CHECK(mem.fill(GuestAddress{x86::kCmdlineAddr}, std::byte{0}, x86::kCmdlineMax));
  KILN_CHECK(mem.write(GuestAddress{x86::kCmdlineAddr}, std::as_bytes(std::span(cmdline.data(), cmdline.size()))));

  const auto map = memory_map(mem);
  if (bz) {
    KILN_ASSIGN(auto bp, mem.read_obj<BootParams>(GuestAddress{k.boot_info_addr}));
    if (bp.hdr.version >= 0x206 && cmdline.size() + 1 > bp.hdr.cmdline_size + 1ull)
      return plain_error("--cmdline: {} bytes is longer than this kernel accepts ({})", cmdline.size(),
                         bp.hdr.cmdline_size);
    bp.hdr.cmd_line_ptr = static_cast<std::uint32_t>(x86::kCmdlineAddr);
    if (!initrd.empty()) {
      const std::uint64_t limit = bp.hdr.initrd_addr_max != 0 ? bp.hdr.initrd_addr_max + 1ull : 0x3800'0000ull;
      KILN_ASSIGN(const std::uint64_t addr, place_initrd(mem, k.kernel_end, limit, initrd.size()));
      KILN_CHECK(mem.write(GuestAddress{addr}, initrd));
      bp.hdr.ramdisk_image = static_cast<std::uint32_t>(addr);
      bp.hdr.ramdisk_size = static_cast<std::uint32_t>(initrd.size());
      k.initrd = {addr, initrd.size()};
    }
    if (rsdp_addr) bp.acpi_rsdp_addr = *rsdp_addr;
    bp.e820_entries = static_cast<std::uint8_t>(map.size());
    for (std::size_t i = 0; i < map.size(); ++i) bp.e820_table[i] = {map[i].addr, map[i].size, map[i].type};
    KILN_CHECK(mem.write_obj(GuestAddress{k.boot_info_addr}, bp));
  } else {
    HvmStartInfo si{};
    si.magic = kHvmStartMagic;
    si.version = 1;
    si.cmdline_paddr = x86::kCmdlineAddr;
    const std::uint64_t modlist = x86::kPvhStartInfoAddr + sizeof(HvmStartInfo);
    const std::uint64_t memmap = modlist + sizeof(HvmModlistEntry);
    if (!initrd.empty()) {
      KILN_ASSIGN(const std::uint64_t addr, place_initrd(mem, k.kernel_end, ~0ull, initrd.size()));
      KILN_CHECK(mem.write(GuestAddress{addr}, initrd));
      KILN_CHECK(mem.write_obj(GuestAddress{modlist}, HvmModlistEntry{addr, initrd.size(), 0, 0}));
      si.nr_modules = 1;
      si.modlist_paddr = modlist;
      k.initrd = {addr, initrd.size()};
    }
    for (std::size_t i = 0; i < map.size(); ++i)
      KILN_CHECK(mem.write_obj(GuestAddress{memmap + i * sizeof(HvmMemmapEntry)},
                             HvmMemmapEntry{map[i].addr, map[i].size, map[i].type, 0}));
    si.memmap_paddr = memmap;
    if (rsdp_addr) si.rsdp_paddr = *rsdp_addr;
    si.memmap_entries = static_cast<std::uint32_t>(map.size());
    KILN_CHECK(mem.write_obj(GuestAddress{k.boot_info_addr}, si));
  }
  return k;
}

Result<std::vector<std::byte>> read_image_file(const std::string& path, std::string_view what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    const int e = errno;
    return plain_error("{}: cannot open '{}': {}{}", what, path, std::strerror(e),
                       e == ENOENT ? " (check the path)" : "");
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return errno_error("{}: stat '{}'", what, path);
  if (!S_ISREG(st.st_mode)) return plain_error("{}: '{}' is not a regular file", what, path);
  if (st.st_size == 0) return plain_error("{}: '{}' is empty", what, path);
  if (st.st_size > (4ll << 30)) return plain_error("{}: '{}' is larger than 4 GiB", what, path);
  std::vector<std::byte> data(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::read(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_error("{}: reading '{}'", what, path);
    done += static_cast<std::size_t>(n);
  }
  return data;
}

}  // namespace kiln::boot
