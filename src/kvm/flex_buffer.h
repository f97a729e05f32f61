#pragma once
// <linux/kvm.h> (6.1 uapi) declares the variable-length structs (kvm_cpuid2, kvm_msrs, ...) with
// __DECLARE_FLEX_ARRAY, which in C++ wraps an empty struct of size 1: sizeof(kvm_cpuid2) is 12
// instead of 8, so both the ioctl numbers built from it and the offset of `entries` are wrong.
// kiln builds these buffers itself with the C layout: a {count, padding} header, then entries.
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace kiln::kvm {

inline constexpr unsigned long kFlexHeaderSize = 8;
inline constexpr unsigned long kIoctlGetSupportedCpuid = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, kFlexHeaderSize);
inline constexpr unsigned long kIoctlSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, kFlexHeaderSize);
inline constexpr unsigned long kIoctlSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, kFlexHeaderSize);
inline constexpr unsigned long kIoctlGetMsrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, kFlexHeaderSize);
// struct kvm_xsave ends in a flexible `extra` array too: 4096 bytes in C, 4100 in C++.
inline constexpr unsigned long kXsaveSize = 4096;
inline constexpr unsigned long kIoctlGetXsave = _IOC(_IOC_READ, KVMIO, 0xa4, kXsaveSize);
inline constexpr unsigned long kIoctlSetXsave = _IOC(_IOC_WRITE, KVMIO, 0xa5, kXsaveSize);
// The values C code gets for these ioctls.
static_assert(kIoctlGetSupportedCpuid == 0xc008ae05);
static_assert(kIoctlSetCpuid2 == 0x4008ae90);
static_assert(kIoctlSetMsrs == 0x4008ae89);
static_assert(kIoctlGetMsrs == 0xc008ae88);
static_assert(kIoctlGetXsave == 0x9000aea4);

template <class Entry>
class FlexBuffer {
 public:
  explicit FlexBuffer(std::size_t capacity)
      : storage_((kFlexHeaderSize + capacity * sizeof(Entry) + 7) / 8, 0), capacity_(capacity) {
    set_count(static_cast<std::uint32_t>(capacity));
  }
  void* data() { return storage_.data(); }
  [[nodiscard]] std::uint32_t count() const {
    std::uint32_t n;
    std::memcpy(&n, storage_.data(), 4);
    return n < capacity_ ? n : static_cast<std::uint32_t>(capacity_);
  }
  void set_count(std::uint32_t n) { std::memcpy(storage_.data(), &n, 4); }
  Entry get(std::size_t i) const {
    Entry e;
    std::memcpy(&e, bytes() + kFlexHeaderSize + i * sizeof(Entry), sizeof(Entry));
    return e;
  }
  void set(std::size_t i, const Entry& e) {
    std::memcpy(bytes() + kFlexHeaderSize + i * sizeof(Entry), &e, sizeof(Entry));
  }

 private:
  const std::byte* bytes() const { return reinterpret_cast<const std::byte*>(storage_.data()); }
  std::byte* bytes() { return reinterpret_cast<std::byte*>(storage_.data()); }
  std::vector<std::uint64_t> storage_;
  std::size_t capacity_;
};

}  // namespace kiln::kvm
