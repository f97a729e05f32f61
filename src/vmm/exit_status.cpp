#include "vmm/exit_status.h"

#include <fmt/format.h>

namespace kiln {

int VmExitStatus::exit_code() const {
  switch (end) {
    case VmEnd::kPowerOff:
    case VmEnd::kUserQuit: return 0;
    case VmEnd::kVmmError: return kExitVmmError;
    case VmEnd::kReset: return 2;
    case VmEnd::kTripleFault: return 3;
    case VmEnd::kPanic: return 4;
    case VmEnd::kCrash: return 5;
    case VmEnd::kSignal: return 6;
    case VmEnd::kDebugExit: return debug_code;
  }
  return kExitVmmError;
}

std::string VmExitStatus::describe() const {
  std::string what;
  switch (end) {
    case VmEnd::kPowerOff: what = "guest powered off"; break;
    case VmEnd::kUserQuit: what = "quit from the console"; break;
    case VmEnd::kVmmError: what = "kiln error"; break;
    case VmEnd::kReset: what = "guest rebooted"; break;
    case VmEnd::kTripleFault: what = "guest triple-faulted"; break;
    case VmEnd::kPanic: what = "guest kernel panicked"; break;
    case VmEnd::kCrash: what = "guest crashed its vCPU"; break;
    case VmEnd::kSignal: what = "stopped by a signal"; break;
    case VmEnd::kDebugExit: what = fmt::format("guest wrote {} to the debug-exit port", debug_code); break;
  }
  if (!detail.empty()) what += ": " + detail;
  return fmt::format("{} (exit status {})", what, exit_code());
}

}  // namespace kiln
