#include "boot/cmdline.h"

#include <algorithm>

namespace kiln::boot {

std::string_view param_key(std::string_view p) { return p.substr(0, p.find('=')); }

std::vector<std::string> split_params(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    if (i >= s.size()) break;
    std::size_t j = i;
    bool quoted = false;
    while (j < s.size() && (quoted || s[j] != ' ')) {
      if (s[j] == '"') quoted = !quoted;
      ++j;
    }
    out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string merge_cmdline(std::string_view user, const std::vector<std::string>& extra,
                          std::vector<std::string>* added) {
  const auto given = split_params(user);
  std::string out(user);
  for (const auto& e : extra) {
    const auto key = param_key(e);
    // "--" ends the kernel's own parameters: everything after it goes to init.
    const bool present = std::ranges::any_of(given, [&](const std::string& g) { return param_key(g) == key; });
    if (present) continue;
    if (added != nullptr) added->push_back(e);
    const auto dashdash = out.find(" -- ");
    if (dashdash != std::string::npos) {
      out.insert(dashdash, " " + e);
    } else {
      if (!out.empty()) out += ' ';
      out += e;
    }
  }
  return out;
}

}  // namespace kiln::boot
