#include "profile/symbols.h"

#include <elf.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <span>

namespace kiln::profile {

namespace {

bool is_text_type(char t) { return t == 't' || t == 'T' || t == 'w' || t == 'W'; }

template <class T>
std::optional<T> read_at(std::span<const std::byte> file, std::uint64_t off) {
  if (off > file.size() || file.size() - off < sizeof(T)) return std::nullopt;
  T v;
  std::memcpy(&v, file.data() + off, sizeof(T));
  return v;
}

}  // namespace

void SymbolTable::finish() {
  std::stable_sort(symbols_.begin(), symbols_.end(), [](const Symbol& a, const Symbol& b) { return a.addr < b.addr; });
}

Result<SymbolTable> SymbolTable::from_system_map(std::string_view text, std::string_view origin) {
  SymbolTable t;
  t.origin_ = origin;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (line.empty()) continue;
    // "<hex address> <type> <name>"
    const std::size_t s1 = line.find(' ');
    if (s1 == std::string_view::npos || s1 + 3 > line.size() || line[s1 + 2] != ' ')
      return plain_error("{}: line {} is not '<address> <type> <name>' as in a System.map", origin, line_no);
    std::uint64_t addr = 0;
    const auto [p, ec] = std::from_chars(line.data(), line.data() + s1, addr, 16);
    if (ec != std::errc() || p != line.data() + s1)
      return plain_error("{}: line {}: '{}' is not a hex address", origin, line_no, line.substr(0, s1));
    if (!is_text_type(line[s1 + 1])) continue;
    t.symbols_.push_back({addr, 0, std::string(line.substr(s1 + 3))});
  }
  if (t.symbols_.empty()) return plain_error("{}: no function symbols in it (is it a System.map?)", origin);
  t.finish();
  return t;
}

Result<SymbolTable> SymbolTable::from_elf(std::span<const std::byte> file, std::string_view origin) {
  const auto eh = read_at<Elf64_Ehdr>(file, 0);
  if (!eh || std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64)
    return plain_error("{}: not a 64-bit ELF file", origin);
  if (eh->e_shentsize != sizeof(Elf64_Shdr)) return plain_error("{}: unexpected ELF section header size", origin);
  SymbolTable t;
  t.origin_ = origin;
  t.sized_ = true;
  for (std::uint64_t i = 0; i < eh->e_shnum; ++i) {
    const auto sh = read_at<Elf64_Shdr>(file, eh->e_shoff + i * sizeof(Elf64_Shdr));
    if (!sh) return plain_error("{}: its section headers run past the end of the file", origin);
    if (sh->sh_type != SHT_SYMTAB) continue;
    const auto strtab = read_at<Elf64_Shdr>(file, eh->e_shoff + std::uint64_t{sh->sh_link} * sizeof(Elf64_Shdr));
    if (!strtab || strtab->sh_offset > file.size() || file.size() - strtab->sh_offset < strtab->sh_size)
      return plain_error("{}: its symbol names are outside the file", origin);
    const std::string_view names(reinterpret_cast<const char*>(file.data() + strtab->sh_offset), strtab->sh_size);
    for (std::uint64_t off = 0; off + sizeof(Elf64_Sym) <= sh->sh_size; off += sizeof(Elf64_Sym)) {
      const auto sym = read_at<Elf64_Sym>(file, sh->sh_offset + off);
      if (!sym) return plain_error("{}: its symbol table runs past the end of the file", origin);
      if (ELF64_ST_TYPE(sym->st_info) != STT_FUNC || sym->st_value == 0 || sym->st_name >= names.size()) continue;
      const std::string_view rest = names.substr(sym->st_name);
      t.symbols_.push_back({sym->st_value, sym->st_size, std::string(rest.substr(0, rest.find('\0')))});
    }
  }
  if (t.symbols_.empty()) return plain_error("{}: no function symbols in it (a stripped file?)", origin);
  t.finish();
  return t;
}

Result<SymbolTable> SymbolTable::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return plain_error("{}: cannot be read", path);
  std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() >= 4 && std::memcmp(data.data(), ELFMAG, SELFMAG) == 0)
    return from_elf(std::as_bytes(std::span(data)), path);
  return from_system_map(std::string_view(data.data(), data.size()), path);
}

std::optional<SymbolHit> SymbolTable::lookup(std::uint64_t addr) const {
  const std::uint64_t a = addr - slide_;
  auto it = std::upper_bound(symbols_.begin(), symbols_.end(), a, [](std::uint64_t v, const Symbol& s) { return v < s.addr; });
  if (it == symbols_.begin()) return std::nullopt;  // before the first symbol
  const Symbol& s = *std::prev(it);
  if (sized_) {
    // ELF: inside the symbol's size (a zero-sized function covers its first byte only).
    if (a - s.addr >= std::max<std::uint64_t>(s.size, 1)) return std::nullopt;
  } else if (it == symbols_.end() && a != s.addr) {
    return std::nullopt;  // past the last System.map line
  }
  return SymbolHit{s.name, a - s.addr};
}

std::optional<std::uint64_t> SymbolTable::address_of(std::string_view name) const {
  for (const Symbol& s : symbols_)
    if (s.name == name) return s.addr;
  return std::nullopt;
}

}  // namespace kiln::profile
