#include "arch/x86/cpuid.h"

#include <cpuid.h>

#include <algorithm>
#include <bit>
#include <utility>

namespace kiln::x86 {

const CpuidEntry* find_cpuid(const std::vector<CpuidEntry>& table, std::uint32_t function, std::uint32_t index) {
  for (const auto& e : table) {
    if (e.function != function) continue;
    if ((e.flags & kCpuidFlagSignificantIndex) != 0 && e.index != index) continue;
    return &e;
  }
  return nullptr;
}

CpuidEntry* find_cpuid(std::vector<CpuidEntry>& table, std::uint32_t function, std::uint32_t index) {
  return const_cast<CpuidEntry*>(find_cpuid(std::as_const(table), function, index));
}

namespace {

constexpr std::uint32_t kIntelVendorEbx = 0x756e6547;  // "Genu"
constexpr std::uint32_t kAmdVendorEbx = 0x68747541;    // "Auth"

// Bits needed to hold ids 0..count-1.
std::uint32_t id_bits(std::uint32_t count) {
  return count <= 1 ? 0 : static_cast<std::uint32_t>(std::bit_width(count - 1));
}

void fix_topology_leaf(CpuidEntry& e, const CpuidOptions& o) {
  // One thread per core, every vCPU a core of one package.
  const std::uint32_t level = e.index;
  e.edx = o.vcpu_id;
  if (level == 0) {
    e.eax = 0;
    e.ebx = 1;
    e.ecx = 1u << 8;  // SMT level
  } else if (level == 1) {
    e.eax = id_bits(o.vcpu_count);
    e.ebx = o.vcpu_count;
    e.ecx = 2u << 8 | 1;  // core level
  } else {
    e.eax = e.ebx = 0;
    e.ecx = level;  // invalid level: type 0
  }
}

}  // namespace

CpuVendor cpu_vendor(const std::vector<CpuidEntry>& table) {
  for (const auto& e : table) {
    if (e.function != 0) continue;
    if (e.ebx == kIntelVendorEbx) return CpuVendor::kIntel;
    if (e.ebx == kAmdVendorEbx) return CpuVendor::kAmd;
  }
  return CpuVendor::kOther;
}

void apply_cpuid_fixups(std::vector<CpuidEntry>& table, const CpuidOptions& o) {
  const std::uint32_t count = std::clamp<std::uint32_t>(o.vcpu_count, 1, 255);
  bool intel = false, amd = false;
  if (auto* l0 = find_cpuid(table, 0)) {
    intel = l0->ebx == kIntelVendorEbx;
    amd = l0->ebx == kAmdVendorEbx;
  }

  for (auto& e : table) {
    switch (e.function) {
      case 0x1:
        e.ebx = (e.ebx & 0x0000ffff) | (count << 16) | (o.vcpu_id << 24);
        e.ecx |= kLeaf1EcxHypervisor;
        // Without the bit KVM refuses the LVT timer's TSC-deadline mode, and Linux falls back to
        // the one-shot LAPIC timer (QEMU and Firecracker set it too).
        if (o.tsc_deadline) e.ecx |= kLeaf1EcxTscDeadline;
        if (o.hide_cx16) e.ecx &= ~kLeaf1EcxCx16;
        if (count > 1) e.edx |= kLeaf1EdxHtt; else e.edx &= ~kLeaf1EdxHtt;
        break;
      case 0x4: {
        // Deterministic cache parameters: cores per package in 31:26, sharing in 25:14.
        const std::uint32_t cache_level = (e.eax >> 5) & 0x7;
        const std::uint32_t sharing = cache_level >= 3 ? count - 1 : 0;
        e.eax = (e.eax & 0x3fff) | ((sharing & 0xfff) << 14) | ((std::min<std::uint32_t>(count, 64) - 1) << 26);
        break;
      }
      case 0x6:
        // No thermal or power management MSRs are emulated.
        e.eax &= ~(1u << 0);  // digital temperature sensor
        e.ecx &= ~(1u << 3);  // energy performance bias
        break;
      case 0xa:
        e.eax = e.ebx = e.ecx = e.edx = 0;  // no virtual PMU
        break;
      // AMD's topology: every vCPU a core of one package (Linux derives the package from
      // 0x80000008 ECX and, with TOPOEXT, from 0x8000001E).
      case 0x80000001:
        if (amd && count > 1) e.ecx |= kExt1EcxCmpLegacy;
        break;
      case 0x80000008:
        if (amd) e.ecx = (e.ecx & ~0xf0ffu) | (id_bits(count) << 12) | ((count - 1) & 0xff);
        break;
      case 0x8000001d: {
        const std::uint32_t cache_level = (e.eax >> 5) & 0x7;
        const std::uint32_t sharing = cache_level >= 3 ? count - 1 : 0;
        if (amd) e.eax = (e.eax & ~(0xfffu << 14)) | ((sharing & 0xfff) << 14);
        break;
      }
      case 0x8000001e:
        if (amd) {
          e.eax = o.vcpu_id;                                // extended APIC id
          e.ebx = (e.ebx & ~0xffffu) | (o.vcpu_id & 0xff);  // one thread per core; core id
          e.ecx = 0;                                        // one node, node 0
        }
        break;
      case 0x40000001:
        if (o.hide_pv_hypercalls) e.eax &= ~kKvmFeatureHypercallMask;
        break;
      default:
        break;
    }
  }

  // The topology leaves are rewritten whole: KVM may list fewer subleaves than kiln describes
  // (one SMT level and no core level has been seen), and a missing core level makes Linux put
  // every vCPU in its own package.
  for (std::uint32_t leaf : {0xbu, 0x1fu}) {
    if (find_cpuid(table, leaf) == nullptr) continue;
    std::erase_if(table, [leaf](const CpuidEntry& e) { return e.function == leaf; });
    for (std::uint32_t level = 0; level < 3; ++level) {
      CpuidEntry e{leaf, level, kCpuidFlagSignificantIndex, 0, 0, 0, 0};
      fix_topology_leaf(e, o);
      table.push_back(e);
    }
  }

  // TSC frequency through leaf 0x15 (crystal at KVM's 1 GHz APIC bus, ratio giving the TSC), so
  // the guest skips calibration and its LAPIC timer period comes out right too.
  if (o.tsc_khz && intel) {
    auto* l0 = find_cpuid(table, 0);
    l0->eax = std::max<std::uint32_t>(l0->eax, 0x15);
    CpuidEntry* l15 = find_cpuid(table, 0x15);
    if (l15 == nullptr) {
      table.push_back(CpuidEntry{0x15, 0, 0, 0, 0, 0, 0});
      l15 = &table.back();
    }
    l15->eax = 1'000'000;
    l15->ebx = *o.tsc_khz;
    l15->ecx = 1'000'000'000;
    l15->edx = 0;
  }
}

std::vector<CpuidEntry> native_feature_leaves() {
  std::vector<CpuidEntry> out;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(1, 0, &a, &b, &c, &d)) out.push_back({1, 0, 0, a, b, c, d});
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) out.push_back({7, 0, kCpuidFlagSignificantIndex, a, b, c, d});
  return out;
}

}  // namespace kiln::x86
