#pragma once
// Where kiln puts things in low guest memory at boot (the shape Firecracker and QEMU use).
#include <cstdint>

namespace kiln::x86 {

inline constexpr std::uint64_t kGdtAddr = 0x500;
inline constexpr std::uint64_t kIdtAddr = 0x520;
inline constexpr std::uint64_t kPvhStartInfoAddr = 0x6000;  // hvm_start_info, modlist, memmap
inline constexpr std::uint64_t kZeroPageAddr = 0x7000;      // Linux boot_params
inline constexpr std::uint64_t kBootStackTop = 0x8ff0;
inline constexpr std::uint64_t kPml4Addr = 0x9000;
inline constexpr std::uint64_t kPdptAddr = 0xa000;
inline constexpr std::uint64_t kPdAddr = 0xb000;            // four page directories: 4 GiB identity map
inline constexpr std::uint64_t kCmdlineAddr = 0x20000;
inline constexpr std::uint64_t kCmdlineMax = 0x10000;       // bytes, including the terminating NUL
inline constexpr std::uint64_t kEbdaStart = 0x9fc00;        // RAM below this is usable, [EBDA, 1 MiB) is not
inline constexpr std::uint64_t kMpTableAddr = kEbdaStart;   // MP floating pointer and table: the EBDA's first KiB
inline constexpr std::uint64_t kAcpiTablesAddr = 0xe0000;   // RSDP and tables: the BIOS area the RSDP scan covers
inline constexpr std::uint64_t kAcpiTablesEnd = 0x100000;
inline constexpr std::uint64_t kHighMemStart = 0x100000;    // 1 MiB
inline constexpr std::uint64_t kBzImageLoadAddr = 0x100000; // protected-mode kernel of a bzImage

// x86 legacy ports kiln's devices sit on.
inline constexpr std::uint16_t kCom1Port = 0x3f8;
inline constexpr std::uint8_t kCom1Irq = 4;
inline constexpr std::uint16_t kI8042Port = 0x60;  // data 0x60, command/status 0x64
inline constexpr std::uint8_t kI8042Irq = 1;        // the keyboard's
inline constexpr std::uint16_t kRtcPort = 0x70;
inline constexpr std::uint8_t kRtcIrq = 8;
inline constexpr std::uint16_t kBootTimerPort = 0x3f0;   // writes of 123 mark "boot complete" (Firecracker's value)
inline constexpr std::uint16_t kDebugExitPort = 0xf4;    // a write ends kiln with the value as exit status
inline constexpr std::uint16_t kPvPanicPort = 0x505;     // QEMU's ISA pvpanic port
inline constexpr std::uint16_t kAcpiPowerPort = 0x600;   // ACPI sleep control, sleep status, reset
// Where devices that are not a PC's legacy ones get their registers (virtio-mmio) and interrupts:
// a window in the MMIO hole, and the IOAPIC's pins past the ISA IRQs kiln's own devices use.
inline constexpr std::uint64_t kDeviceMmioStart = 0xd000'0000;
inline constexpr std::uint64_t kDeviceMmioEnd = 0xe000'0000;
inline constexpr std::uint32_t kDeviceGsiStart = 5;
inline constexpr std::uint32_t kDeviceGsiEnd = 24;  // the IOAPIC's 24 pins
inline constexpr std::uint64_t kIoApicAddr = 0xfec0'0000;
inline constexpr std::uint64_t kLapicAddr = 0xfee0'0000;

inline constexpr std::uint64_t kTssAddr = 0xfffb'd000;   // KVM_SET_TSS_ADDR: three pages below the IOAPIC
inline constexpr std::uint64_t kIdentityMapAddr = 0xfffb'c000;

}  // namespace kiln::x86
