#pragma once
// The CPUID table kiln gives each vCPU: what KVM supports, with the fix-ups a VMM owes
// (APIC ids and topology, the hypervisor leaves, TSC frequency) and the features this host
// cannot run hidden.
#include <cstdint>
#include <optional>
#include <vector>

namespace kiln::x86 {

// The layout of struct kvm_cpuid_entry2's meaningful fields; kvm/ converts.
struct CpuidEntry {
  std::uint32_t function = 0;
  std::uint32_t index = 0;
  std::uint32_t flags = 0;
  std::uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};
inline constexpr std::uint32_t kCpuidFlagSignificantIndex = 1;  // KVM_CPUID_FLAG_SIGNIFCANT_INDEX

struct CpuidOptions {
  std::uint32_t vcpu_id = 0;       // also the APIC id
  std::uint32_t vcpu_count = 1;
  bool hide_cx16 = false;          // hosts whose emulator cannot run cmpxchg16b
  bool hide_pv_hypercalls = false; // hosts where a guest vmcall never returns
  bool tsc_deadline = false;       // KVM emulates the TSC-deadline timer: leaf 1 says so
  std::optional<std::uint32_t> tsc_khz;
};

// KVM's paravirtual feature bits (leaf 0x40000001 EAX) that rely on hypercalls.
inline constexpr std::uint32_t kKvmFeaturePvUnhalt = 1u << 7;
inline constexpr std::uint32_t kKvmFeaturePvTlbFlush = 1u << 9;
inline constexpr std::uint32_t kKvmFeaturePvSendIpi = 1u << 11;
inline constexpr std::uint32_t kKvmFeaturePvSchedYield = 1u << 13;
inline constexpr std::uint32_t kKvmFeatureHypercallMask =
    kKvmFeaturePvUnhalt | kKvmFeaturePvTlbFlush | kKvmFeaturePvSendIpi | kKvmFeaturePvSchedYield;

inline constexpr std::uint32_t kLeaf1EcxCx16 = 1u << 13;
inline constexpr std::uint32_t kLeaf1EcxHypervisor = 1u << 31;
inline constexpr std::uint32_t kLeaf1EcxTscDeadline = 1u << 24;
inline constexpr std::uint32_t kLeaf1EdxHtt = 1u << 28;
inline constexpr std::uint32_t kExt1EcxCmpLegacy = 1u << 1;

void apply_cpuid_fixups(std::vector<CpuidEntry>& table, const CpuidOptions& opts);

enum class CpuVendor { kIntel, kAmd, kOther };
CpuVendor cpu_vendor(const std::vector<CpuidEntry>& table);

// The entry for (function, index), or nullptr.
CpuidEntry* find_cpuid(std::vector<CpuidEntry>& table, std::uint32_t function, std::uint32_t index = 0);
const CpuidEntry* find_cpuid(const std::vector<CpuidEntry>& table, std::uint32_t function, std::uint32_t index = 0);

// The CPUID leaves 1 and 7.0 of the CPU kiln itself runs on (what nested-PVM hosts show guests).
std::vector<CpuidEntry> native_feature_leaves();

}  // namespace kiln::x86
