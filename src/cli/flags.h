#pragma once
// kiln's command line. `kiln run --kernel ...` fills one VmConfig and boots it; `kiln --api-sock
// PATH` waits for Firecracker API calls to configure and start the VM; `--config-file FILE` boots
// a VM described in the shape of GET /vm/config (and serves the API too unless --no-api).
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/error.h"
#include "config/vm_config.h"

namespace kiln {

struct RunCommand {
  VmConfig config;        // the VM, or with start_now false the API's starting point
  bool start_now = true;  // false: wait for PUT /actions InstanceStart
  std::string api_sock;   // empty: no API
  std::string id = "anonymous-instance";
  std::string log_level = "info";
  // The largest API request body (--http-api-max-payload-size), as Firecracker's.
  std::size_t http_api_max_payload_size = 51200;
  // The metadata service's store: its bound (by default the largest body, so that one PUT /mmds
  // can fill it), and what is in it at start (--metadata).
  std::size_t mmds_size_limit = 51200;
  std::optional<nlohmann::json> metadata;
};
struct ShowText {  // --help or --version: print and exit 0
  std::string text;
};

// Parses argv. A bad flag is an error whose message is one line naming the flag and the fix.
Result<std::variant<RunCommand, ShowText>> parse_command_line(std::vector<std::string> args);

}  // namespace kiln
