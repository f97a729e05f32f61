#pragma once
// How a VM ended, and the exit status kiln reports for it (documented in --help and the README).
#include <string>

namespace kiln {

enum class VmEnd {
  kPowerOff,     // 0: the guest powered off
  kUserQuit,     // 0: the console escape (Ctrl-A x)
  kVmmError,     // 1: kiln itself failed, or the input was bad
  kReset,        // 2: the guest rebooted (kiln does not restart it)
  kTripleFault,  // 3: the guest triple-faulted
  kPanic,        // 4: the guest kernel panicked
  kCrash,        // 5: the guest did something kiln cannot handle (diagnostic printed)
  kDebugExit,    // N: a test guest wrote N to the debug-exit port
  kSignal,       // 6: kiln was told to stop (SIGTERM, SIGINT, SIGHUP)
};

struct VmExitStatus {
  VmEnd end = VmEnd::kVmmError;
  int debug_code = 0;  // for kDebugExit
  std::string detail;

  [[nodiscard]] int exit_code() const;
  [[nodiscard]] std::string describe() const;
};

inline constexpr int kExitVmmError = 1;
inline constexpr const char* kExitCodeHelp =
    "Exit status:\n"
    "  0  the guest powered off (or Ctrl-A x on the console)\n"
    "  1  kiln error: bad flags or images, no usable KVM, or a failure of kiln itself\n"
    "  2  the guest rebooted\n"
    "  3  the guest triple-faulted\n"
    "  4  the guest kernel panicked\n"
    "  5  the guest crashed its vCPU in a way kiln cannot handle (a diagnostic is printed)\n"
    "  6  kiln was stopped by SIGTERM, SIGINT or SIGHUP\n"
    "  N  a test guest wrote N to the debug-exit port (0xf4)\n";

}  // namespace kiln
