#include "arch/x86/mptable.h"

#include <algorithm>
#include <span>

#include "base/byte_writer.h"

namespace kiln::x86 {

namespace {

constexpr std::uint8_t kSpecRev = 4;
constexpr std::uint8_t kLapicVersion = 0x14;
constexpr std::uint8_t kIoapicVersion = 0x11;
constexpr std::uint8_t kIsaBusId = 0;
constexpr int kIsaIrqs = 16;

}  // namespace

std::vector<std::uint8_t> build_mp_table(const MpTableConfig& c, std::uint32_t addr) {
  const std::uint32_t cpus = std::clamp<std::uint32_t>(c.cpu_count, 1, kMpMaxCpus);
  std::vector<std::uint8_t> b;
  ByteWriter w(b);
  // Floating pointer structure: 16 bytes, pointing at the table right behind it.
  w.chars("_MP_", 4);
  w.u32(addr + 16);
  w.u8(1);  // length in 16-byte units
  w.u8(kSpecRev);
  w.u8(0);  // checksum
  w.zeros(5);  // feature bytes: 0 = a configuration table is present
  b[10] = static_cast<std::uint8_t>(-sum8(b));

  const std::size_t t = b.size();
  w.chars("PCMP", 4);
  w.u16(0);  // base table length
  w.u8(kSpecRev);
  w.u8(0);  // checksum
  w.chars("KILN", 8);
  w.chars("KILN VMM", 12);
  w.u32(0);  // no OEM table
  w.u16(0);
  w.u16(0);  // entry count
  w.u32(c.lapic_addr);
  w.u16(0);  // no extended table
  w.u8(0);
  w.u8(0);
  std::uint16_t entries = 0;

  for (std::uint32_t id = 0; id < cpus; ++id, ++entries) {
    w.u8(0);  // processor
    w.u8(id);
    w.u8(kLapicVersion);
    w.u8(id == 0 ? 0x3 : 0x1);  // enabled, bootstrap processor
    w.u32(0x600);               // CPU signature: family 6 (informational)
    w.u32(0x201);               // feature flags: FPU, APIC
    w.zeros(8);
  }
  w.u8(1);  // bus
  w.u8(kIsaBusId);
  w.chars("ISA", 6);
  ++entries;
  w.u8(2);  // I/O APIC
  w.u8(c.ioapic_id);
  w.u8(kIoapicVersion);
  w.u8(1);  // enabled
  w.u32(c.ioapic_addr);
  ++entries;
  // ISA IRQ n reaches I/O APIC pin n: KVM's default GSI routing.
  for (int irq = 0; irq < kIsaIrqs; ++irq, ++entries) {
    w.u8(3);  // I/O interrupt assignment
    w.u8(0);  // INT (vectored)
    w.u16(0);  // polarity and trigger conform to the bus
    w.u8(kIsaBusId);
    w.u8(irq);
    w.u8(c.ioapic_id);
    w.u8(irq);
  }
  // LINT0 ExtINT (the 8259), LINT1 NMI, on every processor.
  for (int lint = 0; lint < 2; ++lint, ++entries) {
    w.u8(4);
    w.u8(lint == 0 ? 3 : 1);
    w.u16(0);
    w.u8(kIsaBusId);
    w.u8(0);
    w.u8(0xff);
    w.u8(lint);
  }
  w.patch_le(t + 4, b.size() - t, 2);
  w.patch_le(t + 34, entries, 2);
  b[t + 7] = static_cast<std::uint8_t>(-sum8(std::span(b).subspan(t)));
  return b;
}

}  // namespace kiln::x86
