// The API's request routing and body parsing (api::Controller), fed by a hostile client: the
// input is a series of requests separated by NUL bytes, each "METHOD PATH\nBODY", against a
// backend that accepts everything, so the post-boot routes are reached too. Every answer must be
// a 200/204 or a 400 with a JSON fault_message.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "accepting_backend.h"
#include "api/controller.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kiln::fuzz::AcceptingBackend backend;
  kiln::api::Controller controller(backend, {.id = "fuzz", .version = "0"});
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty()) {
    const auto end = input.find('\0');
    std::string_view one = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
    const auto nl = one.find('\n');
    const std::string_view head = one.substr(0, nl);
    const std::string_view body = nl == std::string_view::npos ? std::string_view() : one.substr(nl + 1);
    const auto sp = head.find(' ');
    kiln::api::HttpRequest request{std::string(head.substr(0, sp)),
                                   sp == std::string_view::npos ? std::string("/") : std::string(head.substr(sp + 1)),
                                   std::string(body)};
    const auto response = controller.handle(request);
    if (response.status == 400) {
      const auto j = nlohmann::json::parse(response.body, nullptr, false);
      if (!j.is_object() || !j.contains("fault_message") || !j["fault_message"].is_string()) std::abort();
    } else if (response.status != 200 && response.status != 204) {
      std::abort();
    }
  }
  return 0;
}
