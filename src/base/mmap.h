#pragma once
// RAII memory mapping: unmapped exactly once, by its destructor.
#include <cstddef>
#include <span>
#include <utility>

#include "base/error.h"

namespace kiln {

class Mmap {
 public:
  Mmap() = default;
  Mmap(const Mmap&) = delete;
  Mmap& operator=(const Mmap&) = delete;
  Mmap(Mmap&& o) noexcept : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Mmap& operator=(Mmap&& o) noexcept;
  ~Mmap();

  // Anonymous private memory (guest RAM), optionally without a reserve of swap.
  static Result<Mmap> anonymous(std::size_t size);
  // A shared mapping of an fd (the vCPU's kvm_run area, a memfd).
  static Result<Mmap> shared_fd(int fd, std::size_t size);

  [[nodiscard]] std::byte* data() const { return static_cast<std::byte*>(addr_); }
  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  Mmap(void* addr, std::size_t size) : addr_(addr), size_(size) {}
  void* addr_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace kiln
