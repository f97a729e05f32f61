#include "virtio/vsock/vsock.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include "base/log.h"
#include "base/unix_listener.h"

namespace kiln::virtio {

struct VsockDevice::Conn {
  Key key;
  UniqueFd fd;
  enum class State { kConnecting, kEstablished } state = State::kEstablished;
  std::chrono::steady_clock::time_point deadline{};  // kConnecting: the guest's answer by then
  VsockCredit credit;                                 // what the guest lets kiln send it
  std::uint32_t fwd_cnt = 0, fwd_cnt_sent = 0;        // bytes the host socket took; told the guest
  std::string out;                                    // for the host socket, from out_at on
  std::size_t out_at = 0;
  std::size_t preamble = 0;  // bytes at the front of `out` that are kiln's ("OK <port>\n"), not the guest's
  std::uint8_t control = 0;      // Control bits: packets owed to the guest
  std::uint32_t peer_shut = 0;   // the guest's SHUTDOWN flags so far
  bool host_eof = false;         // the host socket said EOF (SHUTDOWN SEND owed or sent)
  bool host_write_shut = false;  // shutdown(SHUT_WR) done
  bool in_control_list = false, in_ready_list = false;
  bool closing = false;  // an RST is owed: the connection goes once it is sent
  std::uint32_t interest = 0;

