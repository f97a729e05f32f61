#include "api/http.h"

#include <nlohmann/json.hpp>

namespace kiln::api {

const std::string* HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

HttpResponse fault(int status, std::string_view message) {
  return {status, nlohmann::json{{"fault_message", message}}.dump(-1, ' ', false,
                                                                  nlohmann::json::error_handler_t::replace)};
}

}  // namespace kiln::api
