#include "base/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <memory>

namespace kiln {

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep) return errno_error("epoll_create1");
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return errno_error("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake.get();
  if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, wake.get(), &ev) != 0) return errno_error("epoll_ctl(wake)");
  return std::make_unique<EventLoop>(std::move(ep), std::move(wake));
}

Result<void> EventLoop::add(int fd, std::uint32_t events, Handler handler) {
  std::lock_guard lock(mu_);
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return errno_error("epoll_ctl(ADD, fd {})", fd);
  handlers_[fd] = std::make_shared<Handler>(std::move(handler));
  return {};
}

Result<void> EventLoop::remove(int fd) {
  std::lock_guard lock(mu_);
  handlers_.erase(fd);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0) return errno_error("epoll_ctl(DEL, fd {})", fd);
  return {};
}

void EventLoop::stop() {
  {
    std::lock_guard lock(mu_);  // so that post() sees it, or its work is dropped by run()'s end
    stopping_ = true;
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof(one));
}

bool EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    posted_.push_back(std::move(fn));
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof(one));
  return true;
}

void EventLoop::run_posted() {
  std::uint64_t v;
  [[maybe_unused]] auto n = ::read(wake_.get(), &v, sizeof(v));
  std::deque<std::function<void()>> work;
  {
    std::lock_guard lock(mu_);
    work.swap(posted_);
  }
  for (auto& fn : work) {
    if (stopping_) return;
    fn();
  }
}

Result<EventLoop::TimerId> EventLoop::add_timer(std::chrono::nanoseconds after, std::chrono::nanoseconds period,
                                                std::function<void()> fn) {
  UniqueFd tfd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!tfd) return errno_error("timerfd_create");
  auto spec = [](std::chrono::nanoseconds d) {
    return timespec{static_cast<time_t>(d.count() / 1'000'000'000), static_cast<long>(d.count() % 1'000'000'000)};
  };
  itimerspec its{spec(period), spec(after)};
  if (after.count() <= 0) its.it_value.tv_nsec = 1;  // zero would disarm it: "now" is 1 ns
  if (::timerfd_settime(tfd.get(), 0, &its, nullptr) != 0) return errno_error("timerfd_settime");
  const int fd = tfd.get();
  const bool periodic = period.count() > 0;
  KILN_CHECK(add(fd, EPOLLIN, [this, fd, periodic, fn = std::move(fn)](std::uint32_t) {
    std::uint64_t expirations = 0;
    if (::read(fd, &expirations, sizeof(expirations)) != sizeof(expirations)) return;  // cancelled meanwhile
    fn();
    if (!periodic) (void)cancel_timer(fd);
  }));
  std::lock_guard lock(mu_);
  timers_[fd] = std::move(tfd);
  return fd;
}

Result<void> EventLoop::cancel_timer(TimerId id) {
  UniqueFd fd;
  {
    std::lock_guard lock(mu_);
    auto it = timers_.find(id);
    if (it == timers_.end()) return plain_error("no timer {}", id);
    fd = std::move(it->second);
    timers_.erase(it);
  }
  KILN_CHECK(remove(fd.get()));
  return {};  // fd closes here, after epoll forgot it
}

void PollWindow::waited(std::chrono::nanoseconds total, bool found_spinning) {
  if (max_.count() == 0 || found_spinning) return;
  if (total > max_) {
    current_ /= 2;  // the events are further apart than polling can cover
    if (current_ < kStart) current_ = std::chrono::nanoseconds(0);
  } else {
    current_ = std::min(max_, std::max(kStart, 2 * current_));  // one came soon after: spin longer
  }
}

int EventLoop::wait(epoll_event* events, int max) {
  using Clock = std::chrono::steady_clock;
  if (const std::chrono::nanoseconds m(max_poll_ns_.load(std::memory_order_relaxed)); m != poll_.max())
    poll_ = PollWindow(m);
  const auto t0 = Clock::now();
  if (poll_.current().count() > 0) {
    const auto until = t0 + poll_.current();
    do {
      const int n = ::epoll_wait(epoll_.get(), events, max, 0);
      if (n != 0) {
        if (n > 0) poll_.waited(Clock::now() - t0, true);
        return n;
      }
    } while (Clock::now() < until && !stopping_);
  }
  const int n = ::epoll_wait(epoll_.get(), events, max, -1);
  if (n > 0) poll_.waited(Clock::now() - t0, false);
  return n;
}

Result<void> EventLoop::run() {
  running_on_ = std::this_thread::get_id();
  struct Leave {
    EventLoop* loop;
    ~Leave() {
      loop->running_on_ = std::thread::id();
      // Work left unrun is dropped here, so that whoever waits on it hears of it.
      std::deque<std::function<void()>> dropped;
      std::lock_guard lock(loop->mu_);
      dropped.swap(loop->posted_);
    }
  } leave{this};
  epoll_event events[16];
  while (!stopping_) {
    const int n = wait(events, 16);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("epoll_wait");
    }
    for (int i = 0; i < n && !stopping_; ++i) {
      if (events[i].data.fd == wake_.get()) {
        run_posted();
        continue;
      }
      std::shared_ptr<Handler> h;
      {
        std::lock_guard lock(mu_);
        auto it = handlers_.find(events[i].data.fd);
        if (it == handlers_.end()) continue;
        h = it->second;
      }
      (*h)(events[i].events);
    }
  }
  return {};
}

}  // namespace kiln
