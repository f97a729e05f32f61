#pragma once
// The metadata service's data store (Firecracker's MMDS): one JSON document the host sets through
// the API (PUT replaces it, PATCH merges into it as RFC 7396 says) and the guest reads over its
// network. Its size, as compact JSON, is bounded (--mmds-size-limit): a write that would pass the
// bound is refused whole and changes nothing. Thread-safe: the API's thread writes while the
// metadata service's thread reads.
#include <cstddef>
#include <mutex>
#include <optional>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace kiln::mmds {

// Firecracker's default bound on the store (and on an API request's body).
inline constexpr std::size_t kDefaultSizeLimit = 51200;

class DataStore {
 public:
  explicit DataStore(std::size_t size_limit = kDefaultSizeLimit) : limit_(size_limit) {}

  // Replaces the document.
  Result<void> put(const nlohmann::json& data);
  // Merges `patch` into the document; an error before any put().
  Result<void> patch(const nlohmann::json& patch);
  // The document; none before the first put().
  [[nodiscard]] std::optional<nlohmann::json> get() const;
  [[nodiscard]] std::size_t size_limit() const { return limit_; }

 private:
  Result<void> check_size(const nlohmann::json& data) const;

  const std::size_t limit_;
  mutable std::mutex mu_;
  std::optional<nlohmann::json> data_;
};

}  // namespace kiln::mmds
