#include "virtio/net/user_net.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include <cstring>
#include <ctime>

#include "base/log.h"

namespace kiln::virtio {

namespace {

std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void signal_fd(int fd) {
  const std::uint64_t one = 1;
  (void)!::write(fd, &one, sizeof one);
}

}  // namespace

struct UserNetBackend::Timer {
  SlirpTimerId id;
  void* cb_opaque;
  std::int64_t expire_ms = -1;
};

// libslirp's callbacks, all on the backend's thread (or in create(), before it starts).
struct SlirpGlue {
  static UserNetBackend& self(void* opaque) { return *static_cast<UserNetBackend*>(opaque); }
  static ssize_t send_packet(const void* buf, size_t len, void* opaque) {
    self(opaque).from_slirp(buf, len);
    return static_cast<ssize_t>(len);
  }
  static void guest_error(const char* msg, void*) {
    static RateLimit limit;
    if (limit.allow()) SPDLOG_WARN("user-mode networking: the guest sent {}{}", msg, limit.suppressed_note());
  }
  static std::int64_t clock_get_ns(void*) { return now_ns(); }
  static void* timer_new_opaque(SlirpTimerId id, void* cb_opaque, void* opaque) {
    auto& timers = self(opaque).timers_;
    timers.push_back(std::make_unique<UserNetBackend::Timer>(UserNetBackend::Timer{id, cb_opaque, -1}));
    return timers.back().get();
  }
  static void timer_free(void* timer, void* opaque) {
    auto& timers = self(opaque).timers_;
    std::erase_if(timers, [timer](const auto& t) { return t.get() == timer; });
  }
  static void timer_mod(void* timer, std::int64_t expire_ms, void*) {
    static_cast<UserNetBackend::Timer*>(timer)->expire_ms = expire_ms;
  }
  static void register_poll_fd(int, void*) {}
  static void unregister_poll_fd(int, void*) {}
  static void notify(void* opaque) { signal_fd(self(opaque).wake_.get()); }

  static int add_poll(int fd, int events, void* opaque) {
    auto& fds = *static_cast<std::vector<pollfd>*>(opaque);
    short ev = 0;
    if (events & SLIRP_POLL_IN) ev |= POLLIN;
    if (events & SLIRP_POLL_OUT) ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI) ev |= POLLPRI;
    fds.push_back({fd, ev, 0});
    return static_cast<int>(fds.size() - 1);
  }
  static int get_revents(int idx, void* opaque) {
    auto& fds = *static_cast<std::vector<pollfd>*>(opaque);
    if (idx < 0 || static_cast<std::size_t>(idx) >= fds.size()) return 0;
    const short r = fds[static_cast<std::size_t>(idx)].revents;
    int out = 0;
    if (r & POLLIN) out |= SLIRP_POLL_IN;
    if (r & POLLOUT) out |= SLIRP_POLL_OUT;
    if (r & POLLPRI) out |= SLIRP_POLL_PRI;
    if (r & POLLERR) out |= SLIRP_POLL_ERR;
    if (r & POLLHUP) out |= SLIRP_POLL_HUP;
    return out;
  }
};

namespace {
const SlirpCb kCallbacks = {
    .send_packet = SlirpGlue::send_packet,
    .guest_error = SlirpGlue::guest_error,
    .clock_get_ns = SlirpGlue::clock_get_ns,
    .timer_new = nullptr,
    .timer_free = SlirpGlue::timer_free,
    .timer_mod = SlirpGlue::timer_mod,
    .register_poll_fd = SlirpGlue::register_poll_fd,
    .unregister_poll_fd = SlirpGlue::unregister_poll_fd,
    .notify = SlirpGlue::notify,
    .init_completed = nullptr,
    .timer_new_opaque = SlirpGlue::timer_new_opaque,
};
}  // namespace

