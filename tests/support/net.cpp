#include "support/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace kiln::test {

LoopbackListener::LoopbackListener() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0) return;
  socklen_t len = sizeof a;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) port_ = ntohs(a.sin_port);
}

LoopbackListener::~LoopbackListener() {
  if (fd_ >= 0) ::close(fd_);
}

void LoopbackListener::shutdown() { ::shutdown(fd_, SHUT_RDWR); }

std::uint16_t free_port() { return LoopbackListener().port(); }

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

namespace {

void set_timeouts(int fd, int timeout_s) {
  timeval tv{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Fd unix_socket(const std::string& path, bool listen, int timeout_s) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (!fd || path.size() >= sizeof a.sun_path) return Fd();
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  set_timeouts(fd.get(), timeout_s);
  const auto* sa = reinterpret_cast<const sockaddr*>(&a);
  if (listen ? (::bind(fd.get(), sa, sizeof a) != 0 || ::listen(fd.get(), 8) != 0) : ::connect(fd.get(), sa, sizeof a) != 0)
    return Fd();
  return fd;
}

}  // namespace

Fd unix_listen(const std::string& path, int timeout_s) { return unix_socket(path, true, timeout_s); }
Fd unix_connect(const std::string& path, int timeout_s) { return unix_socket(path, false, timeout_s); }

Fd accept_from(const Fd& listener, int timeout_s) {
  Fd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (c) set_timeouts(c.get(), timeout_s);
  return c;
}

std::string read_from(const Fd& fd, std::size_t n, bool line) {
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    // A line is read a byte at a time, so that nothing after it is taken.
    const std::size_t want = line ? 1 : std::min(sizeof buf, n - out.size());
    const ssize_t got = ::recv(fd.get(), buf, want, 0);
    if (got <= 0) break;
    out.append(buf, static_cast<std::size_t>(got));
    if (line && out.back() == '\n') break;
  }
  return out;
}

bool write_all(const Fd& fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace kiln::test
