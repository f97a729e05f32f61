#pragma once
// MMDS version 2's session tokens: a guest asks for one with PUT /latest/api/token and a lifetime
// (1 to 21600 seconds), then shows it on every GET. A token is 32 random bytes from the host's
// getrandom(2), in hex; kiln keeps each one with its expiry. At most kMaxTokens are kept: a guest
// that asks for more loses its expired ones first, then those nearest their end.
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/error.h"

namespace kiln::mmds {

class Tokens {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;
  static constexpr std::size_t kMaxTokens = 1024;
  static constexpr std::uint32_t kMaxTtlSeconds = 21600;

  explicit Tokens(Now now = Clock::now) : now_(std::move(now)) {}

  // A new token living `ttl_seconds` (checked by the caller: 1 to kMaxTtlSeconds).
  Result<std::string> issue(std::uint32_t ttl_seconds);
  // True for a token issued here that has not expired.
  [[nodiscard]] bool valid(std::string_view token) const;
  [[nodiscard]] std::size_t size() const { return live_.size(); }

 private:
  Now now_;
  std::unordered_map<std::string, Clock::time_point> live_;
};

}  // namespace kiln::mmds
