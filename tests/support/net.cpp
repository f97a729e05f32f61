#include "support/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <filesystem>
#include <thread>

#include "support/guests.h"

namespace kiln::test {

TcpListener::TcpListener(const char* addr) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (fd_ < 0 || ::inet_pton(AF_INET, addr, &a.sin_addr) != 1 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0) return;
  socklen_t len = sizeof a;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) port_ = ntohs(a.sin_port);
}

TcpListener::~TcpListener() {
  if (fd_ >= 0) ::close(fd_);
}

void TcpListener::shutdown() { ::shutdown(fd_, SHUT_RDWR); }

std::uint16_t free_port() {
  // Below the range the kernel hands out itself (to every connect() and bind to port 0, the other
  // tests' and kiln's included), so that nothing takes the port between this check and its use
  // unless it asks for that very port; chosen at random, and free when checked.
  int first_ephemeral = 32768;
  if (std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(f, "%d", &first_ephemeral) != 1) first_ephemeral = 32768;
    std::fclose(f);
  }
  if (first_ephemeral > 12000) {
    thread_local std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
    std::uniform_int_distribution<int> pick(10000, first_ephemeral - 1);
    for (int i = 0; i < 100; ++i) {
      const auto port = static_cast<std::uint16_t>(pick(rng));
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      const bool free = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      if (fd >= 0) ::close(fd);
      if (free) return port;
    }
  }
  return TcpListener().port();
}

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

Fd tcp_connect(const char* addr, std::uint16_t port, int timeout_s) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (!fd || ::inet_pton(AF_INET, addr, &a.sin_addr) != 1) return Fd();
  set_timeouts(fd.get(), timeout_s);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) return Fd();
  return fd;
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

TapNamespace::TapNamespace(std::string tap, const std::string& cidr, int mtu)
    : ip_(std::filesystem::exists("/usr/sbin/ip") ? "/usr/sbin/ip" : "/sbin/ip"),
      name_("kiln-test-" + std::to_string(::getpid()) + "-" + tap),
      tap_(std::move(tap)) {
  if (::geteuid() != 0 || !std::filesystem::exists(ip_)) {
    why_ = "needs root and iproute2 for a network namespace";
    return;
  }
  int status = 0;
  const std::string in = ip_ + " -n " + name_ + " ";
  why_ = run_command(ip_ + " netns add " + name_ + " && " + in + "link set lo up && " + in + "tuntap add " + tap_ +
                         " mode tap && " + in + "link set " + tap_ + " mtu " + std::to_string(mtu) + " && " + in +
                         "addr add " + cidr + " dev " + tap_ + " && " + in + "link set " + tap_ + " up 2>&1",
                     status);
  ok_ = status == 0;
  if (!ok_) why_ = "cannot make a network namespace with a tap here: " + why_;
}

TapNamespace::~TapNamespace() {
  if (ip_.empty() || !std::filesystem::exists("/run/netns/" + name_)) return;
  int status = 0;
  run_command(ip_ + " netns del " + name_ + " 2>/dev/null", status);
}

std::vector<std::string> TapNamespace::exec(std::vector<std::string> args) const {
  args.insert(args.begin(), {ip_, "netns", "exec", name_});
  return args;
}

std::string TapNamespace::shell(const std::string& command) const {
  return ip_ + " netns exec " + name_ + " sh -c '" + command + "'";
}

void TapNamespace::run_inside(const std::function<void()>& fn) const {
  std::thread t([&] {
    // setns(2) moves only this thread; the sockets fn makes belong to the namespace for good.
    const int fd = ::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "cannot enter network namespace " << name_ << ": " << std::strerror(errno);
      if (fd >= 0) ::close(fd);
      return;
    }
    ::close(fd);
    fn();
  });
  t.join();
}

std::uint64_t TapNamespace::counter(const std::string& which) const {
  int status = 0;
  const std::string out =
      run_command(ip_ + " netns exec " + name_ + " cat /sys/class/net/" + tap_ + "/statistics/" + which, status);
  return status == 0 ? std::stoull(out) : 0;
}

}  // namespace kiln::test
