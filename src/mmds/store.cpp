#include "mmds/store.h"

namespace kiln::mmds {

Result<void> DataStore::check_size(const nlohmann::json& data) const {
  const std::size_t size = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size();
  if (size > limit_)
    return plain_error("mmds: the data store would hold {} bytes, over its limit of {} (kiln's --mmds-size-limit); "
                       "send less, or raise the limit",
                       size, limit_);
  return {};
}

Result<void> DataStore::put(const nlohmann::json& data) {
  KILN_CHECK(check_size(data));
  std::lock_guard lock(mu_);
  data_ = data;
  return {};
}

Result<void> DataStore::patch(const nlohmann::json& patch) {
  std::lock_guard lock(mu_);
  if (!data_) return plain_error("mmds: the data store is empty; PUT /mmds before a PATCH");
  nlohmann::json merged = *data_;
  merged.merge_patch(patch);
  KILN_CHECK(check_size(merged));
  data_ = std::move(merged);
  return {};
}

std::optional<nlohmann::json> DataStore::get() const {
  std::lock_guard lock(mu_);
  return data_;
}

}  // namespace kiln::mmds
