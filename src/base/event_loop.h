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

#include <sys/epoll.h>

#include "base/error.h"
#include "base/unique_fd.h"

namespace kiln {

// How long the loop spins looking for events before it sleeps (adaptive polling, as QEMU's
// iothreads do): it grows while events keep arriving within `max` of the last ones and shrinks when
// they do not. A thread that sleeps and is woken pays a wake-up (tens of microseconds on a nested
// host), which is most of a 4 KiB request's time; spinning a few microseconds instead is cheaper
// when the guest answers at once, and is given up when it does not.
class PollWindow {
 public:
  explicit PollWindow(std::chrono::nanoseconds max) : max_(max) {}
  [[nodiscard]] std::chrono::nanoseconds current() const { return current_; }
  [[nodiscard]] std::chrono::nanoseconds max() const { return max_; }
  // After a wait: how long it was in all (spinning and sleeping), and whether spinning found the
  // event (then the window stays as it is).
  void waited(std::chrono::nanoseconds total, bool found_spinning);

  static constexpr std::chrono::nanoseconds kStart{4000};

 private:
  std::chrono::nanoseconds max_;
  std::chrono::nanoseconds current_{0};
};

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
  // Spin up to `max` for events before sleeping, adaptively (PollWindow); 0 (the default): never.
  // Thread-safe; takes effect at the loop's next wait.
  void set_max_poll(std::chrono::nanoseconds max) { max_poll_ns_ = max.count(); }
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
  // Waits for events: spins up to the poll window, then sleeps.
  int wait(epoll_event* events, int max);
  PollWindow poll_{std::chrono::nanoseconds(0)};  // the loop thread's
  std::atomic<std::int64_t> max_poll_ns_{0};
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
