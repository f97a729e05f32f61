#include "virtio/rng/rng.h"

#include <sys/random.h>

#include <cstring>

namespace kiln::virtio {

std::uint64_t RngDevice::features() const {
  return kFeatureVersion1 | kFeatureRingEventIdx | kFeatureRingIndirectDesc;
}

void RngDevice::read_config(std::uint64_t, std::span<std::byte> data) const {
  std::memset(data.data(), 0, data.size());  // no config space
}

Result<void> RngDevice::activate(const Activation& a) {
  act_ = a;
  return {};
}

namespace {
Result<void> fill_random(void* p, std::size_t len) {
  auto* at = static_cast<std::byte*>(p);
  while (len > 0) {
    const ssize_t n = ::getrandom(at, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_error("getrandom");
    at += n;
    len -= static_cast<std::size_t>(n);
  }
  return {};
}
}  // namespace

Result<void> RngDevice::queue_notify(std::uint16_t index) {
  Queue& q = act_.queues[index];
  const GuestMemory& mem = *act_.mem;
  for (;;) {
    for (;;) {
      KILN_ASSIGN(auto chain, q.pop(mem));
      if (!chain) break;
      std::uint32_t written = 0;
      for (const Buffer& b : chain->writable) {
        const std::uint32_t n = std::min(b.len, kMaxPerRequest - written);
        if (n == 0) break;
        KILN_ASSIGN(const auto iov, mem.iovecs(b.addr, n, true));
        for (const iovec& v : iov) KILN_CHECK(fill_random(v.iov_base, v.iov_len));
        written += n;
      }
      bytes_.fetch_add(written, std::memory_order_relaxed);
      KILN_CHECK(q.add_used(mem, chain->head, written));
    }
    KILN_ASSIGN(const bool more, q.enable_notification(mem));
    if (!more) break;
  }
  KILN_ASSIGN(const bool wanted, q.needs_interrupt(mem));
  if (wanted) act_.interrupt->used_buffers(index);
  return {};
}

}  // namespace kiln::virtio
