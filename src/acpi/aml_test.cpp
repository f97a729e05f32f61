#include "acpi/aml.h"

#include <gtest/gtest.h>

namespace kiln::acpi::aml {
namespace {

Bytes str_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// The bytes of a term that must have encoded.
Bytes ok(const Term& t) {
  EXPECT_TRUE(t) << t.error().message();
  return t.value_or(Bytes{});
}
// The message of a term that must have failed.
std::string fails(const Term& t) {
  EXPECT_FALSE(t);
  return t ? std::string() : t.error().message();
}

TEST(Aml, PkgLengthCountsItselfAndGrowsPast63Bytes) {
  EXPECT_EQ(ok(with_pkg_length(Bytes(10, 0xaa))).front(), 11);
  EXPECT_EQ(ok(with_pkg_length(Bytes(62, 0))).size(), 63u);
  EXPECT_EQ(ok(with_pkg_length(Bytes(62, 0))).front(), 63);
  // 63 payload bytes need two length bytes: 65 in all = 0x41, 0x04.
  const auto two = ok(with_pkg_length(Bytes(63, 0)));
  ASSERT_EQ(two.size(), 65u);
  EXPECT_EQ(two[0], 0x41);
  EXPECT_EQ(two[1], 0x04);
  // 5000 payload bytes: 5003 in all, three length bytes.
  const auto three = ok(with_pkg_length(Bytes(5000, 0)));
  ASSERT_EQ(three.size(), 5003u);
  EXPECT_EQ(three[0], 0x80 | (5003 & 0xf));
  EXPECT_EQ(three[1], (5003 >> 4) & 0xff);
  EXPECT_EQ(three[2], 5003 >> 12);
}

TEST(Aml, NameStrings) {
  EXPECT_EQ(name_string("_HID"), str_bytes("_HID"));
  EXPECT_EQ(name_string("_S5"), str_bytes("_S5_"));
  Bytes dual{'\\', 0x2e};
  const auto segs = str_bytes("_SB_COM1");
  dual.insert(dual.end(), segs.begin(), segs.end());
  EXPECT_EQ(name_string("\\_SB_.COM1"), dual);
  EXPECT_EQ(ok(name_string("\\_SB.PCI0.ISA")).at(1), 0x2f);  // multi-name prefix
  EXPECT_EQ(ok(name_string("\\_SB.PCI0.ISA")).at(2), 3);
  EXPECT_NE(fails(name_string("toolong")).find("'toolong' in 'toolong' is not a name segment"), std::string::npos);
  EXPECT_NE(fails(name_string("1ABC")).find("not a name segment"), std::string::npos);
  EXPECT_NE(fails(name_string("ab")).find("not a name segment"), std::string::npos);
  // A bad name deep inside a term is the whole term's error.
  EXPECT_NE(fails(device("COM1", {name("_UID", integer(1)), name("bad!", integer(2))})).find("'bad!'"),
            std::string::npos);
}

TEST(Aml, IntegersUseTheShortestEncoding) {
  EXPECT_EQ(integer(0), Bytes{0x00});
  EXPECT_EQ(integer(1), Bytes{0x01});
  EXPECT_EQ(integer(0x20), (Bytes{0x0a, 0x20}));
  EXPECT_EQ(integer(0x1234), (Bytes{0x0b, 0x34, 0x12}));
  EXPECT_EQ(integer(0x12345678), (Bytes{0x0c, 0x78, 0x56, 0x34, 0x12}));
  EXPECT_EQ(integer(1ull << 40), (Bytes{0x0e, 0, 0, 0, 0, 0, 1, 0, 0}));
}

TEST(Aml, EisaIdCompressesAsAcpiSpecifies) {
  // EISAID ("PNP0501") is 0x0105D041 in every ASL compiler's output.
  EXPECT_EQ(eisa_id("PNP0501"), (Bytes{0x0c, 0x41, 0xd0, 0x05, 0x01}));
  EXPECT_NE(fails(eisa_id("pnp0501")).find("capital letters"), std::string::npos);
  EXPECT_NE(fails(eisa_id("PNP05")).find("seven characters"), std::string::npos);
  EXPECT_NE(fails(eisa_id("PNP05G1")).find("hex digits"), std::string::npos);
}

TEST(Aml, NamedPackage) {
  // Name (_S5, Package () {5, 0})
  EXPECT_EQ(name("_S5", package({integer(5), integer(0)})),
            (Bytes{0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00}));
}

TEST(Aml, StringsAreNulTerminated) {
  EXPECT_EQ(string("AB"), (Bytes{0x0d, 'A', 'B', 0}));
  EXPECT_NE(fails(string(std::string_view("a\0b", 3))).find("7-bit ASCII"), std::string::npos);
  EXPECT_NE(fails(irq_no_flags(16)).find("ISA IRQs are 0-15"), std::string::npos);
  std::vector<Term> many(256, integer(0));
  EXPECT_NE(fails(package(many)).find("at most 255"), std::string::npos);
}

TEST(Aml, ResourceTemplateWithIoAndIrq) {
  const auto rt = resource_template({io_port(0x3f8, 8), irq_no_flags(4)});
  // Buffer: op, PkgLength, BufferSize (byte), 8 + 3 + 2 bytes of descriptors and end tag.
  const Bytes expect{0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
                     0x22, 0x10, 0x00, 0x79, 0x00};
  EXPECT_EQ(rt, expect);
}

TEST(Aml, LargeResourceDescriptors) {
  EXPECT_EQ(memory32_fixed(0xd0000000, 0x1000),
            (Bytes{0x86, 9, 0, 1, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00}));
  EXPECT_EQ(extended_interrupt(5, false), (Bytes{0x89, 6, 0, 0x03, 1, 5, 0, 0, 0}));
  EXPECT_EQ(ok(extended_interrupt(5, true)).at(3), 0x01);
}

TEST(Aml, DeviceWrapsItsTerms) {
  const auto d = ok(device("COM1", {name("_UID", integer(1))}));
  EXPECT_EQ(d[0], 0x5b);
  EXPECT_EQ(d[1], 0x82);
  EXPECT_EQ(d[2], d.size() - 2);  // PkgLength covers everything after the opcode
}

}  // namespace
}  // namespace kiln::acpi::aml
