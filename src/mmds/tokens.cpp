#include "mmds/tokens.h"

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include <fmt/format.h>

namespace kiln::mmds {

Result<std::string> Tokens::issue(std::uint32_t ttl_seconds) {
  std::array<std::uint8_t, 32> bytes{};
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::getrandom(bytes.data() + got, bytes.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("mmds: getrandom");
    got += static_cast<std::size_t>(n);
  }
  std::string token;
  token.reserve(2 * bytes.size());
  for (const std::uint8_t b : bytes) token += fmt::format("{:02x}", b);
  const Clock::time_point now = now_();
  if (live_.size() >= kMaxTokens) {
    std::erase_if(live_, [now](const auto& t) { return t.second <= now; });
    while (live_.size() >= kMaxTokens) {
      live_.erase(std::min_element(live_.begin(), live_.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; }));
    }
  }
  live_[token] = now + std::chrono::seconds(ttl_seconds);
  return token;
}

bool Tokens::valid(std::string_view token) const {
  auto it = live_.find(std::string(token));
  return it != live_.end() && now_() < it->second;
}

}  // namespace kiln::mmds
