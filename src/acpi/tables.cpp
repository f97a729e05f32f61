#include "acpi/tables.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace kiln::acpi {

namespace {

constexpr char kOemId[] = "KILN  ";       // 6 bytes
constexpr char kOemTableId[] = "KILNVMM ";  // 8 bytes
constexpr char kCreatorId[] = "KILN";       // 4 bytes
constexpr std::uint32_t kOemRevision = 1;
constexpr std::uint32_t kCreatorRevision = 1;

// A Generic Address Structure for a byte-wide I/O port (or all zeros when port is 0).
void io_gas(ByteWriter& w, std::uint16_t port) {
  if (port == 0) return w.zeros(12);
  w.u8(1);  // system I/O space
  w.u8(8);  // register bit width
  w.u8(0);  // bit offset
  w.u8(1);  // byte access
  w.u64(port);
}

Bytes header(std::string_view signature, std::uint8_t revision) {
  Bytes b;
  ByteWriter w(b);
  w.chars(signature, 4);
  w.u32(0);  // length, set by finish()
  w.u8(revision);
  w.u8(0);  // checksum, set by finish()
  w.chars(kOemId, 6);
  w.chars(kOemTableId, 8);
  w.u32(kOemRevision);
  w.chars(kCreatorId, 4);
  w.u32(kCreatorRevision);
  return b;
}

Bytes finish(Bytes b) {
  ByteWriter(b).patch_le(4, b.size(), 4);
  b[9] = 0;
  b[9] = static_cast<std::uint8_t>(-sum8(b));
  return b;
}

}  // namespace

Bytes rsdp(std::uint64_t xsdt_addr) {
  Bytes b;
  ByteWriter w(b);
  w.chars("RSD PTR ", 8);
  w.u8(0);  // checksum of the first 20 bytes
  w.chars(kOemId, 6);
  w.u8(2);   // revision: ACPI 2.0 and later (XSDT)
  w.u32(0);  // no RSDT
  w.u32(36);
  w.u64(xsdt_addr);
  w.u8(0);  // extended checksum of all 36 bytes
  w.zeros(3);
  b[8] = static_cast<std::uint8_t>(-sum8(std::span(b).first(20)));
  b[32] = static_cast<std::uint8_t>(-sum8(b));
  return b;
}

Bytes xsdt(std::span<const std::uint64_t> table_addrs) {
  Bytes b = header("XSDT", 1);
  ByteWriter w(b);
  for (auto a : table_addrs) w.u64(a);
  return finish(std::move(b));
}

