// The kernel loaders (bzImage through the boot protocol, ELF vmlinux through PVH), fed a hostile
// image file as the kernel: every field is the attacker's (sizes, offsets, program headers,
// notes). A load either fails with an error or succeeds with the entry point, the boot
// information and the initrd inside guest RAM; nothing else. The same input goes through kiln's
// own unpacking (the payload the header names, and the input itself as a compressed stream),
// whose output is bounded and, when a bzImage's payload unpacks, booted the unpacked way.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "arch/x86/layout.h"
#include "boot/loader.h"
#include "boot/unpack.h"

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
  constexpr std::size_t kLimit = 16 << 20;
  if (auto out = kiln::boot::decompress(kernel, kLimit); out && out->size() > kLimit) std::abort();
  std::vector<std::byte> unpacked;
  if (auto payload = kiln::boot::bzimage_payload(kernel)) {
    if (payload->data() < kernel.data() || payload->data() + payload->size() > kernel.data() + kernel.size()) std::abort();
    if (auto out = kiln::boot::decompress(*payload, kLimit)) {
      if (out->size() > kLimit) std::abort();
      unpacked = std::move(*out);
    }
  }
  for (int pass = 0; pass < (unpacked.empty() ? 1 : 2); ++pass) {
    auto loaded = kiln::boot::load_linux(mem, kernel, initrd, "console=ttyS0 reboot=k", std::nullopt,
                                         pass == 0 ? std::span<const std::byte>() : std::span<const std::byte>(unpacked));
    if (loaded) {
      if (!mem.contains(kiln::GuestAddress{loaded->boot_info_addr}, 1)) std::abort();
      if (!mem.contains(kiln::GuestAddress{loaded->entry}, 1)) std::abort();
      if (loaded->initrd && !mem.contains(kiln::GuestAddress{loaded->initrd->first}, loaded->initrd->second)) std::abort();
      (void)loaded->describe();
    }
  }
  return 0;
}
