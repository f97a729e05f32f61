#pragma once
// A listening Unix stream socket at a path that must not exist yet (non-blocking, close-on-exec,
// backlog 64): what kiln's API socket, the metadata service's socket and vsock's host socket all
// are. Errors read "<what> '<path>': ..." and say the fix.
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/unique_fd.h"

namespace kiln {

Result<UniqueFd> listen_unix(const std::string& path, std::string_view what);

}  // namespace kiln
