#pragma once
// An encoder for the small part of AML (ACPI Machine Language, ACPI 6.5 chapter 20) kiln's DSDT
// needs: names, integers, strings, packages, scopes, devices, methods that return a value, and
// resource templates. Each function returns the encoded bytes of one term, or an error naming what
// is wrong with its input (a bad name, a string that is not ASCII ...); terms nest by value, and a
// term built from an erroneous one carries that error up, so only the outermost is checked.
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace kiln::acpi::aml {

using Bytes = std::vector<std::uint8_t>;
using Term = Result<Bytes>;

// PkgLength of a payload of `payload` bytes, followed by the payload (ACPI 20.2.4).
Term with_pkg_length(const Bytes& payload);
// A NameString: "\\_SB_.COM1", "_HID", "^PCI0"; each segment of 1-4 characters, padded with '_'.
Term name_string(std::string_view path);

Term integer(std::uint64_t v);  // the shortest of Zero/One/Byte/Word/DWord/QWord
Term string(std::string_view s);
// EISAID("PNP0501"): three letters and four hex digits, compressed into a DWord.
Term eisa_id(std::string_view id);

Term name(std::string_view path, const Term& value);
Term package(const std::vector<Term>& elements);
Term buffer(const Bytes& data);
Term scope(std::string_view path, const std::vector<Term>& terms);
Term device(std::string_view path, const std::vector<Term>& terms);
// Method(path, 0, NotSerialized) { Return (value) }
Term method_returning(std::string_view path, const Term& value);

// Resource descriptors (ACPI 6.4.2, 6.4.3), joined by resource_template().
Term io_port(std::uint16_t base, std::uint8_t length);  // IO (Decode16, base, base, 1, length)
Term irq_no_flags(std::uint8_t irq);                    // IRQNoFlags () {irq}
Term memory32_fixed(std::uint32_t base, std::uint32_t length);  // Memory32Fixed (ReadWrite, ...)
// Interrupt (ResourceConsumer, Edge or Level, ActiveHigh, Exclusive) {gsi}
Term extended_interrupt(std::uint32_t gsi, bool level_triggered);
// A bridge's windows (ACPI 6.4.3.5): WordBusNumber (ResourceProducer, MinFixed, MaxFixed, ...)
// and DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, ...).
Term word_bus_number(std::uint16_t min, std::uint16_t max);
Term dword_memory(std::uint32_t min, std::uint32_t max);
// Buffer holding the descriptors and the end tag.
Term resource_template(const std::vector<Term>& descriptors);

}  // namespace kiln::acpi::aml
