#pragma once
// Host-side sockets for the network and vsock tests: a listening TCP socket, a port that was free
// a moment ago (for a forward kiln binds itself), Unix stream sockets, and a network namespace
// with a tap in it.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::test {

// Listens on `addr` (IPv4, 127.0.0.1 by default) at a port the kernel picks; closed when destroyed.
class TcpListener {
 public:
  explicit TcpListener(const char* addr = "127.0.0.1");
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // Stops accept() in another thread (it then fails).
  void shutdown();

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A TCP port on 127.0.0.1 free when checked, below the kernel's ephemeral range (so no connect() or
// bind to port 0 elsewhere takes it meanwhile), for a forward kiln is to listen on.
std::uint16_t free_port();

// An fd closed when it goes.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    return *this;
  }
  ~Fd() { reset(); }
  void reset();
  [[nodiscard]] int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_;
};

// A Unix stream socket at `path`, listening, or connected to it; with `timeout_s` on each read
// and write (of it, and of the connections accept_from gives). Invalid if that failed.
Fd unix_listen(const std::string& path, int timeout_s = 20);
Fd unix_connect(const std::string& path, int timeout_s = 20);
Fd accept_from(const Fd& listener, int timeout_s = 20);
// A TCP connection to `addr`:`port` (IPv4), with `timeout_s` on each read and write.
Fd tcp_connect(const char* addr, std::uint16_t port, int timeout_s = 20);
// Reads until `n` bytes came (or through the first newline, with `line`), EOF or the timeout.
std::string read_from(const Fd& fd, std::size_t n, bool line = false);
// Writes all of `data`; false if the peer went away or the timeout passed.
bool write_all(const Fd& fd, std::string_view data);

// A network namespace the test makes (root and iproute2), its loopback up, with a tap `tap`
// holding `cidr` (e.g. 192.168.150.1/24) and up; removed, tap and all, when destroyed. ok() is
// false, with why(), where it cannot be made.
class TapNamespace {
 public:
  TapNamespace(std::string tap, const std::string& cidr, int mtu = 1500);
  ~TapNamespace();
  TapNamespace(const TapNamespace&) = delete;
  TapNamespace& operator=(const TapNamespace&) = delete;
  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] const std::string& why() const { return why_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::string& tap() const { return tap_; }
  // A command line run inside it: `args` after `ip netns exec NAME`.
  [[nodiscard]] std::vector<std::string> exec(std::vector<std::string> args) const;
  // The same for a shell command.
  [[nodiscard]] std::string shell(const std::string& command) const;
  // Runs `fn` on a thread inside the namespace and waits for it: sockets it makes live there.
  void run_inside(const std::function<void()>& fn) const;
  // The tap's counter from /sys/class/net/TAP/statistics (rx_packets, tx_bytes, ...).
  [[nodiscard]] std::uint64_t counter(const std::string& which) const;

 private:
  std::string ip_, name_, tap_, why_;
  bool ok_ = false;
};

}  // namespace kiln::test
