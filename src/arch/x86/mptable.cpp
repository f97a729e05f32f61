#include "arch/x86/mptable.h"

#include <algorithm>

namespace kiln::x86 {

namespace {

constexpr std::uint8_t kSpecRev = 4;
constexpr std::uint8_t kLapicVersion = 0x14;
constexpr std::uint8_t kIoapicVersion = 0x11;
constexpr std::uint8_t kIsaBusId = 0;
constexpr int kIsaIrqs = 16;

void put(std::vector<std::uint8_t>& b, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_at(std::vector<std::uint8_t>& b, std::size_t off, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void chars(std::vector<std::uint8_t>& b, const char* s, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(s[i]));
}
std::uint8_t neg_sum(const std::uint8_t* p, std::size_t n) {
  std::uint8_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s = static_cast<std::uint8_t>(s + p[i]);
  return static_cast<std::uint8_t>(-s);
}

}  // namespace

std::vector<std::uint8_t> build_mp_table(const MpTableConfig& c, std::uint32_t addr) {
  const std::uint32_t cpus = std::clamp<std::uint32_t>(c.cpu_count, 1, kMpMaxCpus);
  std::vector<std::uint8_t> b;
  // Floating pointer structure: 16 bytes, pointing at the table right behind it.
  chars(b, "_MP_", 4);
  put(b, addr + 16, 4);
  put(b, 1, 1);  // length in 16-byte units
  put(b, kSpecRev, 1);
  put(b, 0, 1);  // checksum
  put(b, 0, 5);  // feature bytes: 0 = a configuration table is present
  b[10] = neg_sum(b.data(), 16);

  const std::size_t t = b.size();
  chars(b, "PCMP", 4);
  put(b, 0, 2);  // base table length
  put(b, kSpecRev, 1);
  put(b, 0, 1);  // checksum
  chars(b, "KILN    ", 8);
  chars(b, "KILN VMM    ", 12);
  put(b, 0, 4);  // no OEM table
  put(b, 0, 2);
  put(b, 0, 2);  // entry count
  put(b, c.lapic_addr, 4);
  put(b, 0, 2);  // no extended table
  put(b, 0, 1);
  put(b, 0, 1);
  std::uint16_t entries = 0;

  for (std::uint32_t id = 0; id < cpus; ++id, ++entries) {
    put(b, 0, 1);  // processor
    put(b, id, 1);
    put(b, kLapicVersion, 1);
    put(b, id == 0 ? 0x3 : 0x1, 1);  // enabled, bootstrap processor
    put(b, 0x600, 4);                // CPU signature: family 6 (informational)
    put(b, 0x201, 4);                // feature flags: FPU, APIC
    put(b, 0, 8);
  }
  put(b, 1, 1);  // bus
  put(b, kIsaBusId, 1);
  chars(b, "ISA   ", 6);
  ++entries;
  put(b, 2, 1);  // I/O APIC
  put(b, c.ioapic_id, 1);
  put(b, kIoapicVersion, 1);
  put(b, 1, 1);  // enabled
  put(b, c.ioapic_addr, 4);
  ++entries;
  // ISA IRQ n reaches I/O APIC pin n: KVM's default GSI routing.
  for (int irq = 0; irq < kIsaIrqs; ++irq, ++entries) {
    put(b, 3, 1);  // I/O interrupt assignment
    put(b, 0, 1);  // INT (vectored)
    put(b, 0, 2);  // polarity and trigger conform to the bus
    put(b, kIsaBusId, 1);
    put(b, irq, 1);
    put(b, c.ioapic_id, 1);
    put(b, irq, 1);
  }
  // LINT0 ExtINT (the 8259), LINT1 NMI, on every processor.
  for (int lint = 0; lint < 2; ++lint, ++entries) {
    put(b, 4, 1);
    put(b, lint == 0 ? 3 : 1, 1);
    put(b, 0, 2);
    put(b, kIsaBusId, 1);
    put(b, 0, 1);
    put(b, 0xff, 1);
    put(b, lint, 1);
  }
  put_at(b, t + 4, b.size() - t, 2);
  put_at(b, t + 34, entries, 2);
  b[t + 7] = neg_sum(b.data() + t, b.size() - t);
  return b;
}

}  // namespace kiln::x86
