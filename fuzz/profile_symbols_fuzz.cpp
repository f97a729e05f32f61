// The profiler's symbol files (--profile-symbols): a System.map's text or an ELF's symbol table,
// the user's file and so anything at all. Loading either fails with an error or gives a table
// whose lookups answer inside it.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "profile/symbols.h"

namespace {

void probe(const kiln::profile::SymbolTable& t, std::span<const std::uint8_t> data) {
  for (std::size_t i = 0; i + 8 <= data.size() && i < 256; i += 8) {
    std::uint64_t a = 0;
    for (int b = 0; b < 8; ++b) a |= std::uint64_t{data[i + b]} << (8 * b);
    if (auto hit = t.lookup(a); hit && hit->offset > a) std::abort();
  }
  (void)t.address_of("entry_SYSCALL_64");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  if (auto t = kiln::profile::SymbolTable::from_system_map(
          std::string_view(reinterpret_cast<const char*>(data), size), "fuzz"))
    probe(*t, in);
  if (auto t = kiln::profile::SymbolTable::from_elf(std::as_bytes(in), "fuzz")) probe(*t, in);
  return 0;
}
