#pragma once
// A small epoll event loop: the VMM thread runs it; other threads add work through wake()/stop().
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "base/error.h"
#include "base/unique_fd.h"

namespace kiln {

class EventLoop {
 public:
  using Handler = std::function<void(std::uint32_t events)>;

  static Result<std::unique_ptr<EventLoop>> create();
  EventLoop(EventLoop&&) = delete;
  EventLoop(const EventLoop&) = delete;

  // Watch fd for `events` (EPOLLIN ...); the handler runs on the loop's thread.
  Result<void> add(int fd, std::uint32_t events, Handler handler);
  Result<void> remove(int fd);
  // Runs until stop(); returns an error only if epoll itself fails.
  Result<void> run();
  // Thread-safe: makes run() return after the current handler.
  void stop();

  EventLoop(UniqueFd epoll, UniqueFd wake) : epoll_(std::move(epoll)), wake_(std::move(wake)) {}

 private:
  UniqueFd epoll_;
  UniqueFd wake_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::map<int, std::shared_ptr<Handler>> handlers_;
};

}  // namespace kiln
