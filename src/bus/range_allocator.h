#pragma once
// Hands out ranges of one address space (port I/O, an MMIO window, GSIs) to named owners, so that
// no two devices overlap: the device manager's bookkeeping. A fixed device reserves its exact
// range; a new one asks for any free range of a size and alignment. Every refusal names the range,
// the owner that asked and, for an overlap, the owner that holds it.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace kiln {

class RangeAllocator {
 public:
  struct Allocation {
    std::uint64_t start = 0, size = 0;
    std::string owner;
  };
  // The space [base, end).
  RangeAllocator(std::string name, std::uint64_t base, std::uint64_t end);

  // Exactly [start, start + size).
  Result<std::uint64_t> reserve(std::uint64_t start, std::uint64_t size, std::string_view owner);
  // The lowest free range of `size` bytes at or above `from` whose start is a multiple of `align`
  // (a power of two).
  Result<std::uint64_t> allocate(std::uint64_t size, std::uint64_t align, std::string_view owner,
                                 std::uint64_t from = 0);
  // Gives back the range that starts at `start`; false if none does.
  bool release(std::uint64_t start);
  [[nodiscard]] std::vector<Allocation> allocations() const;
  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  // The allocation overlapping [start, start + size), if any.
  [[nodiscard]] const Allocation* overlapping(std::uint64_t start, std::uint64_t size) const;
  std::string name_;
  std::uint64_t base_, end_;
  std::map<std::uint64_t, Allocation> used_;  // by start
};

}  // namespace kiln