Bytes fadt(std::uint64_t dsdt_addr, const PowerPorts& ports, std::uint8_t century_reg) {
  // Revision 6: a hardware-reduced platform (no PM1 blocks, no SCI, no FACS), powered off and
  // reset through the sleep control and reset registers.
  constexpr std::uint32_t kFlagPowerButtonIsDevice = 1u << 4, kFlagSleepButtonIsDevice = 1u << 5,
                          kFlagResetRegSupported = 1u << 10, kFlagHardwareReduced = 1u << 20;
  constexpr std::uint16_t kBootArch8042 = 1u << 1, kBootArchNoVga = 1u << 2;
  Bytes b = header("FACP", 6);
  ByteWriter w(b);
  w.u32(0);  // FIRMWARE_CTRL: no FACS
  w.u32(dsdt_addr <= 0xffff'ffff ? dsdt_addr : 0);
  w.u8(0);   // reserved
  w.u8(0);   // preferred PM profile: unspecified
  w.u16(0);  // SCI_INT: none on a hardware-reduced platform
  w.u32(0);  // SMI_CMD: no SMM, ACPI is always on
  w.zeros(4);   // ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
  w.zeros(32);  // PM1a/b event and control, PM2 control, PM timer, GPE0/1 blocks
  w.zeros(8);   // their lengths, GPE1_BASE, CST_CNT
  w.zeros(8);   // P_LVL2/3 latencies, flush size and stride
  w.zeros(4);   // duty offset and width, RTC day/month alarm
  w.u8(century_reg);
  w.u16(kBootArch8042 | kBootArchNoVga);
  w.u8(0);
  w.u32(kFlagPowerButtonIsDevice | kFlagSleepButtonIsDevice | (ports.reset ? kFlagResetRegSupported : 0) |
        kFlagHardwareReduced);
  io_gas(w, ports.reset);
  w.u8(ports.reset_value);
  w.u16(0);  // ARM boot flags
  w.u8(5);   // FADT minor version: 6.5
  w.u64(0);  // X_FIRMWARE_CTRL
  w.u64(dsdt_addr);
  w.zeros(12 * 8);  // X_PM1a/b event and control, X_PM2 control, X_PM timer, X_GPE0/1 blocks
  io_gas(w, ports.sleep_control);
  io_gas(w, ports.sleep_status);
  w.chars("KILN", 8);  // hypervisor vendor identity
  return finish(std::move(b));
}

Bytes madt(const MadtConfig& c) {
  constexpr std::uint32_t kPcAtCompat = 1;  // KVM's irqchip includes the dual 8259
  Bytes b = header("APIC", 5);
  ByteWriter w(b);
  w.u32(c.lapic_addr);
  w.u32(kPcAtCompat);
  for (std::uint32_t id = 0; id < c.cpu_count; ++id) {
    if (id < 255) {
      w.u8(0);  // processor local APIC
      w.u8(8);
      w.u8(id);  // ACPI processor UID
      w.u8(id);  // APIC id
      w.u32(1);  // enabled
    } else {
      w.u8(9);  // processor local x2APIC
      w.u8(16);
      w.u16(0);
      w.u32(id);
      w.u32(1);
      w.u32(id);
    }
  }
  w.u8(1);  // I/O APIC
  w.u8(12);
  w.u8(c.ioapic_id);
  w.u8(0);
  w.u32(c.ioapic_addr);
  w.u32(0);  // GSI base
  w.u8(4);   // local APIC NMI: LINT1 of every processor
  w.u8(6);
  w.u8(0xff);
  w.u16(0);  // conforming polarity and trigger
  w.u8(1);
  return finish(std::move(b));
}

Bytes dsdt(const std::vector<Bytes>& terms) {
  Bytes b = header("DSDT", 2);  // revision 2: 64-bit integers
  ByteWriter w(b);
  for (const auto& t : terms) w.bytes(t);
  return finish(std::move(b));
}

Bytes mcfg(std::span<const McfgEntry> entries) {
  Bytes b = header("MCFG", 1);
  ByteWriter w(b);
  w.zeros(8);
  for (const auto& e : entries) {
    w.u64(e.ecam_base);
    w.u16(e.segment);
    w.u8(e.start_bus);
    w.u8(e.end_bus);
    w.u32(0);
  }
  return finish(std::move(b));
}

Result<Bytes> com_port_device(std::string_view name, std::uint32_t uid, std::uint16_t port, std::uint8_t irq) {
  using namespace aml;
  return device(std::string("_SB_.") + std::string(name),
                {aml::name("_HID", eisa_id("PNP0501")), aml::name("_UID", integer(uid)),
                 aml::name("_STA", integer(0xf)),
                 aml::name("_CRS", resource_template({io_port(port, 8), irq_no_flags(irq)}))});
}

Result<Bytes> pvpanic_device(std::uint16_t port) {
  using namespace aml;
  return device("_SB_.PEVT", {aml::name("_HID", string("QEMU0001")), aml::name("_STA", integer(0xf)),
                                aml::name("_CRS", resource_template({io_port(port, 1)}))});
}

Result<Bytes> i8042_device(std::uint16_t data_port, std::uint16_t cmd_port, std::uint8_t irq) {
  using namespace aml;
  return device("_SB_.PS2K",
                {aml::name("_HID", eisa_id("PNP0303")), aml::name("_STA", integer(0xf)),
                 aml::name("_CRS", resource_template({io_port(data_port, 1), io_port(cmd_port, 1), irq_no_flags(irq)}))});
}

Result<Bytes> rtc_device(std::uint16_t port, std::uint8_t irq) {
  using namespace aml;
  return device("_SB_.RTC0", {aml::name("_HID", eisa_id("PNP0B00")), aml::name("_STA", integer(0xf)),
                              aml::name("_CRS", resource_template({io_port(port, 2), irq_no_flags(irq)}))});
}

Result<Bytes> pci_host_bridge(std::uint32_t window_start, std::uint32_t window_end,
                              std::span<const PciIntxRoute> intx) {
  using namespace aml;
  std::vector<Term> prt;
  for (const auto& r : intx)
    prt.push_back(package({integer((std::uint64_t{r.device} << 16) | 0xffff), integer(0), integer(0), integer(r.gsi)}));
  return device("_SB_.PCI0",
                {aml::name("_HID", eisa_id("PNP0A08")), aml::name("_CID", eisa_id("PNP0A03")),
                 aml::name("_SEG", integer(0)), aml::name("_BBN", integer(0)), aml::name("_UID", integer(0)),
                 aml::name("_CRS", resource_template({word_bus_number(0, 0), io_port(0xcf8, 8),
                                                      dword_memory(window_start, window_end)})),
                 aml::name("_PRT", package(prt))});
}

Result<Bytes> ecam_reservation(std::uint32_t base, std::uint32_t size) {
  using namespace aml;
  return device("_SB_.MRES", {aml::name("_HID", eisa_id("PNP0C02")), aml::name("_UID", integer(1)),
                              aml::name("_CRS", resource_template({memory32_fixed(base, size)}))});
}

Result<Bytes> virtio_mmio_device(std::uint32_t uid, std::uint32_t base, std::uint32_t size, std::uint32_t gsi) {
  using namespace aml;
  if (uid > 0xff) return plain_error("virtio-mmio device {}: at most 256 have DSDT names", uid);
  return device(fmt::format("_SB_.VR{:02X}", uid),
                {aml::name("_HID", string("LNRO0005")), aml::name("_UID", integer(uid)), aml::name("_CCA", integer(1)),
                 aml::name("_CRS", resource_template({memory32_fixed(base, size), extended_interrupt(gsi, false)}))});
}

Result<Bytes> sleep_state_s5(std::uint8_t slp_typ) {
  return aml::name("_S5_", aml::package({aml::integer(slp_typ), aml::integer(0)}));
}

AcpiImage build_acpi_tables(const AcpiConfig& config, std::uint64_t base) {
  AcpiImage img;
  img.base = base;
  auto place = [&](const Bytes& t) {
    while (img.bytes.size() % 16 != 0) img.bytes.push_back(0);
    const std::uint64_t at = base + img.bytes.size();
    img.bytes.insert(img.bytes.end(), t.begin(), t.end());
    return at;
  };
  // The RSDP comes first but points at the XSDT, which is placed last (after the tables it
  // lists): its 36 bytes are kept free and written at the end.
  img.bytes.resize(36);
  const std::uint64_t dsdt_addr = place(dsdt(config.dsdt_terms));
  const std::uint64_t fadt_addr = place(fadt(dsdt_addr, config.power, config.rtc_century_reg));
  std::vector<std::uint64_t> listed{fadt_addr, place(madt(config.madt))};
  if (!config.mcfg.empty()) listed.push_back(place(mcfg(config.mcfg)));
  const Bytes r = rsdp(place(xsdt(listed)));
  std::copy(r.begin(), r.end(), img.bytes.begin());
  img.rsdp_addr = base;
  return img;
}

}  // namespace kiln::acpi