Result<std::unique_ptr<UserNetBackend>> UserNetBackend::create(const std::vector<HostForward>& forwards) {
  SlirpConfig cfg{};
  cfg.version = 4;
  cfg.restricted = 0;
  cfg.in_enabled = true;
  ::inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
  ::inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
  ::inet_pton(AF_INET, kHostAddr, &cfg.vhost);
  ::inet_pton(AF_INET, kGuestAddr, &cfg.vdhcp_start);
  ::inet_pton(AF_INET, kDnsAddr, &cfg.vnameserver);
  cfg.in6_enabled = false;
  // The largest frames slirp takes and sends (its own limit): a guest that keeps the usual 1500
  // sees no difference, one that raises its MTU moves data in far fewer frames (interrupts and
  // stack passes), which is what a guest whose kernel code is emulated needs most.
  cfg.if_mtu = kMtu;
  cfg.if_mru = kMtu;
  KILN_ASSIGN(auto b, start(cfg));
  in_addr guest{};
  ::inet_pton(AF_INET, kGuestAddr, &guest);
  for (const HostForward& f : forwards) {
    errno = 0;
    if (::slirp_add_hostfwd(b->slirp_, f.udp ? 1 : 0, in_addr{f.host_addr}, f.host_port, guest, f.guest_port) < 0) {
      const int err = errno;
      return plain_error("hostfwd {}: cannot listen on host port {}{}: pick a free port", format_hostfwd(f),
                         f.host_port, err == 0 ? std::string(" (in use?)") : fmt::format(" ({})", std::strerror(err)));
    }
  }
  b->run_thread();
  return b;
}

Result<std::unique_ptr<UserNetBackend>> UserNetBackend::create_service(std::uint32_t service_addr, std::uint16_t port,
                                                                       const std::string& unix_path) {
  // slirp's own addresses (its host, DNS and DHCP) must be in its network and must not be the
  // service's: the service's /24, with the first of .1, .2, .3, .4 that are not the service.
  const std::uint32_t h = ntohl(service_addr);
  const std::uint32_t net = h & 0xffffff00u;
  std::uint32_t own[3] = {};
  for (std::uint32_t i = 1, k = 0; k < 3; ++i)
    if (net + i != h) own[k++] = net + i;
  SlirpConfig cfg{};
  cfg.version = 4;
  cfg.restricted = 1;  // nothing leaves for the host's network: only the forward below answers
  cfg.in_enabled = true;
  cfg.vnetwork.s_addr = htonl(net);
  cfg.vnetmask.s_addr = htonl(0xffffff00u);
  cfg.vhost.s_addr = htonl(own[0]);
  cfg.vnameserver.s_addr = htonl(own[1]);
  cfg.vdhcp_start.s_addr = htonl(own[2]);
  cfg.in6_enabled = false;
  cfg.disable_host_loopback = true;
  cfg.disable_dns = true;
  cfg.if_mtu = 1500;
  cfg.if_mru = 1500;
  KILN_ASSIGN(auto b, start(cfg));
  b->service_addr_ = service_addr;
  b->own_addr_ = cfg.vhost.s_addr;
  in_addr addr{service_addr};
  if (::slirp_add_unix(b->slirp_, unix_path.c_str(), &addr, port) < 0)
    return plain_error("metadata service: libslirp would not forward {}:{} to {}", format_ipv4(service_addr), port,
                       unix_path);
  b->run_thread();
  return b;
}

Result<std::unique_ptr<UserNetBackend>> UserNetBackend::start(const SlirpConfig& cfg) {
  std::unique_ptr<UserNetBackend> b(new UserNetBackend());
  b->wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  b->rx_ready_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!b->wake_ || !b->rx_ready_) return errno_error("user-mode networking: eventfd");
  b->slirp_ = ::slirp_new(&cfg, &kCallbacks, b.get());
  if (b->slirp_ == nullptr) return plain_error("user-mode networking: libslirp would not start");
  return b;
}

void UserNetBackend::run_thread() {
  thread_ = std::thread([this] { run(); });
}

