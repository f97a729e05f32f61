#pragma once
// Host-side sockets for the network tests: a listening TCP socket on 127.0.0.1, and a port that
// was free a moment ago (for a forward kiln binds itself).
#include <cstdint>

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

}  // namespace kiln::test
