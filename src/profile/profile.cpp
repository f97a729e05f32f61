#include "profile/profile.h"

#include <algorithm>
#include <array>
#include <unordered_map>

#include <fmt/format.h>

namespace kiln::profile {

Profile::Profile(std::size_t vcpus) {
  for (std::size_t i = 0; i < vcpus; ++i) vcpus_.push_back(std::make_unique<PerVcpu>());
}

void Profile::record(std::size_t vcpu, std::uint64_t rip, unsigned cpl) {
  if (vcpu >= vcpus_.size()) return;
  PerVcpu& v = *vcpus_[vcpu];
  std::lock_guard lock(v.mu);
  ++v.total;
  const auto key = std::make_pair(rip, cpl & 3u);
  if (auto it = v.at.find(key); it != v.at.end()) {
    ++it->second;
  } else if (v.at.size() < kMaxAddressesPerVcpu) {
    v.at.emplace(key, 1);
  } else {
    ++v.unplaced;
  }
}

std::uint64_t Profile::samples() const {
  std::uint64_t n = 0;
  for (const auto& v : vcpus_) {
    std::lock_guard lock(v->mu);
    n += v->total;
  }
  return n;
}

std::string Profile::report(const SymbolTable* symbols, const ReportInfo& info) const {
  std::uint64_t total = 0, unplaced = 0;
  std::array<std::uint64_t, 4> by_cpl{};
  std::vector<std::uint64_t> per_vcpu;
  // Function (or address, or "[...]") -> samples, and the CPL most of them were at.
  struct Row {
    std::uint64_t samples = 0;
    std::array<std::uint64_t, 4> cpl{};
  };
  std::unordered_map<std::string, Row> rows;
  for (const auto& vp : vcpus_) {
    std::lock_guard lock(vp->mu);
    per_vcpu.push_back(vp->total);
    total += vp->total;
    unplaced += vp->unplaced;
    for (const auto& [key, n] : vp->at) {
      const auto [rip, cpl] = key;
      by_cpl[cpl] += n;
      std::string name;
      if (const auto hit = symbols ? symbols->lookup(rip) : std::nullopt) name = std::string(hit->name);
      else if (symbols) name = cpl == 3 ? "[user space, no symbol]" : "[kernel, no symbol]";
      else name = fmt::format("{:#x}", rip);  // no symbols: the hottest addresses
      Row& r = rows[name];
      r.samples += n;
      r.cpl[cpl] += n;
    }
  }
  std::string out = fmt::format("kiln guest profile: {} samples", total);
  if (info.hz > 0) out += fmt::format(" at {} Hz", info.hz);
  if (info.seconds > 0) out += fmt::format(" over {:.1f} s", info.seconds);
  out += " (";
  for (std::size_t i = 0; i < per_vcpu.size(); ++i) out += fmt::format("{}vCPU {}: {}", i ? ", " : "", i, per_vcpu[i]);
  out += ")\n";
  if (symbols) {
    out += fmt::format("symbols: {} ({} functions)", symbols->origin(), symbols->size());
    if (!info.slide_source.empty()) out += fmt::format(", KASLR slide {:#x} ({})", symbols->slide(), info.slide_source);
    out += "\n";
  } else {
    out += "symbols: none (--profile-symbols System.map or vmlinux): the hottest addresses follow\n";
  }
  const auto pct = [&](std::uint64_t n) { return total ? 100.0 * static_cast<double>(n) / static_cast<double>(total) : 0.0; };
  out += fmt::format("by privilege level: kernel (CPL 0) {:.1f} %, user (CPL 3) {:.1f} %", pct(by_cpl[0]), pct(by_cpl[3]));
  if (by_cpl[1] + by_cpl[2] > 0) out += fmt::format(", CPL 1-2 {:.1f} %", pct(by_cpl[1] + by_cpl[2]));
  out += "\n";
  if (unplaced > 0)
    out += fmt::format("({} samples at addresses past the first {} of a vCPU are in the totals only)\n", unplaced,
                       kMaxAddressesPerVcpu);
  std::vector<std::pair<std::string, Row>> sorted(rows.begin(), rows.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second.samples != b.second.samples ? a.second.samples > b.second.samples : a.first < b.first;
  });
  out += fmt::format("\n{:>9} {:>7}  {:>3}  {}\n", "samples", "%", "cpl", "function");
  for (std::size_t i = 0; i < sorted.size() && i < info.top; ++i) {
    const auto& [name, r] = sorted[i];
    const auto main_cpl = static_cast<unsigned>(std::max_element(r.cpl.begin(), r.cpl.end()) - r.cpl.begin());
    out += fmt::format("{:>9} {:>6.2f}%  {:>3}  {}\n", r.samples, pct(r.samples), main_cpl, name);
  }
  return out;
}

std::string counts_section(std::string_view title, const std::vector<NamedCount>& counts, double seconds) {
  std::size_t width = 0;
  for (const auto& c : counts)
    if (c.count > 0) width = std::max(width, c.name.size());
  if (width == 0) return {};
  std::string out = fmt::format("\n{}\n", title);
  for (const auto& c : counts) {
    if (c.count == 0) continue;
    out += fmt::format("  {:<{}} {:>14}", c.name, width, c.count);
    if (seconds > 0) out += fmt::format(" {:>12.0f}/s", static_cast<double>(c.count) / seconds);
    out += "\n";
  }
  return out;
}

}  // namespace kiln::profile
