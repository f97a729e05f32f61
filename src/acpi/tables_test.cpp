#include "acpi/tables.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace kiln::acpi {
namespace {

std::uint64_t le(const Bytes& b, std::size_t off, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | b.at(off + i);
  return v;
}

void expect_table(const Bytes& t, const char* sig) {
  ASSERT_GE(t.size(), kHeaderSize);
  EXPECT_EQ(std::memcmp(t.data(), sig, 4), 0);
  EXPECT_EQ(le(t, 4, 4), t.size());
  EXPECT_EQ(sum8(t), 0) << sig;
  EXPECT_EQ(std::memcmp(t.data() + 10, "KILN  ", 6), 0);
}

const PowerPorts kPorts{.sleep_control = 0x600, .sleep_status = 0x601, .reset = 0x602, .reset_value = 0x0f};

constexpr PciIntxRoute kIntx[] = {{1, 16}, {2, 17}};
std::vector<Bytes> pc_dsdt_terms() {
  return {*com_port_device("COM1", 1, 0x3f8, 4), *i8042_device(0x60, 0x64, 1), *rtc_device(0x70, 8),
          *pvpanic_device(0x505), *virtio_mmio_device(0, 0xd0000000, 0x1000, 5),
          *virtio_mmio_device(1, 0xd0001000, 0x1000, 17), *pci_host_bridge(0xc0000000, 0xcfffffff, kIntx),
          *ecam_reservation(0xe0000000, 0x100000), *sleep_state_s5(5)};
}

TEST(AcpiTables, RsdpChecksumsAndPointsAtTheXsdt) {
  const auto r = rsdp(0xe1234);
  ASSERT_EQ(r.size(), 36u);
  EXPECT_EQ(std::memcmp(r.data(), "RSD PTR ", 8), 0);
  EXPECT_EQ(sum8(std::span(r).first(20)), 0);
  EXPECT_EQ(sum8(r), 0);
  EXPECT_EQ(r[15], 2);
  EXPECT_EQ(le(r, 20, 4), 36u);
  EXPECT_EQ(le(r, 24, 8), 0xe1234u);
}

TEST(AcpiTables, FadtIsHardwareReducedWithPowerRegisters) {
  const auto f = fadt(0xe0040, kPorts, 0x32);
  expect_table(f, "FACP");
  ASSERT_EQ(f.size(), 276u);
  EXPECT_EQ(f[8], 6);                                // revision
  EXPECT_EQ(le(f, 40, 4), 0xe0040u);                 // DSDT
  EXPECT_EQ(le(f, 140, 8), 0xe0040u);                // X_DSDT
  EXPECT_NE(le(f, 112, 4) & (1u << 20), 0u);         // HW_REDUCED_ACPI
  EXPECT_NE(le(f, 112, 4) & (1u << 10), 0u);         // RESET_REG_SUP
  EXPECT_NE(le(f, 109, 2) & (1u << 1), 0u);          // an 8042 is present
  EXPECT_EQ(f[116], 1);                              // reset register in I/O space
  EXPECT_EQ(le(f, 120, 8), 0x602u);
  EXPECT_EQ(f[128], 0x0f);
  EXPECT_EQ(f[244], 1);
  EXPECT_EQ(le(f, 248, 8), 0x600u);                  // sleep control
  EXPECT_EQ(le(f, 260, 8), 0x601u);                  // sleep status
  EXPECT_EQ(le(f, 46, 2), 0u);                       // no SCI
  EXPECT_EQ(f[108], 0x32);                           // RTC century register
}

TEST(AcpiTables, MadtListsEveryCpuAndTheIoApic) {
  const auto m = madt({.cpu_count = 4});
  expect_table(m, "APIC");
  EXPECT_EQ(le(m, 36, 4), 0xfee00000u);
  std::size_t off = 44;
  int lapics = 0, ioapics = 0, nmis = 0;
  while (off < m.size()) {
    const std::uint8_t type = m[off], len = m[off + 1];
    ASSERT_GT(len, 0);
    if (type == 0) {
      EXPECT_EQ(m[off + 3], lapics);  // APIC id
      EXPECT_EQ(le(m, off + 4, 4), 1u);
      ++lapics;
    }
    if (type == 1) {
      EXPECT_EQ(le(m, off + 4, 4), 0xfec00000u);
      ++ioapics;
    }
    if (type == 4) ++nmis;
    off += len;
  }
  EXPECT_EQ(off, m.size());
  EXPECT_EQ(lapics, 4);
  EXPECT_EQ(ioapics, 1);
  EXPECT_EQ(nmis, 1);
}

TEST(AcpiTables, MadtUsesX2ApicEntriesPastApicId254) {
  const auto m = madt({.cpu_count = 256});
  expect_table(m, "APIC");
  EXPECT_EQ(m.size(), 44u + 255 * 8 + 16 + 12 + 6);
}

TEST(AcpiTables, McfgHasOneEntryPerSegment) {
  const std::array<McfgEntry, 1> e{McfgEntry{.ecam_base = 0xe0000000, .segment = 0, .start_bus = 0, .end_bus = 0}};
  const auto m = mcfg(e);
  expect_table(m, "MCFG");
  ASSERT_EQ(m.size(), 44u + 16);
  EXPECT_EQ(le(m, 44, 8), 0xe0000000u);
}

TEST(AcpiTables, ImageLaysOutRsdpXsdtAndTheTablesItLists) {
  const std::uint64_t base = 0xe0000;
  const auto img = build_acpi_tables({.madt = {.cpu_count = 2}, .power = kPorts, .dsdt_terms = pc_dsdt_terms()}, base);
  EXPECT_EQ(img.rsdp_addr, base);
  auto at = [&](std::uint64_t addr) { return img.bytes.data() + (addr - base); };
  const auto xsdt_addr = le(img.bytes, 24, 8);
  const Bytes x(at(xsdt_addr), at(xsdt_addr) + le(img.bytes, xsdt_addr - base + 4, 4));
  expect_table(x, "XSDT");
  ASSERT_EQ(x.size(), kHeaderSize + 2 * 8);  // FADT and MADT; no MCFG without PCI
  const auto fadt_addr = le(x, 36, 8);
  EXPECT_EQ(std::memcmp(at(fadt_addr), "FACP", 4), 0);
  EXPECT_EQ(std::memcmp(at(le(x, 44, 8)), "APIC", 4), 0);
  const auto dsdt_addr = le(img.bytes, fadt_addr - base + 140, 8);
  EXPECT_EQ(std::memcmp(at(dsdt_addr), "DSDT", 4), 0);
  EXPECT_EQ(dsdt_addr % 16, 0u);

  const auto with_mcfg = build_acpi_tables(
      {.madt = {}, .power = kPorts, .dsdt_terms = {}, .mcfg = {McfgEntry{.ecam_base = 0xe0000000}}}, base);
  EXPECT_EQ(le(with_mcfg.bytes, le(with_mcfg.bytes, 24, 8) - base + 4, 4), kHeaderSize + 3 * 8);
}

// The tables must pass a tool nobody here wrote: ACPICA's compiler and disassembler (Debian's
// acpica-tools). Each table is disassembled, the disassembly compiled again, and the bytes must
// come back the same (but for the checksum and the compiler id, which iasl stamps with its own).
class Iasl : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("iasl -v >/dev/null 2>&1") != 0) GTEST_FAIL() << "iasl not found: apt-get install acpica-tools";
    char tmpl[] = "/tmp/kiln-acpi-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  // Runs iasl with `args` in the scratch directory; returns its output, and its exit status in `st`.
  std::string iasl(const std::string& args, int& st) {
    const std::string cmd = "cd " + dir_ + " && iasl " + args + " 2>&1";
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) {
      st = -1;
      return {};
    }
    std::array<char, 4096> buf;
    while (std::fgets(buf.data(), buf.size(), p)) out += buf.data();
    st = ::pclose(p);
    return out;
  }
  void write(const std::string& file, const Bytes& b) {
    std::ofstream(dir_ + "/" + file, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  std::string read_text(const std::string& file) {
    std::ifstream f(dir_ + "/" + file);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  Bytes read_bytes(const std::string& file) {
    const std::string t = read_text(file);
    return Bytes(t.begin(), t.end());
  }
  static void expect_clean(const std::string& out, const std::string& what) {
    for (const char* bad : {"Warning", "Error ", "Invalid", "Unknown", "incorrect", "Remark"}) {
      if (std::string(bad) == "Error " && out.find(" 0 Errors") != std::string::npos &&
          out.find("Error ") == std::string::npos)
        continue;
      EXPECT_EQ(out.find(bad), std::string::npos) << bad << " in " << what << ":\n" << out;
    }
  }
  // Disassembles `table` (must be clean), compiles the disassembly back and compares.
  std::string round_trip(const Bytes& table, const std::string& name) {
    write(name + ".dat", table);
    int st = 0;
    const std::string dis = iasl("-d " + name + ".dat", st);
    EXPECT_EQ(st, 0) << dis;
    const std::string text = read_text(name + ".dsl");
    expect_clean(dis, "iasl -d's output");
    expect_clean(text, "the disassembly");
    std::filesystem::remove(dir_ + "/" + name + ".dat");
    const std::string comp = iasl(name + ".dsl", st);
    EXPECT_EQ(st, 0) << comp;
    EXPECT_NE(comp.find("0 Errors, 0 Warnings, 0 Remarks"), std::string::npos) << comp;
    Bytes again = read_bytes(name + ".aml");
    EXPECT_EQ(again.size(), table.size());
    if (again.size() == table.size()) {
      Bytes a = table;
      for (std::size_t i : {9, 28, 29, 30, 31, 32, 33, 34, 35}) a[i] = again[i] = 0;
      EXPECT_EQ(a, again) << name << " changed through iasl -d and back";
    }
    return text;
  }
  std::string dir_;
};

TEST_F(Iasl, EveryTableRoundTripsThroughTheDisassemblerAndCompiler) {
  const std::array<McfgEntry, 1> e{McfgEntry{.ecam_base = 0xe0000000, .end_bus = 0}};
  const std::pair<Bytes, const char*> tables[] = {
      {xsdt(std::array<std::uint64_t, 2>{0xe0200, 0xe0300}), "xsdt"},
      {fadt(0xe0400, kPorts), "facp"},
      {madt({.cpu_count = 4}), "apic"},
      {madt({.cpu_count = 300}), "apic2"},
      {mcfg(e), "mcfg"},
      {dsdt(pc_dsdt_terms()), "dsdt"},
  };
  for (const auto& [t, name] : tables) {
    SCOPED_TRACE(name);
    const auto text = round_trip(t, name);
    EXPECT_NE(text.find("KILN"), std::string::npos) << text;
  }
}

TEST_F(Iasl, RsdpMatchesWhatIaslCompilesFromItsFields) {
  // This iasl cannot disassemble a bare RSDP, so it compiles one from the fields kiln means,
  // computing both checksums itself.
  const std::string src =
      "[0008] Signature : \"RSD PTR \"\n[0001] Checksum : 00\n[0006] Oem ID : \"KILN  \"\n"
      "[0001] Revision : 02\n[0004] RSDT Address : 00000000\n[0004] Length : 00000024\n"
      "[0008] XSDT Address : 00000000000E0100\n[0001] Extended Checksum : 00\n[0003] Reserved : 000000\n";
  std::ofstream(dir_ + "/rsdp.asl") << src;
  int st = 0;
  const std::string out = iasl("rsdp.asl", st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_EQ(read_bytes("rsdp.aml"), rsdp(0xe0100));
}

TEST_F(Iasl, FadtAndMadtDecodeToWhatKilnMeant) {
  const auto ftext = round_trip(fadt(0xe0400, kPorts), "facp");
  for (const char* want : {"Hardware Reduced (V5) : 1", "Reset Register Supported (V2) : 1",
                           "8042 Present on ports 60/64 (V2) : 1", "Space ID : 01 [SystemIO]",
                           "Address : 0000000000000602", "Value to cause reset : 0F",
                           "Address : 0000000000000600", "Address : 0000000000000601"})
    EXPECT_NE(ftext.find(want), std::string::npos) << want << " missing from:\n" << ftext;
  const auto mtext = round_trip(madt({.cpu_count = 2}), "apic");
  for (const char* want : {"Local Apic ID : 01", "Processor Enabled : 1", "[I/O APIC]", "Address : FEC00000",
                           "[Local APIC NMI]", "Interrupt Input LINT : 01"})
    EXPECT_NE(mtext.find(want), std::string::npos) << want << " missing from:\n" << mtext;
}

TEST_F(Iasl, DsdtDecodesToTheDevicesKilnDescribes) {
  const auto text = round_trip(dsdt(pc_dsdt_terms()), "dsdt");
  for (const char* want : {"Device (_SB.COM1)", "EisaId (\"PNP0501\")", "IO (Decode16,", "0x03F8",
                           "IRQNoFlags ()", "{4}", "\"QEMU0001\"", "0x0505", "EisaId (\"PNP0303\")",
                           "EisaId (\"PNP0B00\")", "{8}", "Device (_SB.VR00)", "\"LNRO0005\"",
                           "Memory32Fixed (ReadWrite,", "0xD0001000", "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )",
                           "0x00000011,", "Device (_SB.PCI0)", "EisaId (\"PNP0A08\")",
                           "WordBusNumber (ResourceProducer, MinFixed, MaxFixed,",
                           "DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,",
                           "0xCFFFFFFF", "Name (_PRT, Package (0x02)", "0x0002FFFF", "EisaId (\"PNP0C02\")",
                           "Name (_S5, Package (0x02)"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << " missing from:\n" << text;
  }
}

}  // namespace
}  // namespace kiln::acpi
