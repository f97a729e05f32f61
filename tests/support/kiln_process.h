#pragma once
// Runs the real kiln binary for integration and end-to-end tests: its console on a pipe or a
// pty (so typed input reaches the guest as a terminal's would), stdout and stderr collected,
// markers waited for with deadlines, and the exit status. Every wait also ends as soon as kiln
// has exited and its output is read to the end: a marker that can no longer come fails at once.
#include <signal.h>
#include <termios.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace kiln::test {

class KilnProcess {
 public:
  enum class Console { kPipe, kPty };
  explicit KilnProcess(std::vector<std::string> args, Console console = Console::kPipe);
  ~KilnProcess();

  // True once `needle` has appeared on stdout (stderr); false at the deadline, or once kiln has
  // exited without printing it.
  bool wait_for_output(const std::string& needle, std::chrono::seconds timeout);
  bool wait_for_stderr(const std::string& needle, std::chrono::seconds timeout);
  // Waits until stdout has been quiet for `quiet` (true), or for at most `timeout` (false).
  bool wait_for_quiet_output(std::chrono::milliseconds quiet, std::chrono::seconds timeout);
  void send(const std::string& text);
  // The exit status, or nullopt if it is still running at the deadline.
  std::optional<int> wait_exit(std::chrono::seconds timeout);
  void terminate() { signal(SIGTERM); }
  void signal(int sig);
  [[nodiscard]] bool exited();
  // The terminal kiln's console is on (Console::kPty), for its modes; -1 on pipes.
  [[nodiscard]] int pty_master() const { return pty_ ? out_fd_ : -1; }
  // That terminal's modes as they were before kiln started.
  [[nodiscard]] const termios& pty_modes_at_start() const { return pty_modes_; }

  std::string output();
  std::string errors();
  [[nodiscard]] pid_t pid() const { return pid_; }
  // After it exited: its peak resident memory (getrusage's ru_maxrss), guest RAM it touched
  // included; 0 before.
  [[nodiscard]] std::uint64_t peak_rss_kib();

 private:
  bool wait_in(std::string KilnProcess::*buf, const std::string& needle, std::chrono::seconds timeout);
  void reader(int fd, std::string KilnProcess::*buf);
  void reaper();
  // Under mu_: kiln has exited and what it wrote has been read (or a grandchild holds the pipe).
  [[nodiscard]] bool finished_locked() const;

  bool pty_ = false;
  termios pty_modes_{};
  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string out_, err_;
  std::thread out_thread_, err_thread_, reaper_thread_;
  int readers_done_ = 0;
  std::chrono::steady_clock::time_point exited_at_{}, last_output_{};
  std::optional<int> status_;  // set by the reaper
  std::uint64_t peak_rss_kib_ = 0;
};

// kiln run ARGS..., ready to hand to KilnProcess.
std::vector<std::string> kiln_run(std::vector<std::string> args);

// A running kiln's own resident memory in KiB: every mapping's resident pages (/proc/PID/smaps)
// but the guest's RAM (the mapping of `guest_ram_mib` MiB and up to 4 MiB more). 0 when it cannot
// be read.
std::uint64_t own_rss_kib(pid_t pid, std::uint64_t guest_ram_mib);

}  // namespace kiln::test
