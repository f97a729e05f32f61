#pragma once
// A small epoll event loop: the VMM thread runs it. Other threads hand it work with post() (run on
// the loop's thread, in order) and stop(); timers are timerfds the loop watches.
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

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
  // Thread-safe: runs `fn` on the loop's thread, after what was posted before it. Work posted after
  // stop() is dropped (false), and so is work still queued when the loop stops.
  bool post(std::function<void()> fn);
  // True on the thread inside run().
  [[nodiscard]] bool in_loop_thread() const { return running_on_.load() == std::this_thread::get_id(); }

  // A timer: `fn` runs on the loop's thread after `after`, then every `period` if it is non-zero.
  // The id cancels it (from the loop's thread or any other).
  using TimerId = int;
  Result<TimerId> add_timer(std::chrono::nanoseconds after, std::chrono::nanoseconds period, std::function<void()> fn);
  Result<void> cancel_timer(TimerId id);

  EventLoop(UniqueFd epoll, UniqueFd wake) : epoll_(std::move(epoll)), wake_(std::move(wake)) {}

 private:
  void run_posted();
  UniqueFd epoll_;
  UniqueFd wake_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::thread::id> running_on_{};
  std::mutex mu_;
  std::map<int, std::shared_ptr<Handler>> handlers_;
  std::deque<std::function<void()>> posted_;  // under mu_
  std::map<TimerId, UniqueFd> timers_;         // under mu_; the id is the timerfd's number
};

}  // namespace kiln
