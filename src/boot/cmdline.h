#pragma once
// Kernel command lines: kiln's own additions merged with the user's, the user's word winning.
#include <string>
#include <string_view>
#include <vector>

namespace kiln::boot {

// The key of a kernel parameter ("console" for "console=ttyS0", "quiet" for "quiet").
std::string_view param_key(std::string_view param);
std::vector<std::string> split_params(std::string_view cmdline);

// `user` followed by each of `extra` whose key the user did not already give.
std::string merge_cmdline(std::string_view user, const std::vector<std::string>& extra,
                          std::vector<std::string>* added = nullptr);

}  // namespace kiln::boot
