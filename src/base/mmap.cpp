#include "base/mmap.h"

#include <sys/mman.h>

namespace kiln {

Mmap& Mmap::operator=(Mmap&& o) noexcept {
  if (this != &o) {
    if (addr_ != nullptr) ::munmap(addr_, size_);
    addr_ = std::exchange(o.addr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

Mmap::~Mmap() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
}

Result<Mmap> Mmap::anonymous(std::size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return errno_error("mmap of {} bytes of guest memory", size);
  return Mmap(p, size);
}

Result<Mmap> Mmap::shared_fd(int fd, std::size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return errno_error("mmap of fd {} ({} bytes)", fd, size);
  return Mmap(p, size);
}

}  // namespace kiln
