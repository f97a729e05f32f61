// `--config-file` (and the API's GET /vm/config shape), fed a hostile file: any bytes, parsed as
// JSON, then as a VmConfig, then validated. A config that is accepted must survive a round trip:
// written back with to_json and read again, it is accepted and writes the same JSON.
#include <cstdint>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "config/vm_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  auto config = kiln::vm_config_from_json(j);
  if (!config) {
    if (config.error().message().empty()) std::abort();
    return 0;
  }
  (void)kiln::validate(*config);
  const nlohmann::json written = kiln::to_json(*config);
  auto again = kiln::vm_config_from_json(written);
  if (!again) std::abort();
  if (kiln::to_json(*again) != written) std::abort();
  return 0;
}
