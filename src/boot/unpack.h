#pragma once
// Unpacking a bzImage's compressed payload on the host, so that no decompressor runs in the guest.
// The payload (setup header fields payload_offset/payload_length) is the kernel's vmlinux ELF,
// compressed with one of the kernel's methods; each is undone with Debian's library for it (zlib,
// liblzma, liblz4, libzstd, libbz2). On nested-PVM hosts the guest's decompressor is emulated
// instruction by instruction (minutes for a stock kernel); here it takes a fraction of a second.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace kiln::boot {

enum class Compression { kGzip, kXz, kLzma, kLz4, kZstd, kBzip2, kLzo, kNone, kUnknown };

std::string_view compression_name(Compression c);
// Which method compressed `payload`, from its magic bytes.
Compression detect_compression(std::span<const std::byte> payload);

// The payload of a bzImage (its bytes after the setup sectors, at payload_offset), or an error if
// the header has no payload fields (boot protocol < 2.08) or they point outside the file.
Result<std::span<const std::byte>> bzimage_payload(std::span<const std::byte> bzimage);

// A bzImage's payload unpacked (the limit: 1 GiB), checked against the unpacked size the
// kernel's build appends to it; it must be an ELF (the kernel's vmlinux).
struct UnpackedKernel {
  std::vector<std::byte> vmlinux;
  Compression method = Compression::kUnknown;
  double milliseconds = 0;
  [[nodiscard]] std::string describe() const;  // "50.8 MiB of lz4 in 165 ms"
};
Result<UnpackedKernel> unpack_bzimage(std::span<const std::byte> bzimage);

// Decompresses `payload`; the output is at most `limit` bytes (a larger one is an error, not an
// allocation). LZO, and what no method recognises, are errors naming the method.
Result<std::vector<std::byte>> decompress(std::span<const std::byte> payload, std::size_t limit);

// A compressed initramfs unpacked on the host: its parts in order, each cpio archive as it was and
// each compressed part (gzip, xz, lzma, zstd, bzip2) undone, so that the guest's kernel reads plain
// cpio (which it takes just as well) instead of running its decompressor, which on nested-PVM
// hosts is emulated: a 0.9 MB zstd initramfs took ~130 s there. nullopt when nothing in it is
// compressed; an error (the caller boots the initrd as it is) for a part kiln cannot read or a
// result over `limit` bytes.
struct UnpackedInitrd {
  std::vector<std::byte> bytes;
  Compression method = Compression::kUnknown;  // of the last compressed part
  std::size_t compressed_size = 0;
  double milliseconds = 0;
  [[nodiscard]] std::string describe() const;  // "0.9 MiB of zstd became 4.1 MiB in 12 ms"
};
Result<std::optional<UnpackedInitrd>> unpack_initrd(std::span<const std::byte> initrd, std::size_t limit);

}  // namespace kiln::boot
