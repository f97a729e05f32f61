#include "acpi/aml.h"

#include <optional>

#include "base/byte_writer.h"

namespace kiln::acpi::aml {

namespace {

constexpr std::uint8_t kZeroOp = 0x00, kOneOp = 0x01, kNameOp = 0x08, kBytePrefix = 0x0a, kWordPrefix = 0x0b,
                       kDWordPrefix = 0x0c, kStringPrefix = 0x0d, kQWordPrefix = 0x0e, kScopeOp = 0x10,
                       kBufferOp = 0x11, kPackageOp = 0x12, kMethodOp = 0x14, kReturnOp = 0xa4, kExtOpPrefix = 0x5b,
                       kDeviceOp = 0x82, kRootChar = '\\', kParentPrefix = '^', kDualNamePrefix = 0x2e,
                       kMultiNamePrefix = 0x2f;

void append(Bytes& out, const Bytes& b) { out.insert(out.end(), b.begin(), b.end()); }

void append_le(Bytes& out, std::uint64_t v, int bytes) { ByteWriter(out).le(v, bytes); }

bool lead_char(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
bool name_char(char c) { return lead_char(c) || (c >= '0' && c <= '9'); }

Term op_with_body(std::initializer_list<std::uint8_t> op, const Bytes& body) {
  Bytes out(op);
  KILN_ASSIGN(const Bytes length_and_body, with_pkg_length(body));
  append(out, length_and_body);
  return out;
}

// The terms' bytes one after the other, or the first error among them.
Term joined(const std::vector<Term>& terms) {
  Bytes out;
  for (const auto& t : terms) {
    if (!t) return std::unexpected(t.error());
    append(out, *t);
  }
  return out;
}

}  // namespace

Term with_pkg_length(const Bytes& payload) {
  // The encoded length counts the PkgLength bytes themselves.
  const std::size_t n = payload.size();
  Bytes out;
  if (n + 1 <= 0x3f) {
    out.push_back(static_cast<std::uint8_t>(n + 1));
  } else {
    int extra = 1;
    while (extra < 3 && n + 1 + extra >= (std::size_t{1} << (4 + 8 * extra))) ++extra;
    const std::size_t total = n + 1 + extra;
    if (total >= (std::size_t{1} << (4 + 8 * extra))) return plain_error("AML: a package of {} bytes is longer than PkgLength can say (256 MiB)", n);
    out.push_back(static_cast<std::uint8_t>((extra << 6) | (total & 0xf)));
    for (int i = 0; i < extra; ++i) out.push_back(static_cast<std::uint8_t>(total >> (4 + 8 * i)));
  }
  append(out, payload);
  return out;
}

Term name_string(std::string_view path) {
  const std::string_view whole = path;
  Bytes out;
  while (!path.empty() && (path.front() == kRootChar || path.front() == kParentPrefix)) {
    out.push_back(static_cast<std::uint8_t>(path.front()));
    path.remove_prefix(1);
  }
  std::vector<std::string_view> segs;
  while (!path.empty()) {
    const auto dot = path.find('.');
    segs.push_back(path.substr(0, dot));
    path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
  }
  if (segs.empty()) {
    out.push_back(0);  // NullName
    return out;
  }
  if (segs.size() == 2) out.push_back(kDualNamePrefix);
  if (segs.size() > 2) {
    if (segs.size() > 255) return plain_error("AML: the name path '{}' has more than 255 segments", whole);
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<std::uint8_t>(segs.size()));
  }
  for (auto s : segs) {
    if (s.empty() || s.size() > 4 || !lead_char(s[0]))
      return plain_error("AML: '{}' in '{}' is not a name segment (1-4 of A-Z, 0-9, _; not a digit first)", s, whole);
    for (std::size_t i = 0; i < 4; ++i) {
      const char c = i < s.size() ? s[i] : '_';
      if (!name_char(c))
        return plain_error("AML: '{}' in '{}' is not a name segment (1-4 of A-Z, 0-9, _; not a digit first)", s, whole);
      out.push_back(static_cast<std::uint8_t>(c));
    }
  }
  return out;
}

Term integer(std::uint64_t v) {
  if (v == 0) return Bytes{kZeroOp};
  if (v == 1) return Bytes{kOneOp};
  Bytes out;
  if (v <= 0xff) {
    out.push_back(kBytePrefix);
    append_le(out, v, 1);
  } else if (v <= 0xffff) {
    out.push_back(kWordPrefix);
    append_le(out, v, 2);
  } else if (v <= 0xffff'ffff) {
    out.push_back(kDWordPrefix);
    append_le(out, v, 4);
  } else {
    out.push_back(kQWordPrefix);
    append_le(out, v, 8);
  }
  return out;
}

Term string(std::string_view s) {
  Bytes out{kStringPrefix};
  for (char c : s) {
    if (c == 0 || static_cast<unsigned char>(c) > 0x7f)
      return plain_error("AML: strings are 7-bit ASCII without NUL; byte {:#04x} is not", static_cast<unsigned char>(c));
    out.push_back(static_cast<std::uint8_t>(c));
  }
  out.push_back(0);
  return out;
}

Term eisa_id(std::string_view id) {
  auto hex = [](char c) -> std::optional<std::uint32_t> {
    if (c >= '0' && c <= '9') return static_cast<std::uint32_t>(c - '0');
    if (c >= 'A' && c <= 'F') return static_cast<std::uint32_t>(c - 'A' + 10);
    return std::nullopt;
  };
  if (id.size() != 7) return plain_error("AML: EISAID '{}': seven characters, such as PNP0501", id);
  std::uint32_t v = 0;
  for (int i = 0; i < 3; ++i) {
    if (id[i] < 'A' || id[i] > 'Z') return plain_error("AML: EISAID '{}': three capital letters first", id);
    v = (v << 5) | static_cast<std::uint32_t>(id[i] - 'A' + 1);
  }
  for (int i = 3; i < 7; ++i) {
    const auto d = hex(id[i]);
    if (!d) return plain_error("AML: EISAID '{}': four hex digits (0-9, A-F) after the letters", id);
    v = (v << 4) | *d;
  }
  // The 32-bit value is stored big-endian: swap into the little-endian integer AML holds.
  const std::uint32_t swapped = ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >> 8) & 0xff00) | (v >> 24);
  Bytes out{kDWordPrefix};
  append_le(out, swapped, 4);
  return out;
}

