#pragma once
// What every resource's parser shares: strict fields (an unknown one is an error naming it),
// typed reads (a wrong type is an error naming the field), and the flags' KEY=VALUE lists.
#include <initializer_list>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace kiln {

// An error naming the first field of `obj` not in `allowed` ("where: unknown field 'x'").
Result<void> only_fields(const nlohmann::json& obj, std::string_view where,
                         std::initializer_list<std::string_view> allowed);

// obj[name] into `out` if it is there; an error naming "where.name" if its type is wrong.
template <class T>
Result<void> get_field(const nlohmann::json& obj, std::string_view where, const char* name, T& out) {
  if (!obj.contains(name)) return {};
  try {
    out = obj.at(name).get<T>();
  } catch (const nlohmann::json::exception&) {
    return plain_error("{}.{}: wrong type ({})", where, name, obj.at(name).type_name());
  }
  return {};
}

// A resource id as Firecracker takes it (drive_id, iface_id): 1-64 letters, digits and '_'.
// `what` names it in the error ("drive id", "iface_id").
Result<void> check_resource_id(std::string_view id, std::string_view what, std::string_view where);

// A flag's KEY[=VALUE],... list (--disk, --net), split at commas: each item's key, its value and
// whether it had an '='.
struct FlagItem {
  std::string_view key, value;
  bool has_value = false;
};
std::vector<FlagItem> split_flag_items(std::string_view spec);

}  // namespace kiln
