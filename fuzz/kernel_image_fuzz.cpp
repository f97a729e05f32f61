// The kernel loaders (bzImage through the boot protocol, ELF vmlinux through PVH), fed a hostile
// image file as the kernel: every field is the attacker's (sizes, offsets, program headers,
// notes). A load either fails with an error or succeeds with the entry point, the boot
// information and the initrd inside guest RAM; nothing else.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "arch/x86/layout.h"
#include "boot/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static kiln::GuestMemory mem = [] {
    auto layout = kiln::x86_ram_layout(64 << 20);
    auto m = kiln::GuestMemory::create(layout);
    if (!m) {
      std::fprintf(stderr, "guest memory: %s\n", m.error().message().c_str());
      std::abort();
    }
    return std::move(*m);
  }();
  const auto kernel = std::as_bytes(std::span(data, size));
  const std::byte initrd[16] = {};
  auto loaded = kiln::boot::load_linux(mem, kernel, initrd, "console=ttyS0 reboot=k");
  if (loaded) {
    if (!mem.contains(kiln::GuestAddress{loaded->boot_info_addr}, 1)) std::abort();
    if (!mem.contains(kiln::GuestAddress{loaded->entry}, 1)) std::abort();
    if (loaded->initrd && !mem.contains(kiln::GuestAddress{loaded->initrd->first}, loaded->initrd->second)) std::abort();
    (void)loaded->describe();
  }
  return 0;
}
