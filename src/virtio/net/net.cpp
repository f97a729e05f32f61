#include "virtio/net/net.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <bit>
#include <cstddef>
#include <cstring>

#include "base/log.h"

namespace kiln::virtio {

bool complete_checksum(std::span<std::byte> frame, std::uint16_t csum_start, std::uint16_t csum_offset) {
  const std::size_t at = std::size_t{csum_start} + csum_offset;
  if (csum_start >= frame.size() || at + 2 > frame.size()) return false;
  // The one's complement sum of the big-endian 16-bit words from csum_start on, taken 4 bytes at a
  // time in the host's (little-endian) order: that sum is the big-endian one byte-swapped (RFC
  // 1071, 2.B), and 2^16 = 1 in its arithmetic, so 32-bit loads into a 64-bit sum give the same
  // result once folded. A frame is at most kMaxFrame bytes: the sum cannot overflow.
  static_assert(std::endian::native == std::endian::little);
  const auto* p = reinterpret_cast<const std::uint8_t*>(frame.data()) + csum_start;
  std::size_t left = frame.size() - csum_start;
  std::uint64_t sum = 0;
  for (; left >= 4; left -= 4, p += 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    sum += w;
  }
  if (left >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    sum += w;
    left -= 2;
    p += 2;
  }
  if (left == 1) sum += *p;  // the last byte is a word's high half, padded with zero
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  const std::uint16_t c = static_cast<std::uint16_t>(~std::byteswap(static_cast<std::uint16_t>(sum)));
  frame[at] = static_cast<std::byte>(c >> 8);
  frame[at + 1] = static_cast<std::byte>(c & 0xff);
  return true;
}

Result<std::unique_ptr<NetDevice>> NetDevice::create(NetConfig config, std::unique_ptr<NetBackend> backend) {
  std::unique_ptr<NetDevice> d(new NetDevice(std::move(config), std::move(backend)));
  d->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!d->epoll_) return errno_error("virtio-net {}: epoll_create1", d->config_.id);
  d->kick_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!d->kick_) return errno_error("virtio-net {}: eventfd", d->config_.id);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = d->kick_.get();
  if (::epoll_ctl(d->epoll_.get(), EPOLL_CTL_ADD, d->kick_.get(), &ev) != 0)
    return errno_error("virtio-net {}: epoll_ctl", d->config_.id);
  if (d->backend_->rx_fd() >= 0 && !d->rx_fd_ctl(EPOLL_CTL_ADD))
    return errno_error("virtio-net {}: epoll_ctl", d->config_.id);
  d->rx_buf_.resize(kRxBufferSize);
  d->tx_buf_.resize(sizeof(NetHeader) + kMaxFrame);
  return d;
}

std::uint64_t NetDevice::features() const {
  std::uint64_t f = kFeatureVersion1 | kFeatureRingEventIdx | kFeatureRingIndirectDesc | kFeatureMrgRxbuf | kFeatureStatus;
  if (config_.mac) f |= kFeatureMac;
  // Checksums both ways in software where the back end does not do them; the rest only from it.
  return f | kNetFCsum | kNetFGuestCsum | (backend_->offloads() & kNetOffloads);
}

namespace {

// The features a GSO type needs: GUEST_* on the way in, HOST_* on the way out; 0 for none, ~0 for
// a type that does not exist.
std::uint64_t gso_needs(std::uint8_t gso_type, bool to_guest) {
  std::uint64_t need = 0;
  switch (gso_type & ~kNetGsoEcn) {
    case kNetGsoNone:
      if (gso_type & kNetGsoEcn) return ~0ull;
      return 0;
    case kNetGsoTcpV4: need = to_guest ? kNetFGuestTso4 : kNetFHostTso4; break;
    case kNetGsoTcpV6: need = to_guest ? kNetFGuestTso6 : kNetFHostTso6; break;
    case kNetGsoUdp: need = to_guest ? kNetFGuestUfo : kNetFHostUfo; break;
    default: return ~0ull;
  }
  if (gso_type & kNetGsoEcn) need |= to_guest ? kNetFGuestEcn : kNetFHostEcn;
  return need;
}

}  // namespace

