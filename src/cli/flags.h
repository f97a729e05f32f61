#pragma once
// kiln's command line: `kiln run --kernel ...` fills one VmConfig.
#include <string>
#include <variant>
#include <vector>

#include "base/error.h"
#include "vmm/config.h"

namespace kiln {

struct RunCommand {
  VmConfig config;
  std::string log_level = "info";
};
struct ShowText {  // --help or --version: print and exit 0
  std::string text;
};

// Parses argv. A bad flag is an error whose message is one line naming the flag and the fix.
Result<std::variant<RunCommand, ShowText>> parse_command_line(std::vector<std::string> args);

}  // namespace kiln
