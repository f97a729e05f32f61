#pragma once
// The guest console's two directions, apart from any terminal or thread:
// - ConsoleOutput writes what the UART transmits to an fd and watches whole lines for the
//   kernel's own words at a panic or a power-off (until ACPI and pvpanic exist, that is how a
//   guest's end is told apart from a hang).
// - EscapeFilter turns host keystrokes into guest input, handling Ctrl-A x (quit) and
//   Ctrl-A Ctrl-A (a literal Ctrl-A), as QEMU's -serial mon:stdio does.
#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace kiln {

class ConsoleOutput {
 public:
  enum class Event { kPanicStart, kPanicEnd, kPowerOff };
  ConsoleOutput(int fd, std::function<void(Event)> on_event) : fd_(fd), on_event_(std::move(on_event)) {}
  void write(std::span<const std::byte> bytes);
  [[nodiscard]] std::uint64_t bytes_written() const { return bytes_; }
  // The part of the current line kept for the scan: at most kMaxLine bytes, however long the line.
  static constexpr std::size_t kMaxLine = 1024;
  [[nodiscard]] std::size_t line_kept() const { return line_.size(); }

 private:
  void scan_line();
  int fd_;  // -1: discard
  std::function<void(Event)> on_event_;
  std::string line_;
  std::uint64_t bytes_ = 0;
};

class EscapeFilter {
 public:
  static constexpr std::byte kEscape{0x01};  // Ctrl-A
  struct Result {
    std::string forward;
    bool quit = false;
  };
  Result feed(std::span<const std::byte> in);

 private:
  bool escaped_ = false;
};

}  // namespace kiln