void NetDevice::read_config(std::uint64_t offset, std::span<std::byte> data) const {
  // mac[6], status, max_virtqueue_pairs (section 5.1.4).
  std::array<std::uint8_t, 10> cfg{};
  if (config_.mac) std::memcpy(cfg.data(), config_.mac->data(), 6);
  cfg[6] = kLinkUp;
  cfg[8] = 1;
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = offset + i < cfg.size() ? static_cast<std::byte>(cfg[offset + i]) : std::byte{0};
}

bool NetDevice::rx_fd_ctl(int op) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = backend_->rx_fd();
  return ::epoll_ctl(epoll_.get(), op, backend_->rx_fd(), &ev) == 0;
}

void NetDevice::watch_rx_fd(bool on) {
  if (on == rx_fd_watched_ || !backend_->rx_fd_only_frames()) return;
  // Added back with frames waiting, the fd is reported at once (edge-triggered sets check then).
  if (!rx_fd_ctl(on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL)) {
    static RateLimit log_limit;
    if (log_limit.allow())
      SPDLOG_WARN("virtio-net {}: epoll_ctl on {}'s fd: {}{}", config_.id, backend_->describe(), std::strerror(errno),
                  log_limit.suppressed_note());
    return;
  }
  rx_fd_watched_ = on;
}

void NetDevice::kick() {
  const std::uint64_t one = 1;
  (void)!::write(kick_.get(), &one, sizeof one);
}

Result<void> NetDevice::activate(const Activation& a) {
  act_ = a;
  negotiated_ = a.features;
  mrg_ = (a.features & kFeatureMrgRxbuf) != 0;
  // The back end hands over only frames whose offloads the driver took.
  if (auto r = backend_->set_guest_offloads(a.features & backend_->offloads() & kNetGuestOffloads); !r)
    SPDLOG_WARN("virtio-net {}: {}: {}", config_.id, backend_->describe(), r.error().message());
  // Frames may have arrived while the driver set up: the loop takes them (this is a vCPU thread).
  kick();
  return {};
}

void NetDevice::reset() {
  act_ = {};
  negotiated_ = 0;
  if (auto r = backend_->set_guest_offloads(0); !r)
    SPDLOG_WARN("virtio-net {}: {}: {}", config_.id, backend_->describe(), r.error().message());
  rx_chains_.clear();
  if (rx_len_ != 0) counters_.rx_dropped.fetch_add(1, std::memory_order_relaxed);
  rx_len_ = 0;
  tx_deferred_ = false;
  watch_rx_fd(true);
}

Result<void> NetDevice::queue_notify(std::uint16_t index) {
  if (index == kRxQueue) return process_rx();
  return process_tx();
}

Result<void> NetDevice::backend_ready() {
  // Both edges off the set in one call (it holds two fds), and the kick read only when it came.
  epoll_event evs[4];
  const int ready = ::epoll_wait(epoll_.get(), evs, 4, 0);
  for (int i = 0; i < ready; ++i) {
    if (evs[i].data.fd != kick_.get()) continue;
    std::uint64_t n = 0;
    (void)!::read(kick_.get(), &n, sizeof n);
  }
  service_backend();  // before the driver is up too: a back end's stack has its own work
  if (act_.mem == nullptr) return {};
  if (tx_deferred_) {
    tx_deferred_ = false;
    KILN_CHECK(process_tx());
  }
  return process_rx();
}

