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

// Error propagation in standard C++ (no statement expressions: a `return` from inside one skips
// the destructors of what the enclosing expression had built, as clang showed). Both are
// statements; anything else spells the check out.
//
//   KILN_CHECK(expr);             returns the error of `expr` (a Result<T>), if it has one
//   KILN_ASSIGN(decl, expr);      the same, else `decl = the value`: `auto x`, `const T y`, `out.field`
#define KILN_CHECK(...)                                                          \
  do {                                                                           \
    if (auto&& kiln_check_result_ = (__VA_ARGS__); !kiln_check_result_)         \
      return std::unexpected(std::move(kiln_check_result_).error());            \
  } while (0)
#define KILN_CONCAT_INNER(a, b) a##b
#define KILN_CONCAT(a, b) KILN_CONCAT_INNER(a, b)
// __COUNTER__ is taken once, here, so that every use of the temporary's name is the same name.
#define KILN_ASSIGN(decl, ...) KILN_ASSIGN_N(__COUNTER__, decl, __VA_ARGS__)
#define KILN_ASSIGN_N(n, decl, ...) KILN_ASSIGN_IMPL(KILN_CONCAT(kiln_assign_result_, n), decl, __VA_ARGS__)
#define KILN_ASSIGN_IMPL(tmp, decl, ...)                    \
  auto tmp = (__VA_ARGS__);                                 \
  if (!tmp) return std::unexpected(std::move(tmp).error()); \
  decl = std::move(*tmp)