  [[nodiscard]] std::size_t pending() const { return out.size() - out_at; }
  // Reading the host socket makes sense: the guest can be sent what comes.
  [[nodiscard]] bool readable() const {
    return state == State::kEstablished && !closing && !host_eof && !(peer_shut & vsock::kShutdownRcv);
  }
};

namespace {

constexpr std::uint64_t kKickTag = ~0ull, kListenerTag = ~0ull - 1;
constexpr std::uint64_t kPendingBit = 1ull << 40;

}  // namespace

Result<std::unique_ptr<VsockDevice>> VsockDevice::create(VsockConfig config) {
  if (config.guest_cid < 3 || config.guest_cid > 0xffffffffull)
    return plain_error("vsock guest_cid {}: a guest's CID is 3 to 4294967295 (0-2 are reserved)", config.guest_cid);
  std::unique_ptr<VsockDevice> d(new VsockDevice(std::move(config)));
  d->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  d->kick_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!d->epoll_ || !d->kick_) return errno_error("vsock: epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = kKickTag;
  if (::epoll_ctl(d->epoll_.get(), EPOLL_CTL_ADD, d->kick_.get(), &ev) != 0) return errno_error("vsock: epoll_ctl");
  KILN_ASSIGN(d->listener_, listen_unix(d->config_.uds_path, "vsock uds_path"));
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerTag;
  if (::epoll_ctl(d->epoll_.get(), EPOLL_CTL_ADD, d->listener_.get(), &ev) != 0) {
    ::unlink(d->config_.uds_path.c_str());
    return errno_error("vsock: epoll_ctl");
  }
  d->rx_buf_.resize(sizeof(VsockHeader) + kMaxPayload);
  d->tx_buf_.resize(sizeof(VsockHeader) + kMaxPayload);
  return d;
}

VsockDevice::VsockDevice(VsockConfig config) : config_(std::move(config)) {}

VsockDevice::~VsockDevice() {
  if (listener_) ::unlink(config_.uds_path.c_str());
}

std::uint64_t VsockDevice::features() const {
  return kFeatureVersion1 | kFeatureRingEventIdx | kFeatureRingIndirectDesc;
}

void VsockDevice::read_config(std::uint64_t offset, std::span<std::byte> data) const {
  std::array<std::byte, 8> cfg{};
  std::memcpy(cfg.data(), &config_.guest_cid, 8);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = offset + i < cfg.size() ? cfg[offset + i] : std::byte{0};
}

void VsockDevice::kick() {
  const std::uint64_t one = 1;
  (void)!::write(kick_.get(), &one, sizeof one);
}

Result<void> VsockDevice::activate(const Activation& a) {
  act_ = a;
  kick();
  return {};
}

void VsockDevice::reset() {
  act_ = {};
  rx_chain_.reset();
  tx_deferred_ = false;
  drop_all();  // the guest's sockets are gone with its driver: the host sides are closed
}

void VsockDevice::drop_all() {
  while (!conns_.empty()) drop(conns_.begin()->first);
  control_list_.clear();
  ready_list_.clear();
  orphan_rsts_.clear();
}

VsockDevice::Conn* VsockDevice::find(const Key& k) {
  auto it = conns_.find(k);
  return it == conns_.end() ? nullptr : it->second.get();
}

void VsockDevice::drop(const Key& k) {
  auto it = conns_.find(k);
  if (it == conns_.end()) return;
  if (it->second->fd) {
    (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second->fd.get(), nullptr);
    by_fd_.erase(it->second->fd.get());
  }
  conns_.erase(it);  // the lists hold keys: a stale one is skipped where it is met
}

std::uint32_t VsockDevice::alloc_port() {
  for (;;) {
    const std::uint32_t p = next_port_++;
    if (next_port_ == 0) next_port_ = 1u << 30;
    bool used = false;
    for (const auto& [k, c] : conns_) used = used || k.first == p;
    if (!used) return p;
  }
}

void VsockDevice::set_control(Conn& c, std::uint8_t what) {
  c.control |= what;
  if (!c.in_control_list) {
    c.in_control_list = true;
    control_list_.push_back(c.key);
  }
}

void VsockDevice::reset_conn(Conn& c) {
  counters_.resets.fetch_add(1, std::memory_order_relaxed);
  c.closing = true;
  c.control = 0;
  set_control(c, kCtlRst);
  close_host(c);
}

void VsockDevice::close_host(Conn& c) {
  // Nothing more is read or written there: the host side sees EOF (or a reset) now, and epoll
  // stops reporting the socket while the RST waits for a receive buffer.
  if (c.fd) {
    (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c.fd.get(), nullptr);
    by_fd_.erase(c.fd.get());
    c.fd.reset();
  }
  c.out.clear();
  c.out_at = c.preamble = 0;
  c.interest = 0;
}

void VsockDevice::rearm(Conn& c) {
  if (!c.fd) return;
  std::uint32_t want = 0;
  if (c.readable() && !c.in_ready_list) want |= EPOLLIN;
  if (c.pending() > 0 && !c.closing) want |= EPOLLOUT;
  if (want == c.interest) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = static_cast<std::uint64_t>(c.fd.get());
  (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
  c.interest = want;
}

void VsockDevice::make_ready(Conn& c) {
  if (!c.in_ready_list && c.readable()) {
    c.in_ready_list = true;
    ready_list_.push_back(c.key);
  }
  rearm(c);
}

void VsockDevice::flush(Conn& c) {
  while (c.pending() > 0) {
    const ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_at, c.pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      reset_conn(c);  // the host side is gone: nobody will take the rest
      return;
    }
    c.out_at += static_cast<std::size_t>(n);
    const std::size_t own = std::min<std::size_t>(c.preamble, static_cast<std::size_t>(n));
    c.preamble -= own;
    c.fwd_cnt += static_cast<std::uint32_t>(static_cast<std::size_t>(n) - own);
  }
  if (c.pending() == 0) {
    c.out.clear();
    c.out_at = 0;
    if ((c.peer_shut & vsock::kShutdownSend) && !c.host_write_shut) {
      (void)::shutdown(c.fd.get(), SHUT_WR);
      c.host_write_shut = true;
    }
  } else if (c.out_at > kBufAlloc) {
    c.out.erase(0, c.out_at);
    c.out_at = 0;
  }
  // The guest hears of the room made once a quarter of its window is free again.
  if (c.fwd_cnt - c.fwd_cnt_sent >= kBufAlloc / 4) set_control(c, kCtlCredit);
  rearm(c);
}

VsockHeader VsockDevice::header_for(const Conn& c, std::uint16_t op) const {
  VsockHeader h;
  h.src_cid = vsock::kHostCid;
  h.dst_cid = config_.guest_cid;
  h.src_port = c.key.first;
  h.dst_port = c.key.second;
  h.type = vsock::kTypeStream;
  h.op = op;
  h.buf_alloc = kBufAlloc;
  h.fwd_cnt = c.fwd_cnt;
  return h;
}

// --- guest -> host -------------------------------------------------------------------------

Result<void> VsockDevice::queue_notify(std::uint16_t index) {
  expire_connecting();
  if (index == kTxQueue) KILN_CHECK(process_tx());
  // New receive buffers (or packets owed since the TX pass): the guest can be sent more.
  if (index == kEventQueue) return {};  // kiln sends no events (no snapshots yet)
  return process_rx();
}

Result<void> VsockDevice::process_tx() {
  if (act_.mem == nullptr) return {};
  Queue& q = act_.queues[kTxQueue];
  const GuestMemory& mem = *act_.mem;
  KILN_ASSIGN(const bool more, drain(q, mem, kBudget, [&](const DescriptorChain& chain) -> Result<void> {
    const std::uint32_t len = chain.readable_len;
    if (len < sizeof(VsockHeader) || len > tx_buf_.size()) {
      counters_.tx_malformed.fetch_add(1, std::memory_order_relaxed);
      return q.add_used(mem, chain.head, 0);
    }
    KILN_CHECK(read_readable(mem, chain, tx_buf_));
    KILN_CHECK(q.add_used(mem, chain.head, 0));
    VsockHeader h;
    std::memcpy(&h, tx_buf_.data(), sizeof h);
    if (h.len > len - sizeof h) {
      counters_.tx_malformed.fetch_add(1, std::memory_order_relaxed);
      return {};
    }
    counters_.tx_packets.fetch_add(1, std::memory_order_relaxed);
    handle_packet(h, std::span<const std::byte>(tx_buf_).subspan(sizeof h, h.len));
    return {};
  }));
  if (more) {
    tx_deferred_ = true;
    kick();
  }
  KILN_ASSIGN(const bool wanted, q.needs_interrupt(mem));
  if (wanted) act_.interrupt->used_buffers(kTxQueue);
  return {};
}

void VsockDevice::handle_packet(const VsockHeader& h, std::span<const std::byte> payload) {
  if (h.src_cid != config_.guest_cid || h.dst_cid != vsock::kHostCid) {
    counters_.tx_malformed.fetch_add(1, std::memory_order_relaxed);  // not kiln's to answer
    return;
  }
  const Key key{h.dst_port, h.src_port};
  Conn* c = find(key);
  if (c == nullptr) {
    if (h.op == vsock::kRequest && h.type == vsock::kTypeStream) return guest_connect(h);
    if (h.op != vsock::kRst && orphan_rsts_.size() < 256) orphan_rsts_.push_back(key);
    return;
  }
  if (h.op == vsock::kRst) return drop(key);
  if (c->closing) return;  // its RST is on the way
  c->credit.update(h);
  if (h.type != vsock::kTypeStream) return reset_conn(*c);
  switch (h.op) {
    case vsock::kResponse:
      if (c->state != Conn::State::kConnecting) return reset_conn(*c);
      c->state = Conn::State::kEstablished;
      counters_.connections.fetch_add(1, std::memory_order_relaxed);
      c->out = fmt::format("OK {}\n", c->key.first);  // the host program's answer; not data
      c->out_at = 0;
      c->preamble = c->out.size();
      flush(*c);
      make_ready(*c);
      return;
    case vsock::kRw:
      if (c->state != Conn::State::kEstablished || (c->peer_shut & vsock::kShutdownSend)) return reset_conn(*c);
      // Past the credit kiln granted: the guest broke the protocol.
      if (c->pending() - c->preamble + payload.size() > kBufAlloc) return reset_conn(*c);
      counters_.tx_bytes.fetch_add(payload.size(), std::memory_order_relaxed);
      c->out.append(reinterpret_cast<const char*>(payload.data()), payload.size());
      flush(*c);
      return;
    case vsock::kCreditUpdate:
      make_ready(*c);  // maybe more room now
      return;
    case vsock::kCreditRequest:
      set_control(*c, kCtlCredit);
      return;
    case vsock::kShutdown:
      c->peer_shut |= h.flags & (vsock::kShutdownRcv | vsock::kShutdownSend);
      if (c->peer_shut == (vsock::kShutdownRcv | vsock::kShutdownSend)) {
        flush(*c);  // what the host can take now; the guest closed, so an RST ends it
        if (!c->closing) {
          c->closing = true;
          c->control = 0;
          set_control(*c, kCtlRst);
          close_host(*c);
        }
        return;
      }
      flush(*c);  // SEND: the host gets EOF once it has the rest
      rearm(*c);
      return;
    default:  // a second REQUEST, an unknown op
      return reset_conn(*c);
  }
}

void VsockDevice::guest_connect(const VsockHeader& h) {
  const Key key{h.dst_port, h.src_port};
  auto refuse = [&] {
    counters_.refused.fetch_add(1, std::memory_order_relaxed);
    if (orphan_rsts_.size() < 256) orphan_rsts_.push_back(key);
  };
  if (conns_.size() >= kMaxConnections) return refuse();
  const std::string path = config_.uds_path + "_" + std::to_string(h.dst_port);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return refuse();
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  // Non-blocking: a Unix socket connects at once or not at all (EAGAIN: its backlog is full).
  if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) return refuse();
  auto c = std::make_unique<Conn>();
  c->key = key;
  c->credit.update(h);
  const int raw = fd.get();
  c->fd = std::move(fd);
  epoll_event ev{};
  ev.data.u64 = static_cast<std::uint64_t>(raw);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, raw, &ev) != 0) return refuse();
  by_fd_[raw] = key;
  Conn& ref = *c;
  conns_[key] = std::move(c);
  counters_.connections.fetch_add(1, std::memory_order_relaxed);
  set_control(ref, kCtlResponse);
  rearm(ref);
}