Result<void> NetDevice::process_tx() {
  if (act_.mem == nullptr) return {};
  Queue& q = act_.queues[kTxQueue];
  const GuestMemory& mem = *act_.mem;
  static RateLimit log_limit;
  KILN_ASSIGN(const bool more, drain(q, mem, kBudget, [&](const DescriptorChain& chain) -> Result<void> {
    const std::uint32_t len = chain.readable_len;
    if (len < sizeof(NetHeader) || len > tx_buf_.size()) {
      counters_.tx_malformed.fetch_add(1, std::memory_order_relaxed);
      return q.add_used(mem, chain.head, 0);
    }
    KILN_CHECK(read_readable(mem, chain, tx_buf_));
    NetHeader hdr;
    std::memcpy(&hdr, tx_buf_.data(), sizeof hdr);
    hdr.num_buffers = 0;
    auto frame = std::span(tx_buf_).subspan(sizeof hdr, len - sizeof hdr);
    // A frame, with only the offloads the driver took (a segmentation one implies the back end's).
    const std::uint64_t need =
        gso_needs(hdr.gso_type, false) | ((hdr.flags & kNetHdrNeedsCsum) ? kNetFCsum : 0);
    bool ok = frame.size() >= 14 && (need & ~negotiated_) == 0;
    if (ok && (hdr.flags & kNetHdrNeedsCsum) && !(backend_->offloads() & kNetFCsum)) {
      ok = complete_checksum(frame, hdr.csum_start, hdr.csum_offset);  // done here, for this back end
      hdr.flags = 0;
    }
    if (!ok) {
      counters_.tx_malformed.fetch_add(1, std::memory_order_relaxed);
      return q.add_used(mem, chain.head, 0);
    }
    hdr.flags &= kNetHdrNeedsCsum;
    auto sent = backend_->send(hdr, frame);
    if (sent && *sent) {
      counters_.tx_frames.fetch_add(1, std::memory_order_relaxed);
      counters_.tx_bytes.fetch_add(frame.size(), std::memory_order_relaxed);
    } else {
      counters_.tx_dropped.fetch_add(1, std::memory_order_relaxed);
      if (!sent && log_limit.allow())
        SPDLOG_WARN("virtio-net {}: {}: {}{}", config_.id, backend_->describe(), sent.error().message(),
                    log_limit.suppressed_note());
    }
    return q.add_used(mem, chain.head, 0);
  }));
  if (more) {
    tx_deferred_ = true;  // the rest on the loop's next turn
    kick();
  }
  KILN_ASSIGN(const bool wanted, q.needs_interrupt(mem));
  if (wanted) act_.interrupt->used_buffers(kTxQueue);
  // The back end's work on what it was given, and the frames it answered with at once (user-mode
  // networking's ARP replies and TCP acknowledgements) to the guest without a trip round the loop.
  service_backend();
  if (backend_->rx_pending()) return process_rx();
  return {};
}

void NetDevice::service_backend() {
  static RateLimit log_limit;
  if (auto r = backend_->service(); !r && log_limit.allow())
    SPDLOG_WARN("virtio-net {}: {}: {}{}", config_.id, backend_->describe(), r.error().message(),
                log_limit.suppressed_note());
}

Result<void> NetDevice::deliver(std::size_t n, std::size_t len) {
  const GuestMemory& mem = *act_.mem;
  Queue& q = act_.queues[kRxQueue];
  // The header receive() filled in, with the count of buffers.
  const auto num_buffers = static_cast<std::uint16_t>(n);
  std::memcpy(rx_buf_.data() + offsetof(NetHeader, num_buffers), &num_buffers, sizeof num_buffers);
  std::size_t at = 0;
  for (std::size_t c = 0; c < n; ++c) {
    const DescriptorChain& chain = rx_chains_[c];
    std::uint32_t written = 0;
    for (const Buffer& b : chain.writable) {
      if (at == len) break;
      const std::size_t k = std::min<std::size_t>(b.len, len - at);
      KILN_CHECK(mem.write(b.addr, std::span(rx_buf_).subspan(at, k)));
      at += k;
      written += static_cast<std::uint32_t>(k);
    }
    KILN_CHECK(q.add_used(mem, chain.head, written));
  }
  rx_chains_.erase(rx_chains_.begin(), rx_chains_.begin() + static_cast<std::ptrdiff_t>(n));
  return {};
}

