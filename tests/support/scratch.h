#pragma once
// Files a test makes for kiln to read or write (bad configs, truncated kernels, small disks,
// reports): each test process gets a directory of its own under GoogleTest's TempDir(), made on
// first use and removed with everything in it when the process ends. ctest runs each test in a
// process of its own, so no two tests, and no two builds' test runs on one machine, share a path,
// and a run leaves nothing behind.
#include <string>
#include <string_view>

namespace kiln::test {

// `name` inside this process's scratch directory.
std::string scratch_path(std::string_view name);

}  // namespace kiln::test