// --- host -> guest -------------------------------------------------------------------------

Result<void> VsockDevice::backend_ready() {
  std::uint64_t n = 0;
  (void)!::read(kick_.get(), &n, sizeof n);
  epoll_event evs[64];
  for (int round = 0;; ++round) {
    if (round == 8) {  // more than a fair share: the rest on the loop's next turn
      kick();
      break;
    }
    const int got = ::epoll_wait(epoll_.get(), evs, 64, 0);
    if (got <= 0) break;
    for (int i = 0; i < got; ++i) {
      const std::uint64_t tag = evs[i].data.u64;
      if (tag == kKickTag) continue;
      if (tag == kListenerTag) {
        on_listener();
      } else if (tag & kPendingBit) {
        on_pending_host(static_cast<int>(tag & ~kPendingBit));
      } else if (auto it = by_fd_.find(static_cast<int>(tag)); it != by_fd_.end()) {
        if (Conn* c = find(it->second)) on_conn_event(*c, evs[i].events);
      }
    }
  }
  expire_connecting();
  if (act_.mem == nullptr) return {};
  if (tx_deferred_) {
    tx_deferred_ = false;
    KILN_CHECK(process_tx());
  }
  return process_rx();
}

void VsockDevice::on_listener() {
  for (;;) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;  // EAGAIN, or out of fds: the rest wait in the backlog
    if (pending_hosts_.size() >= kMaxPendingHosts || act_.mem == nullptr) continue;  // closed: no room, or no guest
    const int raw = fd.get();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kPendingBit | static_cast<std::uint64_t>(raw);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, raw, &ev) != 0) continue;
    pending_hosts_[raw] = {std::move(fd), std::string()};
  }
}

