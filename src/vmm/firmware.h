#pragma once
// What a PC's firmware leaves in memory for the kernel: the MP table and the ACPI tables
// describing kiln's machine (its CPUs, interrupt controllers, devices and power registers).
#include <cstdint>
#include <vector>

#include "acpi/tables.h"
#include "base/error.h"
#include "memory/guest_memory.h"

namespace kiln {

struct FirmwareConfig {
  std::uint32_t vcpu_count = 1;
  std::vector<acpi::Bytes> dsdt_devices;  // the device manager's DSDT entries
  std::vector<acpi::McfgEntry> mcfg;      // PCI's ECAM, if the VM has PCI
};

// Writes both sets of tables into guest memory; returns the RSDP's address.
Result<std::uint64_t> write_firmware_tables(const GuestMemory& mem, const FirmwareConfig& config);

}  // namespace kiln
