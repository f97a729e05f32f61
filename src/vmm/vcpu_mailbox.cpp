#include "vmm/vcpu_mailbox.h"

namespace kiln {

std::future<VcpuMailbox::Reply> VcpuMailbox::post(Kind kind, std::function<void()> call) {
  Message m{kind, std::move(call), {}};
  auto answer = m.reply.get_future();
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      m.reply.set_value({false, closed_why_});
      return answer;
    }
    queue_.push_back(std::move(m));
    pending_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
  return answer;
}

std::optional<VcpuMailbox::Message> VcpuMailbox::take() {
  std::lock_guard lock(mu_);
  if (queue_.empty()) return std::nullopt;
  Message m = std::move(queue_.front());
  queue_.pop_front();
  pending_.store(!queue_.empty(), std::memory_order_release);
  return m;
}

VcpuMailbox::Message VcpuMailbox::wait() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty(); });
  Message m = std::move(queue_.front());
  queue_.pop_front();
  pending_.store(!queue_.empty(), std::memory_order_release);
  return m;
}

void VcpuMailbox::close(const std::string& why) {
  std::deque<Message> left;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    closed_why_ = why;
    left.swap(queue_);
    pending_.store(false, std::memory_order_release);
  }
  for (auto& m : left) m.reply.set_value({false, why});
}

void drive_vcpu(VcpuMailbox& box, const std::function<bool()>& run_once) {
  bool paused = false;
  for (;;) {
    // Running, the mail is looked at between exits; paused, the thread sleeps until mail comes.
    while (paused || box.pending()) {
      auto m = paused ? std::optional(box.wait()) : box.take();
      if (!m) break;
      switch (m->kind) {
        case VcpuMailbox::Kind::kPause: paused = true; break;
        case VcpuMailbox::Kind::kResume: paused = false; break;
        case VcpuMailbox::Kind::kCall: m->call(); break;
        case VcpuMailbox::Kind::kStop:
          m->reply.set_value({});
          box.close("the vCPU has stopped");
          return;
      }
      m->reply.set_value({});
    }
    if (!run_once()) break;
  }
  box.close("the vCPU has ended");
}

}  // namespace kiln
