#include "base/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
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
  stopping_ = true;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof(one));
}

Result<void> EventLoop::run() {
  epoll_event events[16];
  while (!stopping_) {
    const int n = ::epoll_wait(epoll_.get(), events, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("epoll_wait");
    }
    for (int i = 0; i < n && !stopping_; ++i) {
      if (events[i].data.fd == wake_.get()) continue;
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
