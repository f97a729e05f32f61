#pragma once
// KVM's own counters for a vCPU or a VM (KVM_GET_STATS_FD, Linux 5.14+): every exit to the host
// kernel by kind, the instructions KVM's emulator ran, page faults, interrupt injections. Most of
// them never reach kiln as an exit, so they say what kiln's own exit counters cannot: how busy the
// host kernel was on the guest's behalf.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace kiln::kvm {

struct Counter {
  std::string name;
  std::uint64_t value = 0;
};

// Where each cumulative single-value statistic sits in the stats file.
struct CounterLayout {
  std::string name;
  std::uint64_t offset = 0;  // in the file
};

// A descriptor's fixed part, before its name: flags, exponent, size, offset, bucket_size. Not
// sizeof(kvm_stats_desc): in C++ the header's flexible name array sits in an empty struct that
// takes a byte, padding the structure to 20.
inline constexpr std::size_t kStatsDescFixedSize = 16;

// Reads `size` bytes at `offset` of the stats file into `out`; false when it cannot.
using StatsReader = std::function<bool(std::uint64_t offset, std::span<std::byte> out)>;

// The header and descriptors of a stats file, checked: names must end inside their field, and
// every value must lie past the descriptors, and the kept ones within kMaxValuesSpan of each other
// (they are read in one go). KVM wrote the file, but a layout this does not understand is an error,
// not a crash.
Result<std::vector<CounterLayout>> parse_stats_layout(const StatsReader& read);
inline constexpr std::uint64_t kMaxValuesSpan = 1 << 20;

// The counters of `layout` now, in its order: one read of the block from the first value to the
// end of the last.
Result<std::vector<Counter>> read_counters(const StatsReader& read, const std::vector<CounterLayout>& layout);

class Stats {
 public:
  // From a vCPU's or a VM's fd.
  static Result<Stats> open(int owner_fd);
  // The cumulative counters now, in KVM's order.
  [[nodiscard]] Result<std::vector<Counter>> read() const;

 private:
  Stats(UniqueFd fd, std::vector<CounterLayout> layout);
  UniqueFd fd_;
  std::vector<CounterLayout> layout_;
  StatsReader reader_;
};

// Adds `more` into `sum` by name (the counters of several vCPUs into one list).
void add_counters(std::vector<Counter>& sum, const std::vector<Counter>& more);

}  // namespace kiln::kvm
