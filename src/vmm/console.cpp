#include "vmm/console.h"

#include <unistd.h>

#include <cerrno>

namespace kiln {

void ConsoleOutput::write(std::span<const std::byte> bytes) {
  if (fd_ >= 0) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // a closed or full console must not stop the guest
      done += static_cast<std::size_t>(n);
    }
  }
  bytes_ += bytes.size();
  for (auto b : bytes) {
    const char c = static_cast<char>(b);
    if (c == '\n') {
      scan_line();
      line_.clear();
    } else if (c != '\r' && line_.size() < kMaxLine) {
      line_.push_back(c);
    }
  }
}

void ConsoleOutput::scan_line() {
  if (line_.find("Kernel panic - not syncing") != std::string::npos) {
    if (line_.find("---[ end Kernel panic") != std::string::npos) on_event_(Event::kPanicEnd);
    else on_event_(Event::kPanicStart);
    return;
  }
  // The kernel's own message once it has powered off or halted (kernel/reboot.c).
  if (line_.ends_with("reboot: Power down") || line_.ends_with("reboot: System halted")) on_event_(Event::kPowerOff);
}

EscapeFilter::Result EscapeFilter::feed(std::span<const std::byte> in) {
  Result r;
  for (auto b : in) {
    if (escaped_) {
      escaped_ = false;
      const char c = static_cast<char>(b);
      if (c == 'x' || c == 'X') {
        r.quit = true;
        return r;
      }
      if (b == kEscape) r.forward.push_back(static_cast<char>(kEscape));
      // any other key after Ctrl-A is swallowed, as in QEMU
      continue;
    }
    if (b == kEscape) {
      escaped_ = true;
      continue;
    }
    r.forward.push_back(static_cast<char>(b));
  }
  return r;
}

}  // namespace kiln
