#pragma once
// The guest profiler's samples and report: each vCPU's RIP and CPL, taken from the VMM side at a
// set rate, counted by address and written out as the hottest functions (symbols.h). It knows no
// KVM: the VMM hands it samples.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "profile/symbols.h"

namespace kiln::profile {

// A count by name, for the report's closing sections (KVM's counters, kiln's exits).
struct NamedCount {
  std::string name;
  std::uint64_t count = 0;
};

// A titled section: each non-zero count with its rate per second of the run (`seconds` > 0), in the
// order given; empty when every count is 0.
[[nodiscard]] std::string counts_section(std::string_view title, const std::vector<NamedCount>& counts,
                                         double seconds);

class Profile {
 public:
  // A vCPU keeps at most this many distinct addresses; samples at others are counted apart.
  static constexpr std::size_t kMaxAddressesPerVcpu = 1 << 20;

  explicit Profile(std::size_t vcpus);

  // vCPU `vcpu` was at `rip`, at privilege level `cpl`. Each vCPU records from its own thread.
  void record(std::size_t vcpu, std::uint64_t rip, unsigned cpl);
  [[nodiscard]] std::uint64_t samples() const;

  struct ReportInfo {
    double seconds = 0;         // how long the VM ran
    unsigned hz = 0;            // the sampling rate asked for
    std::string slide_source;   // how the KASLR slide was found ("" when none was needed)
    std::size_t top = 30;       // functions listed
  };
  // The report: samples per vCPU, the split by CPL, then the hottest functions (or addresses,
  // without symbols). `symbols` may be null.
  [[nodiscard]] std::string report(const SymbolTable* symbols, const ReportInfo& info) const;

 private:
  struct PerVcpu {
    std::mutex mu;  // record() on the vCPU's thread, report() at the end
    std::map<std::pair<std::uint64_t, unsigned>, std::uint64_t> at;  // (rip, cpl) -> samples
    std::uint64_t total = 0;
    std::uint64_t unplaced = 0;  // past kMaxAddressesPerVcpu
  };
  std::vector<std::unique_ptr<PerVcpu>> vcpus_;
};

}  // namespace kiln::profile
