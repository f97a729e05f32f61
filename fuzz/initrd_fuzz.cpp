// kiln's unpacking of a compressed initramfs (--unpack-kernel), fed a hostile initrd file: cpio
// headers whose sizes and names are the attacker's, compressed parts that are damaged, cut short
// or unpack without end, padding anywhere. It either leaves the initrd alone (nothing compressed),
// refuses it with an error, or returns plain cpio no larger than its limit; nothing else.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "boot/unpack.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kLimit = 16 << 20;
  const auto initrd = std::as_bytes(std::span(data, size));
  auto u = kiln::boot::unpack_initrd(initrd, kLimit);
  if (u && *u) {
    if ((*u)->bytes.size() > kLimit) std::abort();
    if ((*u)->compressed_size != size) std::abort();
    (void)(*u)->describe();
  }
  return 0;
}
