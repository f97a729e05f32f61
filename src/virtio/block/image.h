#pragma once
// A raw disk image on the host: a regular file or a block device, opened read-write or read-only
// and locked (an exclusive OFD lock when writable, a shared one when read-only) so that two VMs
// cannot write one image, nor one read an image another writes.
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/unique_fd.h"

namespace kiln::virtio {

struct DiskImage {
  UniqueFd fd;
  std::string path;
  std::uint64_t size = 0;  // bytes
  bool read_only = false;

  // Errors name `field` (the flag or API field the path came from) and say what to do.
  static Result<DiskImage> open(const std::string& path, bool read_only, std::string_view field);
};

}  // namespace kiln::virtio
