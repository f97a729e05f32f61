#pragma once
// Host-side sockets for the network and vsock tests: a listening TCP socket on 127.0.0.1, a port
// that was free a moment ago (for a forward kiln binds itself), and Unix stream sockets.
#include <cstdint>
#include <string>
#include <utility>

namespace kiln::test {

// Listens on 127.0.0.1 at a port the kernel picks; closed when destroyed.
class LoopbackListener {
 public:
  LoopbackListener();
  ~LoopbackListener();
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // Stops accept() in another thread (it then fails).
  void shutdown();

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

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
// Reads until `n` bytes came (or through the first newline, with `line`), EOF or the timeout.
std::string read_from(const Fd& fd, std::size_t n, bool line = false);
// Writes all of `data`; false if the peer went away or the timeout passed.
bool write_all(const Fd& fd, std::string_view data);

}  // namespace kiln::test
