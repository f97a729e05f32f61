#include "config/json_fields.h"

#include <cctype>

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

Result<void> check_resource_id(std::string_view id, std::string_view what, std::string_view where) {
  if (id.empty() || id.size() > 64) return plain_error("{}: {} '{}' must be 1 to 64 characters long", where, what, id);
  for (const char ch : id)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_')
      return plain_error("{}: {} '{}' may hold only letters, digits and '_'", where, what, id);
  return {};
}

std::vector<FlagItem> split_flag_items(std::string_view spec) {
  std::vector<FlagItem> items;
  while (!spec.empty()) {
    const auto comma = spec.find(',');
    const std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
    const auto eq = item.find('=');
    items.push_back({item.substr(0, eq), eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1),
                     eq != std::string_view::npos});
  }
  return items;
}

}  // namespace kiln
