#include "virtio/net/user_net.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include <algorithm>
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

std::uint32_t epoll_events(short poll_events) {
  std::uint32_t ev = 0;
  if (poll_events & POLLIN) ev |= EPOLLIN;
  if (poll_events & POLLOUT) ev |= EPOLLOUT;
  if (poll_events & POLLPRI) ev |= EPOLLPRI;
  return ev;
}

}  // namespace

struct UserNetBackend::Timer {
  SlirpTimerId id;
  void* cb_opaque;
  std::int64_t expire_ms = -1;
};

// libslirp's callbacks, all inside a call into slirp (create(), send(), service()).
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
  // A new socket may reuse a closed one's number: whatever was known of that number is forgotten
  // (epoll forgot the closed one itself), so watch() adds it afresh.
  static void register_poll_fd(int fd, void* opaque) { self(opaque).watched_.erase(fd); }
  static void unregister_poll_fd(int fd, void* opaque) { self(opaque).forget_fd(fd); }
  // slirp may take more now: watch() after every call into slirp sees that already.
  static void notify(void*) {}

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
  KILN_CHECK(b->watch());
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
  KILN_CHECK(b->watch());
  return b;
}

Result<std::unique_ptr<UserNetBackend>> UserNetBackend::start(const SlirpConfig& cfg) {
  std::unique_ptr<UserNetBackend> b(new UserNetBackend());
  b->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  b->timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!b->epoll_ || !b->timer_) return errno_error("user-mode networking: epoll_create1/timerfd_create");
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = b->timer_.get();
  if (::epoll_ctl(b->epoll_.get(), EPOLL_CTL_ADD, b->timer_.get(), &ev) != 0)
    return errno_error("user-mode networking: epoll_ctl");
  b->slirp_ = ::slirp_new(&cfg, &kCallbacks, b.get());
  if (b->slirp_ == nullptr) return plain_error("user-mode networking: libslirp would not start");
  return b;
}

UserNetBackend::~UserNetBackend() {
  if (slirp_ != nullptr) ::slirp_cleanup(slirp_);
}