Result<void> NetDevice::process_rx() {
  if (act_.mem == nullptr) return {};
  Queue& q = act_.queues[kRxQueue];
  const GuestMemory& mem = *act_.mem;
  static RateLimit log_limit;
  for (int done = 0;; ++done) {
    if (done == kBudget) {
      kick();
      break;
    }
    if (rx_len_ == 0) {
      auto got = backend_->receive(rx_buf_);
      if (!got) {
        if (log_limit.allow())
          SPDLOG_WARN("virtio-net {}: {}: {}{}", config_.id, backend_->describe(), got.error().message(),
                      log_limit.suppressed_note());
        break;
      }
      if (*got == 0) break;
      if (*got > kMaxFrame) {  // not from a back end that keeps receive()'s bound
        counters_.rx_dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      const auto frame = std::span(rx_buf_).subspan(sizeof(NetHeader), *got);
      NetHeader hdr;
      std::memcpy(&hdr, rx_buf_.data(), sizeof hdr);
      // Only offloads the driver took reach it: a partial checksum is completed here for a driver
      // without GUEST_CSUM; a segmented frame it did not ask for is dropped.
      bool ok = (gso_needs(hdr.gso_type, true) & ~negotiated_) == 0;
      if (ok && (hdr.flags & kNetHdrNeedsCsum) && !(negotiated_ & kNetFGuestCsum)) {
        ok = complete_checksum(frame, hdr.csum_start, hdr.csum_offset);
        hdr.flags = 0;
      }
      if (!ok) {
        counters_.rx_dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      hdr.flags &= (negotiated_ & kNetFGuestCsum) ? (kNetHdrNeedsCsum | kNetHdrDataValid) : 0;
      hdr.num_buffers = 0;
      std::memcpy(rx_buf_.data(), &hdr, sizeof hdr);
      rx_len_ = *got;
    }
    const std::size_t need = sizeof(NetHeader) + rx_len_;
    // Chains enough to hold it: one without mergeable buffers, as many as it takes with them.
    std::size_t n = 0, have = 0;
    bool blocked = false;
    for (;;) {
      for (; n < rx_chains_.size() && have < need; ++n) have += rx_chains_[n].writable_len;
      if (have >= need || (!mrg_ && n >= 1)) break;
      KILN_ASSIGN(auto chain, q.pop(mem));
      if (!chain) {
        KILN_ASSIGN(const bool more, q.enable_notification(mem));
        if (more) continue;
        blocked = true;
        break;
      }
      if (chain->writable_len == 0) {  // nothing to receive into: given back empty
        KILN_CHECK(q.add_used(mem, chain->head, 0));
        continue;
      }
      rx_chains_.push_back(std::move(*chain));
    }
    if (blocked) {
      counters_.rx_no_buffers.fetch_add(1, std::memory_order_relaxed);
      watch_rx_fd(false);  // until the guest notifies that it added buffers
      break;
    }
    watch_rx_fd(true);  // buffers again: frames are taken as they come
    if (have < need) {
      // Without mergeable buffers the guest's buffer is too small for this frame: it is dropped and
      // the buffer kept for the next one.
      counters_.rx_dropped.fetch_add(1, std::memory_order_relaxed);
      rx_len_ = 0;
      continue;
    }
    KILN_CHECK(deliver(n, need));
    counters_.rx_frames.fetch_add(1, std::memory_order_relaxed);
    counters_.rx_bytes.fetch_add(rx_len_, std::memory_order_relaxed);
    rx_len_ = 0;
  }
  KILN_ASSIGN(const bool wanted, q.needs_interrupt(mem));
  if (wanted) act_.interrupt->used_buffers(kRxQueue);
  return {};
}

}  // namespace kiln::virtio
