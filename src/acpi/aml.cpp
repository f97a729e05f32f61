#include "acpi/aml.h"

#include <stdexcept>

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

Bytes op_with_body(std::initializer_list<std::uint8_t> op, const Bytes& body) {
  Bytes out(op);
  append(out, with_pkg_length(body));
  return out;
}

}  // namespace

Bytes with_pkg_length(const Bytes& payload) {
  // The encoded length counts the PkgLength bytes themselves.
  const std::size_t n = payload.size();
  Bytes out;
  if (n + 1 <= 0x3f) {
    out.push_back(static_cast<std::uint8_t>(n + 1));
  } else {
    int extra = 1;
    while (extra < 3 && n + 1 + extra >= (std::size_t{1} << (4 + 8 * extra))) ++extra;
    const std::size_t total = n + 1 + extra;
    if (total >= (std::size_t{1} << (4 + 8 * extra))) throw std::length_error("AML package longer than 256 MiB");
    out.push_back(static_cast<std::uint8_t>((extra << 6) | (total & 0xf)));
    for (int i = 0; i < extra; ++i) out.push_back(static_cast<std::uint8_t>(total >> (4 + 8 * i)));
  }
  append(out, payload);
  return out;
}

Bytes name_string(std::string_view path) {
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
    if (segs.size() > 255) throw std::invalid_argument("AML name path too long");
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<std::uint8_t>(segs.size()));
  }
  for (auto s : segs) {
    if (s.empty() || s.size() > 4 || !lead_char(s[0])) throw std::invalid_argument("bad AML name segment");
    for (std::size_t i = 0; i < 4; ++i) {
      const char c = i < s.size() ? s[i] : '_';
      if (!name_char(c)) throw std::invalid_argument("bad AML name segment");
      out.push_back(static_cast<std::uint8_t>(c));
    }
  }
  return out;
}

Bytes integer(std::uint64_t v) {
  if (v == 0) return {kZeroOp};
  if (v == 1) return {kOneOp};
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

Bytes string(std::string_view s) {
  Bytes out{kStringPrefix};
  for (char c : s) {
    if (c == 0 || static_cast<unsigned char>(c) > 0x7f) throw std::invalid_argument("AML strings are 7-bit ASCII");
    out.push_back(static_cast<std::uint8_t>(c));
  }
  out.push_back(0);
  return out;
}

Bytes eisa_id(std::string_view id) {
  auto hex = [](char c) -> std::uint32_t {
    if (c >= '0' && c <= '9') return static_cast<std::uint32_t>(c - '0');
    if (c >= 'A' && c <= 'F') return static_cast<std::uint32_t>(c - 'A' + 10);
    throw std::invalid_argument("EISAID: bad hex digit");
  };
  if (id.size() != 7) throw std::invalid_argument("EISAID: seven characters");
  std::uint32_t v = 0;
  for (int i = 0; i < 3; ++i) {
    if (id[i] < 'A' || id[i] > 'Z') throw std::invalid_argument("EISAID: three capital letters first");
    v = (v << 5) | static_cast<std::uint32_t>(id[i] - 'A' + 1);
  }
  for (int i = 3; i < 7; ++i) v = (v << 4) | hex(id[i]);
  // The 32-bit value is stored big-endian: swap into the little-endian integer AML holds.
  const std::uint32_t swapped = ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >> 8) & 0xff00) | (v >> 24);
  Bytes out{kDWordPrefix};
  append_le(out, swapped, 4);
  return out;
}

Bytes name(std::string_view path, const Bytes& value) {
  Bytes out{kNameOp};
  append(out, name_string(path));
  append(out, value);
  return out;
}

Bytes package(const std::vector<Bytes>& elements) {
  if (elements.size() > 255) throw std::invalid_argument("AML package of more than 255 elements");
  Bytes body{static_cast<std::uint8_t>(elements.size())};
  for (const auto& e : elements) append(body, e);
  return op_with_body({kPackageOp}, body);
}

Bytes buffer(const Bytes& data) {
  Bytes body = integer(data.size());
  append(body, data);
  return op_with_body({kBufferOp}, body);
}

Bytes scope(std::string_view path, const std::vector<Bytes>& terms) {
  Bytes body = name_string(path);
  for (const auto& t : terms) append(body, t);
  return op_with_body({kScopeOp}, body);
}

Bytes device(std::string_view path, const std::vector<Bytes>& terms) {
  Bytes body = name_string(path);
  for (const auto& t : terms) append(body, t);
  return op_with_body({kExtOpPrefix, kDeviceOp}, body);
}

Bytes method_returning(std::string_view path, const Bytes& value) {
  Bytes body = name_string(path);
  body.push_back(0);  // no arguments, not serialized, sync level 0
  body.push_back(kReturnOp);
  append(body, value);
  return op_with_body({kMethodOp}, body);
}

Bytes io_port(std::uint16_t base, std::uint8_t length) {
  Bytes out{0x47, 0x01};  // small item 8 (I/O port), 7 bytes; 16-bit decode
  append_le(out, base, 2);
  append_le(out, base, 2);
  out.push_back(1);  // alignment
  out.push_back(length);
  return out;
}

Bytes irq_no_flags(std::uint8_t irq) {
  if (irq > 15) throw std::invalid_argument("IRQNoFlags: ISA IRQs are 0-15");
  Bytes out{0x22};  // small item 4 (IRQ), 2 bytes
  append_le(out, 1u << irq, 2);
  return out;
}

Bytes memory32_fixed(std::uint32_t base, std::uint32_t length) {
  Bytes out{0x86, 9, 0, 0x01};  // large item 6, 9 bytes; read-write
  append_le(out, base, 4);
  append_le(out, length, 4);
  return out;
}

Bytes extended_interrupt(std::uint32_t gsi, bool level_triggered) {
  // Flags: bit 0 consumer, bit 1 edge (1) / level (0), bit 2 active low, bit 3 shared.
  const std::uint8_t flags = level_triggered ? 0x01 : 0x03;
  Bytes out{0x89, 6, 0, flags, 1};  // large item 9, 6 bytes; one interrupt
  append_le(out, gsi, 4);
  return out;
}

Bytes resource_template(const std::vector<Bytes>& descriptors) {
  Bytes data;
  for (const auto& d : descriptors) append(data, d);
  data.push_back(0x79);  // end tag
  data.push_back(0);     // checksum 0: "treat as correct"
  return buffer(data);
}

}  // namespace kiln::acpi::aml