UserNetBackend::~UserNetBackend() {
  stop_.store(true);
  if (wake_) signal_fd(wake_.get());
  if (thread_.joinable()) thread_.join();
  if (slirp_ != nullptr) ::slirp_cleanup(slirp_);
}

void UserNetBackend::from_slirp(const void* buf, std::size_t len) {
  std::lock_guard lock(mu_);
  if (to_guest_.size() >= kQueueFrames || to_guest_bytes_ + len > kQueueBytes || len > kMaxFrame) {
    counters_.to_guest_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const auto* p = static_cast<const std::byte*>(buf);
  const bool was_empty = to_guest_.empty();
  to_guest_.emplace_back(p, p + len);
  to_guest_bytes_ += len;
  queued_.store(to_guest_.size(), std::memory_order_release);
  // Only the first frame wakes the device: it takes frames until receive() finds none (which, under
  // this lock, resets the eventfd), so a later one is either seen there or finds the queue empty.
  if (was_empty) signal_fd(rx_ready_.get());
}

Result<bool> UserNetBackend::send(const NetHeader&, std::span<const std::byte> frame) {
  std::lock_guard lock(mu_);
  if (to_host_.size() >= kQueueFrames || to_host_bytes_ + frame.size() > kQueueBytes) {
    counters_.to_host_dropped.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const bool was_empty = to_host_.empty();
  to_host_.emplace_back(frame.begin(), frame.end());
  to_host_bytes_ += frame.size();
  if (was_empty) signal_fd(wake_.get());
  return true;
}

Result<std::size_t> UserNetBackend::receive(std::span<std::byte> buf, NetHeader& hdr) {
  std::lock_guard lock(mu_);
  if (to_guest_.empty()) {
    std::uint64_t n = 0;
    (void)!::read(rx_ready_.get(), &n, sizeof n);
    return 0;
  }
  std::vector<std::byte> f = std::move(to_guest_.front());
  to_guest_.pop_front();
  to_guest_bytes_ -= f.size();
  queued_.store(to_guest_.size(), std::memory_order_release);
  if (f.size() > buf.size()) return 0;  // cannot happen: from_slirp bounds frames to kMaxFrame
  std::memcpy(buf.data(), f.data(), f.size());
  hdr.flags = kNetHdrDataValid;
  return f.size();
}

void UserNetBackend::run() {
  std::vector<pollfd> fds;
  std::deque<std::vector<std::byte>> batch;
  std::vector<std::pair<SlirpTimerId, void*>> due;
  while (!stop_.load()) {
    {
      std::lock_guard lock(mu_);
      batch.swap(to_host_);
      to_host_bytes_ = 0;
    }
    for (const auto& f : batch) ::slirp_input(slirp_, reinterpret_cast<const std::uint8_t*>(f.data()), static_cast<int>(f.size()));
    batch.clear();
    const std::int64_t now_ms = now_ns() / 1'000'000;
    due.clear();
    for (auto& t : timers_) {
      if (t->expire_ms >= 0 && t->expire_ms <= now_ms) {
        t->expire_ms = -1;
        due.emplace_back(t->id, t->cb_opaque);
      }
    }
    for (const auto& [id, opaque] : due) ::slirp_handle_timer(slirp_, id, opaque);
    std::uint32_t timeout = 1000;
    for (const auto& t : timers_)
      if (t->expire_ms >= 0) timeout = std::min<std::uint32_t>(timeout, static_cast<std::uint32_t>(std::max<std::int64_t>(0, t->expire_ms - now_ms)));
    fds.clear();
    fds.push_back({wake_.get(), POLLIN, 0});
    ::slirp_pollfds_fill(slirp_, &timeout, SlirpGlue::add_poll, &fds);
    const int r = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<std::uint32_t>(timeout, 1000)));
    if (fds[0].revents & POLLIN) {
      std::uint64_t n = 0;
      (void)!::read(wake_.get(), &n, sizeof n);
    }
    ::slirp_pollfds_poll(slirp_, r < 0 ? 1 : 0, SlirpGlue::get_revents, &fds);
  }
}

}  // namespace kiln::virtio
