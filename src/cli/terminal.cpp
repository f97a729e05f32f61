#include "cli/terminal.h"

#include <csignal>
#include <initializer_list>
#include <unistd.h>

namespace kiln {

namespace {
// For the fatal-signal handler: a plain copy, since only async-signal-safe calls may use it.
int g_fd = -1;
termios g_saved{};

void restore_and_reraise(int sig) {
  if (g_fd >= 0) ::tcsetattr(g_fd, TCSANOW, &g_saved);
  std::signal(sig, SIG_DFL);
  ::raise(sig);
}
}  // namespace

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  if (::isatty(fd) == 0 || ::tcgetattr(fd, &saved_) != 0) return;
  termios raw = saved_;
  raw.c_iflag &= ~static_cast<tcflag_t>(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
  raw.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
  raw.c_cflag &= ~static_cast<tcflag_t>(CSIZE | PARENB);
  raw.c_cflag |= CS8;
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  if (::tcsetattr(fd, TCSANOW, &raw) != 0) return;
  active_ = true;
  g_fd = fd;
  g_saved = saved_;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, restore_and_reraise);
}

RawTerminal::~RawTerminal() {
  if (!active_) return;
  ::tcsetattr(fd_, TCSANOW, &saved_);
  g_fd = -1;
}

}  // namespace kiln
