#include "virtio/net/mmds_router.h"

#include <sys/epoll.h>

#include <cstring>

namespace kiln::virtio {

namespace {

std::uint16_t be16(std::span<const std::byte> f, std::size_t at) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(f[at]) << 8 | std::to_integer<unsigned>(f[at + 1]));
}

std::uint32_t addr_at(std::span<const std::byte> f, std::size_t at) {
  std::uint32_t a = 0;
  std::memcpy(&a, f.data() + at, 4);  // stays in network order
  return a;
}

}  // namespace

bool MmdsRouter::for_service(std::span<const std::byte> frame, std::uint32_t service_addr, std::uint32_t own_addr) {
  constexpr std::size_t kEth = 14;
  if (frame.size() < kEth) return false;
  const std::uint16_t type = be16(frame, 12);
  if (type == 0x0806) {
    // ARP for IPv4 over Ethernet: the target protocol address is at 24 into it.
    if (frame.size() < kEth + 28 || be16(frame, kEth) != 1 || be16(frame, kEth + 2) != 0x0800) return false;
    const std::uint32_t target = addr_at(frame, kEth + 24);
    return target == service_addr || target == own_addr;
  }
  if (type == 0x0800) {
    if (frame.size() < kEth + 20) return false;
    return addr_at(frame, kEth + 16) == service_addr;
  }
  return false;
}

Result<std::unique_ptr<MmdsRouter>> MmdsRouter::create(std::unique_ptr<NetBackend> inner,
                                                      std::unique_ptr<UserNetBackend> service) {
  std::unique_ptr<MmdsRouter> r(new MmdsRouter(std::move(inner), std::move(service)));
  r->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!r->epoll_) return errno_error("metadata service: epoll_create1");
  for (const int fd : {r->inner_->rx_fd(), r->service_->rx_fd()}) {
    if (fd < 0) continue;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    if (::epoll_ctl(r->epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return errno_error("metadata service: epoll_ctl");
  }
  return r;
}

Result<bool> MmdsRouter::send(const NetHeader& hdr, std::span<const std::byte> frame) {
  if (for_service(frame, service_->service_addr(), service_->own_addr())) {
    ++service_frames_;
    if (hdr.gso_type != kNetGsoNone) return false;  // not offered: the device lets none through
    if (hdr.flags & kNetHdrNeedsCsum) {
      scratch_.assign(frame.begin(), frame.end());
      if (!complete_checksum(scratch_, hdr.csum_start, hdr.csum_offset)) return false;
      return service_->send(NetHeader{}, scratch_);
    }
    return service_->send(hdr, frame);
  }
  return inner_->send(hdr, frame);
}

Result<void> MmdsRouter::service() {
  auto a = service_->service();
  auto b = inner_->service();
  if (!a) return a;
  return b;
}

Result<std::size_t> MmdsRouter::receive(std::span<std::byte> buf) {
  // The service's few frames first (asked for only when there are some: this is every received
  // frame's path); the back end's then.
  if (service_->rx_pending()) {
    KILN_ASSIGN(const std::size_t n, service_->receive(buf));
    if (n != 0) return n;
  }
  KILN_ASSIGN(const std::size_t m, inner_->receive(buf));
  if (m == 0) {
    epoll_event evs[2];
    while (::epoll_wait(epoll_.get(), evs, 2, 0) > 0) {  // both empty: take their edges off the set
    }
  }
  return m;
}

}  // namespace kiln::virtio
