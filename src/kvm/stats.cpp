#include "kvm/stats.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

namespace kiln::kvm {

namespace {

// Bounds on what a stats file may declare: far above what any kernel has (47 vCPU statistics in
// 6.18, names of 48 bytes), and at most ~4 MiB of descriptors read.
constexpr std::uint32_t kMaxNameSize = 1024;
constexpr std::uint32_t kMaxDescriptors = 4096;

static_assert(offsetof(kvm_stats_desc, bucket_size) + sizeof(kvm_stats_desc::bucket_size) == kStatsDescFixedSize);

StatsReader pread_reader(int fd) {
  return [fd](std::uint64_t offset, std::span<std::byte> out) {
    return ::pread(fd, out.data(), out.size(), static_cast<off_t>(offset)) == static_cast<ssize_t>(out.size());
  };
}

}  // namespace

Result<std::vector<CounterLayout>> parse_stats_layout(const StatsReader& read) {
  kvm_stats_header h{};
  if (!read(0, std::as_writable_bytes(std::span(&h, 1)))) return plain_error("KVM stats: cannot read the header");
  if (h.name_size == 0 || h.name_size > kMaxNameSize)
    return plain_error("KVM stats: a name field of {} bytes is not understood", h.name_size);
  if (h.num_desc > kMaxDescriptors) return plain_error("KVM stats: {} descriptors is too many", h.num_desc);
  const std::uint64_t desc_size = kStatsDescFixedSize + h.name_size;
  const std::uint64_t descs_end = std::uint64_t{h.desc_offset} + desc_size * h.num_desc;
  std::vector<std::byte> descs(static_cast<std::size_t>(desc_size * h.num_desc));
  if (!descs.empty() && !read(h.desc_offset, descs)) return plain_error("KVM stats: cannot read the descriptors");

  if (h.num_desc > 0 && h.data_offset < descs_end)
    return plain_error("KVM stats: the values at {} overlap the descriptors (up to {})", h.data_offset, descs_end);

  std::vector<CounterLayout> out;
  for (std::uint32_t i = 0; i < h.num_desc; ++i) {
    const std::byte* at = descs.data() + desc_size * i;
    kvm_stats_desc d{};
    std::memcpy(&d, at, kStatsDescFixedSize);
    const char* name = reinterpret_cast<const char*>(at + kStatsDescFixedSize);
    const std::size_t len = ::strnlen(name, h.name_size);
    if (len == h.name_size) return plain_error("KVM stats: descriptor {}'s name does not end in its field", i);
    // Counts that only grow: they add up across vCPUs and make rates. Instant values, peaks and
    // histograms are left out.
    if (d.size != 1 || (d.flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_CUMULATIVE) continue;
    out.push_back({std::string(name, len), std::uint64_t{h.data_offset} + d.offset});
  }
  if (!out.empty()) {
    const auto [lo, hi] = std::ranges::minmax(out, {}, &CounterLayout::offset);
    if (hi.offset + sizeof(std::uint64_t) - lo.offset > kMaxValuesSpan)
      return plain_error("KVM stats: the counters' values spread from {} to {}, over {} bytes", lo.offset, hi.offset,
                         kMaxValuesSpan);
  }
  return out;
}

Result<std::vector<Counter>> read_counters(const StatsReader& read, const std::vector<CounterLayout>& layout) {
  if (layout.empty()) return std::vector<Counter>{};
  const auto [lo, hi] = std::ranges::minmax(layout, {}, &CounterLayout::offset);
  const std::uint64_t base = lo.offset;
  std::vector<std::byte> block(static_cast<std::size_t>(hi.offset + sizeof(std::uint64_t) - base));
  if (!read(base, block)) return errno_error("reading KVM's counters ({} bytes at {})", block.size(), base);
  std::vector<Counter> out;
  out.reserve(layout.size());
  for (const auto& c : layout) {
    std::uint64_t v = 0;
    std::memcpy(&v, block.data() + (c.offset - base), sizeof v);
    out.push_back({c.name, v});
  }
  return out;
}

Result<Stats> Stats::open(int owner_fd) {
  const int fd = ::ioctl(owner_fd, KVM_GET_STATS_FD, nullptr);
  if (fd < 0) return errno_error("KVM_GET_STATS_FD");
  UniqueFd owned(fd);
  KILN_ASSIGN(auto layout, parse_stats_layout(pread_reader(fd)));
  return Stats(std::move(owned), std::move(layout));
}

Stats::Stats(UniqueFd fd, std::vector<CounterLayout> layout)
    : fd_(std::move(fd)), layout_(std::move(layout)), reader_(pread_reader(fd_.get())) {}

Result<std::vector<Counter>> Stats::read() const { return read_counters(reader_, layout_); }

void add_counters(std::vector<Counter>& sum, const std::vector<Counter>& more) {
  std::map<std::string, std::size_t> at;
  for (std::size_t i = 0; i < sum.size(); ++i) at.emplace(sum[i].name, i);
  for (const auto& c : more) {
    if (auto it = at.find(c.name); it != at.end()) {
      sum[it->second].value += c.value;
    } else {
      at.emplace(c.name, sum.size());
      sum.push_back(c);
    }
  }
}

}  // namespace kiln::kvm
