#include "base/error.h"

namespace kiln {

std::string Error::message() const {
  if (!code) return context;
  return fmt::format("{}: {}", context, code.message());
}

Error with_context(Error e, std::string_view what) {
  e.context = fmt::format("{}: {}", what, e.context);
  return e;
}

}  // namespace kiln