Term name(std::string_view path, const Term& value) {
  Bytes out{kNameOp};
  KILN_ASSIGN(const Bytes n, name_string(path));
  if (!value) return value;
  append(out, n);
  append(out, *value);
  return out;
}

Term package(const std::vector<Term>& elements) {
  if (elements.size() > 255) return plain_error("AML: a package of {} elements (at most 255)", elements.size());
  Bytes body{static_cast<std::uint8_t>(elements.size())};
  KILN_ASSIGN(const Bytes all, joined(elements));
  append(body, all);
  return op_with_body({kPackageOp}, body);
}

Term buffer(const Bytes& data) {
  KILN_ASSIGN(Bytes body, integer(data.size()));
  append(body, data);
  return op_with_body({kBufferOp}, body);
}

Term scope(std::string_view path, const std::vector<Term>& terms) {
  KILN_ASSIGN(Bytes body, name_string(path));
  KILN_ASSIGN(const Bytes all, joined(terms));
  append(body, all);
  return op_with_body({kScopeOp}, body);
}

Term device(std::string_view path, const std::vector<Term>& terms) {
  KILN_ASSIGN(Bytes body, name_string(path));
  KILN_ASSIGN(const Bytes all, joined(terms));
  append(body, all);
  return op_with_body({kExtOpPrefix, kDeviceOp}, body);
}

Term method_returning(std::string_view path, const Term& value) {
  KILN_ASSIGN(Bytes body, name_string(path));
  body.push_back(0);  // no arguments, not serialized, sync level 0
  body.push_back(kReturnOp);
  if (!value) return value;
  append(body, *value);
  return op_with_body({kMethodOp}, body);
}

Term io_port(std::uint16_t base, std::uint8_t length) {
  Bytes out{0x47, 0x01};  // small item 8 (I/O port), 7 bytes; 16-bit decode
  append_le(out, base, 2);
  append_le(out, base, 2);
  out.push_back(1);  // alignment
  out.push_back(length);
  return out;
}

Term irq_no_flags(std::uint8_t irq) {
  if (irq > 15) return plain_error("AML: IRQNoFlags {}: ISA IRQs are 0-15", irq);
  Bytes out{0x22};  // small item 4 (IRQ), 2 bytes
  append_le(out, 1u << irq, 2);
  return out;
}

Term memory32_fixed(std::uint32_t base, std::uint32_t length) {
  Bytes out{0x86, 9, 0, 0x01};  // large item 6, 9 bytes; read-write
  append_le(out, base, 4);
  append_le(out, length, 4);
  return out;
}

Term extended_interrupt(std::uint32_t gsi, bool level_triggered) {
  // Flags: bit 0 consumer, bit 1 edge (1) / level (0), bit 2 active low, bit 3 shared.
  const std::uint8_t flags = level_triggered ? 0x01 : 0x03;
  Bytes out{0x89, 6, 0, flags, 1};  // large item 9, 6 bytes; one interrupt
  append_le(out, gsi, 4);
  return out;
}

Term word_bus_number(std::uint16_t min, std::uint16_t max) {
  // Large item 8, 13 bytes: type 2 (bus numbers), general flags MinFixed | MaxFixed (producer),
  // no type flags; granularity, min, max, translation, length.
  Bytes out{0x88, 13, 0, 2, 0x0c, 0};
  append_le(out, 0, 2);
  append_le(out, min, 2);
  append_le(out, max, 2);
  append_le(out, 0, 2);
  append_le(out, static_cast<std::uint16_t>(max - min + 1), 2);
  return out;
}

Term dword_memory(std::uint32_t min, std::uint32_t max) {
  // Large item 7, 23 bytes: type 0 (memory), MinFixed | MaxFixed (producer), read-write and not
  // cacheable; granularity, min, max, translation, length.
  Bytes out{0x87, 23, 0, 0, 0x0c, 0x01};
  append_le(out, 0, 4);
  append_le(out, min, 4);
  append_le(out, max, 4);
  append_le(out, 0, 4);
  append_le(out, max - min + 1, 4);
  return out;
}

Term resource_template(const std::vector<Term>& descriptors) {
  KILN_ASSIGN(Bytes data, joined(descriptors));
  data.push_back(0x79);  // end tag
  data.push_back(0);     // checksum 0: "treat as correct"
  return buffer(data);
}

}  // namespace kiln::acpi::aml
