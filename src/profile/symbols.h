#pragma once
// Guest symbols for the profiler: function addresses from a System.map (Debian's is in the
// kernel's -dbg package; /boot/System.map-* is a placeholder) or from an ELF file's own symbol table (a vmlinux, or a test
// guest), looked up by address. A kernel that moved itself (KASLR) is handled with an offset: the
// run-time address of a symbol the guest shows kiln (entry_SYSCALL_64, which the guest writes to
// MSR_LSTAR) minus its address in the file.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace kiln::profile {

struct Symbol {
  std::uint64_t addr = 0;
  std::uint64_t size = 0;  // 0: unknown (a System.map); it ends where the next symbol starts
  std::string name;
};

struct SymbolHit {
  std::string_view name;
  std::uint64_t offset = 0;  // from the symbol's start
};

class SymbolTable {
 public:
  // A System.map ("ffffffff81000000 T _text" lines): text symbols (t, T, w, W) only.
  static Result<SymbolTable> from_system_map(std::string_view text, std::string_view origin);
  // An ELF file's .symtab: its functions (STT_FUNC) with their sizes.
  static Result<SymbolTable> from_elf(std::span<const std::byte> file, std::string_view origin);
  // Either, by what the file holds (ELF magic or text).
  static Result<SymbolTable> load(const std::string& path);

  // The function `addr` is in, after taking `slide` (run-time minus file address) off it; nothing
  // before the first symbol, past a sized symbol's end, or past the last symbol of a System.map
  // (its last lines mark the end of the image: _end and the like).
  [[nodiscard]] std::optional<SymbolHit> lookup(std::uint64_t addr) const;
  // The address of a symbol by name (the first one), for working out the KASLR slide.
  [[nodiscard]] std::optional<std::uint64_t> address_of(std::string_view name) const;

  void set_slide(std::uint64_t slide) { slide_ = slide; }
  [[nodiscard]] std::uint64_t slide() const { return slide_; }
  [[nodiscard]] std::size_t size() const { return symbols_.size(); }
  [[nodiscard]] const std::string& origin() const { return origin_; }

 private:
  void finish();  // sorts by address
  std::vector<Symbol> symbols_;
  std::string origin_;
  bool sized_ = false;  // ELF: symbols have sizes
  std::uint64_t slide_ = 0;
};

}  // namespace kiln::profile
