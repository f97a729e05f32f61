#pragma once
// An encoder for the small part of AML (ACPI Machine Language, ACPI 6.5 chapter 20) kiln's DSDT
// needs: names, integers, strings, packages, scopes, devices, methods that return a value, and
// resource templates. Each function returns the encoded bytes of one term; terms nest by value.
#include <cstdint>
#include <string_view>
#include <vector>

namespace kiln::acpi::aml {

using Bytes = std::vector<std::uint8_t>;

// PkgLength of a payload of `payload` bytes, followed by the payload (ACPI 20.2.4).
Bytes with_pkg_length(const Bytes& payload);
// A NameString: "\\_SB_.COM1", "_HID", "^PCI0"; each segment of 1-4 characters, padded with '_'.
Bytes name_string(std::string_view path);

Bytes integer(std::uint64_t v);  // the shortest of Zero/One/Byte/Word/DWord/QWord
Bytes string(std::string_view s);
// EISAID("PNP0501"): three letters and four hex digits, compressed into a DWord.
Bytes eisa_id(std::string_view id);

Bytes name(std::string_view path, const Bytes& value);
Bytes package(const std::vector<Bytes>& elements);
Bytes buffer(const Bytes& data);
Bytes scope(std::string_view path, const std::vector<Bytes>& terms);
Bytes device(std::string_view path, const std::vector<Bytes>& terms);
// Method(path, 0, NotSerialized) { Return (value) }
Bytes method_returning(std::string_view path, const Bytes& value);

// Resource descriptors (ACPI 6.4.2, 6.4.3), joined by resource_template().
Bytes io_port(std::uint16_t base, std::uint8_t length);  // IO (Decode16, base, base, 1, length)
Bytes irq_no_flags(std::uint8_t irq);                    // IRQNoFlags () {irq}
Bytes memory32_fixed(std::uint32_t base, std::uint32_t length);  // Memory32Fixed (ReadWrite, ...)
// Interrupt (ResourceConsumer, Edge or Level, ActiveHigh, Exclusive) {gsi}
Bytes extended_interrupt(std::uint32_t gsi, bool level_triggered);
// Buffer holding the descriptors and the end tag.
Bytes resource_template(const std::vector<Bytes>& descriptors);

}  // namespace kiln::acpi::aml
