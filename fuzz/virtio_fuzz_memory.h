#pragma once
// Guest memory for the virtio fuzz targets: two 64 KiB regions with a hole between them (as RAM
// below and above the MMIO hole), filled with the fuzzer's bytes, and a scratch disk image.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>

#include "memory/guest_memory.h"
#include "virtio/block/block.h"
#include "virtio/rng/rng.h"

namespace kiln::fuzz {

inline constexpr std::uint64_t kLowSize = 0x10000, kHighStart = 0x20000, kHighSize = 0x10000;

inline GuestMemory fuzz_memory(std::span<const std::uint8_t> fill) {
  const RegionLayout layout[] = {{0, kLowSize}, {kHighStart, kHighSize}};
  auto mem = GuestMemory::create(layout);
  if (!mem) std::abort();
  const std::size_t low = std::min<std::size_t>(fill.size(), kLowSize);
  if (!mem->write(GuestAddress{0}, std::as_bytes(fill.first(low)))) std::abort();
  if (fill.size() > low) {
    const auto rest = fill.subspan(low, std::min<std::size_t>(fill.size() - low, kHighSize));
    if (!mem->write(GuestAddress{kHighStart}, std::as_bytes(rest))) std::abort();
  }
  return std::move(*mem);
}

// A 256 KiB image in /dev/shm (or /tmp), made once per process.
inline const std::string& fuzz_disk_path() {
  static const std::string path = [] {
    std::string p = (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + std::string("/kiln-fuzz-disk-") +
                    std::to_string(::getpid());
    const int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::ftruncate(fd, 256 * 1024) != 0) std::abort();
    ::close(fd);
    std::atexit([] { ::unlink(fuzz_disk_path().c_str()); });
    return p;
  }();
  return path;
}

// The device under a fuzzed transport, chosen by `selector`: bit 0 a virtio-blk disk on the scratch
// image (bit 1: read-only), else virtio-rng.
inline std::shared_ptr<virtio::VirtioDevice> fuzz_virtio_device(std::uint8_t selector) {
  if (!(selector & 1)) return std::make_shared<virtio::RngDevice>();
  auto image = virtio::DiskImage::open(fuzz_disk_path(), (selector & 2) != 0, "fuzz");
  if (!image) std::abort();
  const int fd = image->fd.get();
  return std::make_shared<virtio::BlockDevice>(virtio::BlockConfig{.id = "fuzz", .queue_size = 64}, std::move(*image),
                                               virtio::BlockEngine::create_sync(fd));
}

}  // namespace kiln::fuzz
