#pragma once
// Errors: a code and a context string that says what was being done and, for a user's mistake,
// the fix. Functions that can fail return Result<T> (std::expected); nothing on the data path throws.
#include <cerrno>
#include <expected>
#include <string>
#include <system_error>
#include <utility>

#include <fmt/format.h>

namespace kiln {

struct Error {
  std::error_code code;
  std::string context;

  // "context: strerror" (or just the context when the code is empty).
  [[nodiscard]] std::string message() const;
};

template <class T>
using Result = std::expected<T, Error>;

// An error from errno, with a message built by fmt.
template <class... Args>
[[nodiscard]] std::unexpected<Error> errno_error(fmt::format_string<Args...> fmt, Args&&... args) {
  const int saved = errno;
  return std::unexpected(
      Error{std::error_code(saved, std::generic_category()), fmt::format(fmt, std::forward<Args>(args)...)});
}

// An error with a given errno-style code (EINVAL for bad input, ERANGE, ENOENT, ...).
template <class... Args>
[[nodiscard]] std::unexpected<Error> make_error(std::errc code, fmt::format_string<Args...> fmt, Args&&... args) {
  return std::unexpected(Error{std::make_error_code(code), fmt::format(fmt, std::forward<Args>(args)...)});
}

// An error whose message is complete on its own (no strerror appended).
template <class... Args>
[[nodiscard]] std::unexpected<Error> plain_error(fmt::format_string<Args...> fmt, Args&&... args) {
  return std::unexpected(Error{{}, fmt::format(fmt, std::forward<Args>(args)...)});
}

// Prefix an error's context with what the caller was doing.
[[nodiscard]] Error with_context(Error e, std::string_view what);

}  // namespace kiln

// Propagate an error from an expression returning Result<T>; yields the value otherwise.
#define KILN_TRY(expr)                                   \
  __extension__({                                        \
    auto kiln_try_result_ = (expr);                      \
    if (!kiln_try_result_) {                             \
      return std::unexpected(std::move(kiln_try_result_).error()); \
    }                                                    \
    std::move(kiln_try_result_).value();                 \
  })