void UserNetBackend::forget_fd(int fd) {
  if (watched_.erase(fd) != 0) (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

void UserNetBackend::from_slirp(const void* buf, std::size_t len) {
  if (to_guest_.size() >= kQueueFrames || to_guest_bytes_ + len > kQueueBytes || len > kMaxFrame) {
    counters_.to_guest_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const auto* p = static_cast<const std::byte*>(buf);
  to_guest_.emplace_back(p, p + len);
  to_guest_bytes_ += len;
}

Result<bool> UserNetBackend::send(const NetHeader&, std::span<const std::byte> frame) {
  // slirp checks what it is given (a malformed frame is its guest_error); its answers, if any,
  // join to_guest_ now. watch() follows in service(), which the device calls after the batch.
  ::slirp_input(slirp_, reinterpret_cast<const std::uint8_t*>(frame.data()), static_cast<int>(frame.size()));
  return true;
}

Result<std::size_t> UserNetBackend::receive(std::span<std::byte> buf) {
  if (to_guest_.empty()) return 0;
  std::vector<std::byte> f = std::move(to_guest_.front());
  to_guest_.pop_front();
  to_guest_bytes_ -= f.size();
  if (sizeof(NetHeader) + f.size() > buf.size()) return 0;  // cannot happen: from_slirp bounds frames to kMaxFrame
  NetHeader hdr;
  hdr.flags = kNetHdrDataValid;
  std::memcpy(buf.data(), &hdr, sizeof hdr);
  std::memcpy(buf.data() + sizeof hdr, f.data(), f.size());
  return f.size();
}

Result<void> UserNetBackend::service() {
  // The notifications so far are taken off the set first (it is edge-triggered): whatever happens
  // from here on is either seen by the poll() below or wakes the device again.
  epoll_event evs[16];
  while (::epoll_wait(epoll_.get(), evs, 16, 0) == 16) {
  }
  if (armed_ns_ >= 0 && armed_ns_ <= now_ns()) {
    std::uint64_t ticks = 0;
    (void)!::read(timer_.get(), &ticks, sizeof ticks);
    armed_ns_ = -1;
  }
  // slirp's sockets: what it waits for, what of that is ready (without waiting), and its work on
  // it (slirp_pollfds_poll also runs its TCP timers when their tick is due, so it runs at least
  // once); again while its work leaves something ready, a few times at most.
  bool again = true;
  for (int pass = 0; again && pass < kPasses; ++pass) {
    fds_.clear();
    std::uint32_t timeout = 1000;
    ::slirp_pollfds_fill(slirp_, &timeout, SlirpGlue::add_poll, &fds_);
    const int r = fds_.empty() ? 0 : ::poll(fds_.data(), fds_.size(), 0);
    ::slirp_pollfds_poll(slirp_, r < 0 ? 1 : 0, SlirpGlue::get_revents, &fds_);
    again = r > 0;
  }
  const std::int64_t now_ms = now_ns() / 1'000'000;
  std::vector<std::pair<SlirpTimerId, void*>> due;
  for (auto& t : timers_) {
    if (t->expire_ms >= 0 && t->expire_ms <= now_ms) {
      t->expire_ms = -1;
      due.emplace_back(t->id, t->cb_opaque);
    }
  }
  for (const auto& [id, opaque] : due) ::slirp_handle_timer(slirp_, id, opaque);
  // Still busy after kPasses: the rest on the loop's next turn (the timer, due now), so that other
  // devices get their turn.
  return watch(again);
}

Result<void> UserNetBackend::watch(bool now_again) {
  fds_.clear();
  std::uint32_t timeout = 1000;  // at least once a second, whatever slirp says
  ::slirp_pollfds_fill(slirp_, &timeout, SlirpGlue::add_poll, &fds_);
  // The sockets, edge-triggered, with only what changed told to epoll (which checks readiness when
  // told: a change that asks for what is already there wakes the device). A socket slirp no longer
  // waits on (one it closed unregisters itself) is dropped from the set.
  ++pass_;
  for (const pollfd& p : fds_) {
    const std::uint32_t want = epoll_events(p.events) | EPOLLET;
    auto it = watched_.find(p.fd);
    if (it != watched_.end() && it->second.events == want) {
      it->second.pass = pass_;
      continue;
    }
    epoll_event ev{};
    ev.events = want;
    ev.data.fd = p.fd;
    int op = it == watched_.end() ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (::epoll_ctl(epoll_.get(), op, p.fd, &ev) != 0) {
      // Added under this number by a socket since closed (epoll forgot it), or the other way round.
      op = (errno == ENOENT) ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
      if (::epoll_ctl(epoll_.get(), op, p.fd, &ev) != 0)
        return errno_error("user-mode networking: watching socket {}", p.fd);
    }
    watched_[p.fd] = Watched{want, pass_};
  }
  for (auto it = watched_.begin(); it != watched_.end();) {
    if (it->second.pass != pass_) {
      (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->first, nullptr);
      it = watched_.erase(it);
    } else {
      ++it;
    }
  }
  // The next deadline: slirp's own timers and its TCP timers' tick (the timeout it gave).
  const std::int64_t now = now_ns();
  std::int64_t deadline = now + std::int64_t{timeout} * 1'000'000;
  for (const auto& t : timers_)
    if (t->expire_ms >= 0) deadline = std::min(deadline, t->expire_ms * 1'000'000);
  deadline = now_again ? now : std::max(deadline, now);
  // Re-armed only when it must fire sooner: one that fires early costs a call that finds nothing.
  if (armed_ns_ < 0 || deadline < armed_ns_) {
    itimerspec its{};
    its.it_value.tv_sec = deadline / 1'000'000'000;
    its.it_value.tv_nsec = deadline % 1'000'000'000;
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;  // 0 would disarm it
    if (::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &its, nullptr) != 0)
      return errno_error("user-mode networking: timerfd_settime");
    armed_ns_ = deadline;
  }
  return {};
}

}  // namespace kiln::virtio
