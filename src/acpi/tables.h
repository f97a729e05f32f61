#pragma once
// ACPI tables built in code (ACPI 6.5): RSDP, XSDT, FADT (hardware-reduced), MADT, DSDT and
// MCFG. Each builder returns the table's bytes with its length and checksum filled in;
// build_acpi_tables() lays a set of them out at a guest-physical address.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "acpi/aml.h"
#include "base/byte_writer.h"

namespace kiln::acpi {

using Bytes = aml::Bytes;

inline constexpr std::size_t kHeaderSize = 36;


// The registers of the hardware-reduced power interface (ACPI 4.8.3.7 and 4.8.3.6), as port I/O.
struct PowerPorts {
  std::uint16_t sleep_control = 0;  // a write with SLP_EN (bit 5) enters the sleep type in bits 4:2
  std::uint16_t sleep_status = 0;
  std::uint16_t reset = 0;          // a write of reset_value resets the machine
  std::uint8_t reset_value = 0;
};

Bytes rsdp(std::uint64_t xsdt_addr);
Bytes xsdt(std::span<const std::uint64_t> table_addrs);
// century_reg: the CMOS register holding the century (0 when the RTC has none).
Bytes fadt(std::uint64_t dsdt_addr, const PowerPorts& ports, std::uint8_t century_reg = 0);
struct MadtConfig {
  std::uint32_t cpu_count = 1;  // APIC ids and ACPI processor ids 0..count-1
  std::uint32_t lapic_addr = 0xfee0'0000;
  std::uint8_t ioapic_id = 0;
  std::uint32_t ioapic_addr = 0xfec0'0000;
};
Bytes madt(const MadtConfig& c);
// A DSDT holding `terms` (devices, scopes, names) in the root namespace.
Bytes dsdt(const std::vector<Bytes>& terms);
struct McfgEntry {
  std::uint64_t ecam_base = 0;
  std::uint16_t segment = 0;
  std::uint8_t start_bus = 0, end_bus = 0;
};
Bytes mcfg(std::span<const McfgEntry> entries);

// DSDT terms for the devices of a PC (an error only for arguments no PC device has, such as an
// IRQ past 15).
Result<Bytes> com_port_device(std::string_view name, std::uint32_t uid, std::uint16_t port, std::uint8_t irq);
Result<Bytes> pvpanic_device(std::uint16_t port);  // QEMU's ISA pvpanic (QEMU0001), which Linux's driver binds
Result<Bytes> i8042_device(std::uint16_t data_port, std::uint16_t cmd_port, std::uint8_t irq);
Result<Bytes> rtc_device(std::uint16_t port, std::uint8_t irq);  // PNP0B00: the CMOS RTC
// A virtio-mmio device (LNRO0005, which Linux's virtio_mmio driver binds through ACPI): its
// register window and its edge-triggered interrupt line.
// The PCI host bridge (PNP0A08, bus 0 only, segment 0): its BAR window and the routing of each
// device's INTA to a GSI (_PRT), and the ECAM range reserved as a motherboard resource (PNP0C02),
// which Linux wants before it uses the MCFG's ECAM.
struct PciIntxRoute {
  std::uint8_t device;
  std::uint32_t gsi;
};
Result<Bytes> pci_host_bridge(std::uint32_t window_start, std::uint32_t window_end,
                              std::span<const PciIntxRoute> intx);
Result<Bytes> ecam_reservation(std::uint32_t base, std::uint32_t size);
Result<Bytes> virtio_mmio_device(std::uint32_t uid, std::uint32_t base, std::uint32_t size, std::uint32_t gsi);
// Name (\_S5, Package () {slp_typ, 0}): the SLP_TYP the guest writes to sleep control for soft-off.
Result<Bytes> sleep_state_s5(std::uint8_t slp_typ);

// A set of tables placed from `base` upwards in one blob: the RSDP first, then the XSDT and the
// tables it lists (the DSDT through the FADT).
struct AcpiImage {
  std::uint64_t base = 0;
  std::uint64_t rsdp_addr = 0;
  Bytes bytes;
};
struct AcpiConfig {
  MadtConfig madt;
  PowerPorts power;
  std::uint8_t rtc_century_reg = 0;
  std::vector<Bytes> dsdt_terms;
  std::vector<McfgEntry> mcfg;  // no MCFG table when empty
};
AcpiImage build_acpi_tables(const AcpiConfig& config, std::uint64_t base);

}  // namespace kiln::acpi
