#pragma once
// Architectural MSR numbers kiln sets at boot (the Intel SDM's names).
#include <cstdint>

namespace kiln::x86::msr {

inline constexpr std::uint32_t kSysenterCs = 0x174;
inline constexpr std::uint32_t kSysenterEsp = 0x175;
inline constexpr std::uint32_t kSysenterEip = 0x176;
inline constexpr std::uint32_t kStar = 0xc000'0081;
inline constexpr std::uint32_t kLstar = 0xc000'0082;
inline constexpr std::uint32_t kCstar = 0xc000'0083;
inline constexpr std::uint32_t kSyscallMask = 0xc000'0084;
inline constexpr std::uint32_t kKernelGsBase = 0xc000'0102;
inline constexpr std::uint32_t kTsc = 0x10;
inline constexpr std::uint32_t kMiscEnable = 0x1a0;
inline constexpr std::uint64_t kMiscEnableFastString = 1;
inline constexpr std::uint32_t kMtrrDefType = 0x2ff;
// AMD: HWCR bit 24 (TscFreqSel) says the TSC counts at the P0 frequency, as on real parts; without
// it Linux warns "[Firmware Bug]: TSC doesn't count with P0 frequency!".
inline constexpr std::uint32_t kAmdHwcr = 0xc001'0015;
inline constexpr std::uint64_t kAmdHwcrTscFreqSel = 1ull << 24;

}  // namespace kiln::x86::msr