void VsockDevice::on_pending_host(int fd) {
  auto it = pending_hosts_.find(fd);
  if (it == pending_hosts_.end()) return;
  std::string& line = it->second.second;
  // A byte at a time: what follows the line is the connection's, read once the guest accepts.
  for (;;) {
    char ch = 0;
    const ssize_t n = ::recv(fd, &ch, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0 || line.size() >= 32) break;  // gone, or not a CONNECT line: closed
    if (ch != '\n') {
      line += ch;
      continue;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::uint32_t port = 0;
    const char* e = line.data() + line.size();
    const char* b = line.size() >= 8 ? line.data() + 8 : e;
    if (!line.starts_with("CONNECT ") || line.size() == 8 || std::from_chars(b, e, port).ptr != e) break;
    if (conns_.size() >= kMaxConnections || act_.mem == nullptr) break;
    auto c = std::make_unique<Conn>();
    c->key = Key{alloc_port(), port};
    c->state = Conn::State::kConnecting;
    c->deadline = std::chrono::steady_clock::now() + kConnectTimeout;
    if (!next_deadline_ || c->deadline < *next_deadline_) next_deadline_ = c->deadline;
    c->fd = std::move(it->second.first);
    pending_hosts_.erase(it);
    epoll_event ev{};
    ev.data.u64 = static_cast<std::uint64_t>(fd);
    (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
    by_fd_[fd] = c->key;
    Conn& ref = *c;
    conns_[c->key] = std::move(c);
    set_control(ref, kCtlRequest);
    return;
  }
  (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  pending_hosts_.erase(it);
}

void VsockDevice::on_conn_event(Conn& c, std::uint32_t events) {
  if (events & EPOLLERR) return reset_conn(c);
  if ((events & EPOLLOUT) && c.pending() > 0) {
    flush(c);
    if (c.closing) return;
  }
  if (events & (EPOLLIN | EPOLLHUP)) {
    if ((events & EPOLLHUP) && !c.readable()) {
      // Both directions of the host socket are done and nothing more will be read from it.
      if (!c.closing) reset_conn(c);
      return;
    }
    make_ready(c);
  }
}

void VsockDevice::expire_connecting() {
  // Called on every notification: a look at the clock, and a walk only once a deadline passed.
  if (!next_deadline_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now <= *next_deadline_) return;
  next_deadline_.reset();
  for (auto& [k, c] : conns_) {
    if (c->state != Conn::State::kConnecting || c->closing) continue;
    if (now > c->deadline) reset_conn(*c);
    else if (!next_deadline_ || c->deadline < *next_deadline_) next_deadline_ = c->deadline;
  }
}

std::size_t VsockDevice::control_packet(Conn& c) {
  std::uint16_t op = 0;
  std::uint32_t flags = 0;
  if (c.control & kCtlRst) {
    op = vsock::kRst;
  } else if (c.control & kCtlRequest) {
    op = vsock::kRequest;
  } else if (c.control & kCtlResponse) {
    op = vsock::kResponse;
  } else if (c.control & kCtlShutdown) {
    op = vsock::kShutdown;
    flags = vsock::kShutdownSend;
  } else if (c.control & kCtlCredit) {
    op = vsock::kCreditUpdate;
  }
  c.control = static_cast<std::uint8_t>(op == vsock::kRst ? 0 : c.control & ~(op == vsock::kRequest    ? kCtlRequest
                                                                                : op == vsock::kResponse ? kCtlResponse
                                                                                : op == vsock::kShutdown ? kCtlShutdown
                                                                                                         : kCtlCredit));
  VsockHeader h = header_for(c, op);
  h.flags = flags;
  c.fwd_cnt_sent = c.fwd_cnt;
  std::memcpy(rx_buf_.data(), &h, sizeof h);
  if (op == vsock::kResponse) make_ready(c);  // established: what the host sends may go now
  return sizeof h;
}

std::size_t VsockDevice::data_packet(Conn& c, std::size_t room) {
  const std::size_t want = std::min<std::size_t>({room, c.credit.available(), kMaxPayload});
  if (want == 0) return 0;
  for (;;) {
    const ssize_t n = ::recv(c.fd.get(), rx_buf_.data() + sizeof(VsockHeader), want, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c.in_ready_list = false;  // drained: epoll says when there is more
      rearm(c);
      return 0;
    }
    if (n < 0) {
      reset_conn(c);
      return 0;
    }
    if (n == 0) {
      // The host shut its side: the guest reads EOF once it has everything before it.
      c.host_eof = true;
      c.in_ready_list = false;
      set_control(c, kCtlShutdown);
      rearm(c);
      return 0;
    }
    VsockHeader h = header_for(c, vsock::kRw);
    h.len = static_cast<std::uint32_t>(n);
    c.fwd_cnt_sent = c.fwd_cnt;
    std::memcpy(rx_buf_.data(), &h, sizeof h);
    c.credit.tx_cnt += h.len;
    counters_.rx_bytes.fetch_add(h.len, std::memory_order_relaxed);
    return sizeof h + h.len;
  }
}

std::size_t VsockDevice::next_rx_packet(std::size_t room) {
  // Twice: reading the host sockets may owe the guest a control packet (a SHUTDOWN at EOF).
  for (int pass = 0; pass < 2; ++pass)
    if (const std::size_t n = next_rx_packet_once(room); n > 0) return n;
  return 0;
}

std::size_t VsockDevice::next_rx_packet_once(std::size_t room) {
  while (!orphan_rsts_.empty()) {
    const Key k = orphan_rsts_.front();
    orphan_rsts_.pop_front();
    if (find(k) != nullptr) continue;  // a connection took that pair since
    VsockHeader h;
    h.src_cid = vsock::kHostCid;
    h.dst_cid = config_.guest_cid;
    h.src_port = k.first;
    h.dst_port = k.second;
    h.type = vsock::kTypeStream;
    h.op = vsock::kRst;
    std::memcpy(rx_buf_.data(), &h, sizeof h);
    return sizeof h;
  }
  while (!control_list_.empty()) {
    const Key k = control_list_.front();
    Conn* c = find(k);
    if (c == nullptr || c->control == 0) {
      control_list_.pop_front();
      if (c != nullptr) c->in_control_list = false;
      continue;
    }
    const std::size_t n = control_packet(*c);
    if (c->control == 0) {
      control_list_.pop_front();
      c->in_control_list = false;
    }
    if (c->closing && (c->control & kCtlRst) == 0) drop(k);  // its RST is the last word
    return n;
  }
  // Data, a packet from each ready connection in turn.
  for (std::size_t tries = ready_list_.size(); tries > 0 && room > sizeof(VsockHeader); --tries) {
    const Key k = ready_list_.front();
    ready_list_.pop_front();
    Conn* c = find(k);
    if (c == nullptr || !c->in_ready_list) continue;
    if (!c->readable()) {
      c->in_ready_list = false;
      rearm(*c);
      continue;
    }
    const std::size_t n = data_packet(*c, room - sizeof(VsockHeader));
    if (c->in_ready_list) ready_list_.push_back(k);  // more may be there (or it waits for credit)
    if (n > 0) return n;
  }
  return 0;
}

Result<void> VsockDevice::process_rx() {
  if (act_.mem == nullptr) return {};
  Queue& q = act_.queues[kRxQueue];
  const GuestMemory& mem = *act_.mem;
  bool used = false;
  for (int done = 0;; ++done) {
    if (done == kBudget) {
      kick();
      break;
    }
    if (!rx_chain_) {
      KILN_ASSIGN(auto chain, q.pop(mem));
      if (!chain) {
        KILN_ASSIGN(const bool more, q.enable_notification(mem));
        if (more) continue;
        break;  // the guest notifies when it adds buffers
      }
      if (chain->writable_len < sizeof(VsockHeader)) {  // cannot hold a packet: given back empty
        KILN_CHECK(q.add_used(mem, chain->head, 0));
        used = true;
        continue;
      }
      rx_chain_ = std::move(*chain);
    }
    const std::size_t n = next_rx_packet(std::min<std::size_t>(rx_chain_->writable_len, rx_buf_.size()));
    if (n == 0) break;
    std::size_t at = 0;
    for (const Buffer& b : rx_chain_->writable) {
      if (at == n) break;
      const std::size_t k = std::min<std::size_t>(b.len, n - at);
      KILN_CHECK(mem.write(b.addr, std::span(rx_buf_).subspan(at, k)));
      at += k;
    }
    KILN_CHECK(q.add_used(mem, rx_chain_->head, static_cast<std::uint32_t>(n)));
    rx_chain_.reset();
    used = true;
    counters_.rx_packets.fetch_add(1, std::memory_order_relaxed);
  }
  if (used) {
    KILN_ASSIGN(const bool wanted, q.needs_interrupt(mem));
    if (wanted) act_.interrupt->used_buffers(kRxQueue);
  }
  return {};
}

}  // namespace kiln::virtio
