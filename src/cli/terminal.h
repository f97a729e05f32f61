#pragma once
// The host terminal as the guest's console: raw input (keys go to the guest, Ctrl-C included),
// output processing kept so kiln's own log lines stay readable. The saved mode is restored by
// the destructor, and by a handler on fatal signals, so no exit path leaves the terminal raw.
#include <termios.h>

namespace kiln {

class RawTerminal {
 public:
  explicit RawTerminal(int fd);  // does nothing if fd is not a terminal
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  [[nodiscard]] bool active() const { return active_; }

 private:
  int fd_;
  bool active_ = false;
  termios saved_{};
};

}  // namespace kiln
