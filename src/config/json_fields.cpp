#include "config/json_fields.h"

#include <set>

namespace kiln {

using nlohmann::json;

Result<void> only_fields(const json& obj, std::string_view where, std::initializer_list<std::string_view> allowed) {
  if (!obj.is_object()) return plain_error("{}: expected a JSON object", where);
  const std::set<std::string_view> ok(allowed);
  for (const auto& [k, v] : obj.items()) {
    if (!ok.contains(k)) return plain_error("{}: unknown field '{}'", where, k);
  }
  return {};
}

}  // namespace kiln
