#include "vmm/firmware.h"

#include "acpi/tables.h"
#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "devices/power.h"

namespace kiln {

Result<std::uint64_t> write_firmware_tables(const GuestMemory& mem, const FirmwareConfig& config) {
  // The I/O APIC's id register reads 0 in KVM's irqchip; the tables say the same.
  constexpr std::uint8_t kIoApicId = 0;
  const auto mp = x86::build_mp_table({.cpu_count = config.vcpu_count,
                                       .ioapic_id = kIoApicId,
                                       .ioapic_addr = static_cast<std::uint32_t>(x86::kIoApicAddr),
                                       .lapic_addr = static_cast<std::uint32_t>(x86::kLapicAddr)},
                                      static_cast<std::uint32_t>(x86::kMpTableAddr));
  if (x86::kMpTableAddr + mp.size() > x86::kAcpiTablesAddr)
    return plain_error("the MP table for {} vCPUs does not fit below the ACPI tables", config.vcpu_count);
  KILN_CHECK(mem.write(GuestAddress{x86::kMpTableAddr}, std::as_bytes(std::span(mp))));

  acpi::AcpiConfig ac;
  ac.madt = {.cpu_count = config.vcpu_count,
             .lapic_addr = static_cast<std::uint32_t>(x86::kLapicAddr),
             .ioapic_id = kIoApicId,
             .ioapic_addr = static_cast<std::uint32_t>(x86::kIoApicAddr)};
  // The FADT points at the power device's registers, and \_S5 gives the type it powers off on.
  ac.power = {.sleep_control = x86::kAcpiPowerPort + AcpiPowerDevice::kSleepControl,
              .sleep_status = x86::kAcpiPowerPort + AcpiPowerDevice::kSleepStatus,
              .reset = x86::kAcpiPowerPort + AcpiPowerDevice::kReset,
              .reset_value = AcpiPowerDevice::kResetValue};
  ac.dsdt_terms = config.dsdt_devices;
  KILN_ASSIGN(acpi::Bytes s5, acpi::sleep_state_s5(AcpiPowerDevice::kSleepTypeSoftOff));
  ac.dsdt_terms.push_back(std::move(s5));
  ac.rtc_century_reg = 0x32;  // kiln's CMOS RTC keeps the century there
  ac.mcfg = config.mcfg;
  const auto img = acpi::build_acpi_tables(ac, x86::kAcpiTablesAddr);
  if (x86::kAcpiTablesAddr + img.bytes.size() > x86::kAcpiTablesEnd)
    return plain_error("the ACPI tables for {} vCPUs ({} bytes) do not fit below 1 MiB", config.vcpu_count,
                       img.bytes.size());
  KILN_CHECK(mem.write(GuestAddress{x86::kAcpiTablesAddr}, std::as_bytes(std::span(img.bytes))));
  return img.rsdp_addr;
}

}  // namespace kiln
