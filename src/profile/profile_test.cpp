#include "profile/profile.h"

#include <elf.h>

#include <gtest/gtest.h>

#include <cstring>

// A function to find in this test's own symbol table.
extern "C" __attribute__((noinline, used)) int kiln_profile_test_probe(int x) { return x * 3 + 1; }

namespace kiln::profile {
namespace {

constexpr std::string_view kMap =
    "0000000000000000 D __per_cpu_start\n"
    "ffffffff81000000 T _text\n"
    "ffffffff81000000 T startup_64\n"
    "ffffffff81001000 t native_safe_halt\n"
    "ffffffff81001040 T default_idle\n"
    "ffffffff81002000 r some_rodata\n"
    "ffffffff81003000 W weak_function\n"
    "ffffffff81c00000 T entry_SYSCALL_64\n"
    "ffffffff82000000 B _end\n";

TEST(SymbolTable, ASystemMapKeepsTextSymbolsAndFindsTheFunctionAnAddressIsIn) {
  auto t = SymbolTable::from_system_map(kMap, "System.map");
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->size(), 6u) << "T, t and W lines; D, r and B are data";
  auto hit = t->lookup(0xffffffff81001010);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->name, "native_safe_halt");
  EXPECT_EQ(hit->offset, 0x10u);
  EXPECT_EQ(t->lookup(0xffffffff81001040)->name, "default_idle") << "a function's first byte is its own";
  EXPECT_EQ(t->lookup(0xffffffff81002800)->name, "default_idle") << "rodata is not a function: the one before it";
  EXPECT_EQ(t->lookup(0xffffffff81003004)->name, "weak_function");
}

TEST(SymbolTable, AddressesBeforeTheFirstAndAfterTheLastSymbolHaveNone) {
  auto t = SymbolTable::from_system_map(kMap, "System.map");
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->lookup(0xffffffff80ffffff)) << "before _text";
  EXPECT_FALSE(t->lookup(0x401000)) << "a user-space address";
  EXPECT_FALSE(t->lookup(0xffffffff81c00010)) << "past entry_SYSCALL_64, the last text symbol of this map";
  EXPECT_TRUE(t->lookup(0xffffffff81c00000)) << "the last symbol's own address";
}

TEST(SymbolTable, AKaslrSlideIsTakenOffBeforeTheLookup) {
  auto t = SymbolTable::from_system_map(kMap, "System.map");
  ASSERT_TRUE(t);
  // The guest's MSR_LSTAR says where entry_SYSCALL_64 is now.
  const std::uint64_t lstar = 0xffffffffa3c00000;
  t->set_slide(lstar - *t->address_of("entry_SYSCALL_64"));
  EXPECT_EQ(t->slide(), 0x22000000u);
  EXPECT_EQ(t->lookup(0xffffffffa3001004)->name, "native_safe_halt");
  EXPECT_FALSE(t->lookup(0xffffffff81001004)) << "the unslid address is before the first symbol now";
}

TEST(SymbolTable, BadSystemMapsSayWhatIsWrong) {
  auto a = SymbolTable::from_system_map("ffffffff81000000T_text\n", "m");
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message().find("line 1"), std::string::npos) << a.error().message();
  auto b = SymbolTable::from_system_map("xyz T _text\n", "m");
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("not a hex address"), std::string::npos) << b.error().message();
  auto c = SymbolTable::from_system_map("ffffffff81000000 D data\n", "m");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("no function symbols"), std::string::npos);
  EXPECT_FALSE(SymbolTable::load("/nonexistent/System.map"));
}

// A minimal ELF: a header, a null section, .symtab and .strtab, with two functions and an object.
std::vector<std::byte> tiny_elf() {
  const std::string names = std::string("\0spin_here\0main_loop\0a_variable\0", 32);
  std::vector<Elf64_Sym> syms(4);
  syms[1] = {.st_name = 1, .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC), .st_other = 0, .st_shndx = 1,
             .st_value = 0x101000, .st_size = 0x40};
  syms[2] = {.st_name = 11, .st_info = ELF64_ST_INFO(STB_LOCAL, STT_FUNC), .st_other = 0, .st_shndx = 1,
             .st_value = 0x101100, .st_size = 0x100};
  syms[3] = {.st_name = 21, .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT), .st_other = 0, .st_shndx = 2,
             .st_value = 0x101040, .st_size = 0x40};
  const std::size_t sym_off = sizeof(Elf64_Ehdr), str_off = sym_off + syms.size() * sizeof(Elf64_Sym);
  const std::size_t sh_off = (str_off + names.size() + 7) & ~std::size_t{7};
  std::vector<Elf64_Shdr> sh(3);
  sh[1] = {.sh_name = 0, .sh_type = SHT_SYMTAB, .sh_flags = 0, .sh_addr = 0, .sh_offset = sym_off,
           .sh_size = syms.size() * sizeof(Elf64_Sym), .sh_link = 2, .sh_info = 0, .sh_addralign = 8,
           .sh_entsize = sizeof(Elf64_Sym)};
  sh[2] = {.sh_name = 0, .sh_type = SHT_STRTAB, .sh_flags = 0, .sh_addr = 0, .sh_offset = str_off,
           .sh_size = names.size(), .sh_link = 0, .sh_info = 0, .sh_addralign = 1, .sh_entsize = 0};
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_shoff = sh_off;
  eh.e_shentsize = sizeof(Elf64_Shdr);
  eh.e_shnum = 3;
  std::vector<std::byte> f(sh_off + sh.size() * sizeof(Elf64_Shdr));
  std::memcpy(f.data(), &eh, sizeof eh);
  std::memcpy(f.data() + sym_off, syms.data(), syms.size() * sizeof(Elf64_Sym));
  std::memcpy(f.data() + str_off, names.data(), names.size());
  std::memcpy(f.data() + sh_off, sh.data(), sh.size() * sizeof(Elf64_Shdr));
  return f;
}

TEST(SymbolTable, AnElfSymbolTableGivesFunctionsWithTheirSizes) {
  const auto f = tiny_elf();
  auto t = SymbolTable::from_elf(f, "tiny.elf");
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->size(), 2u) << "functions only";
  EXPECT_EQ(t->lookup(0x101000)->name, "spin_here");
  EXPECT_EQ(t->lookup(0x10103f)->name, "spin_here");
  EXPECT_FALSE(t->lookup(0x101040)) << "past spin_here's size, before main_loop";
  EXPECT_EQ(t->lookup(0x1011ff)->name, "main_loop");
  EXPECT_FALSE(t->lookup(0x101200)) << "after the last function";
  EXPECT_FALSE(t->lookup(0x100fff)) << "before the first";
}

TEST(SymbolTable, ACutElfIsRefusedNotRead) {
  auto f = tiny_elf();
  for (std::size_t cut : {std::size_t{10}, sizeof(Elf64_Ehdr) + 8, f.size() - 1}) {
    auto t = SymbolTable::from_elf(std::span(f).first(cut), "cut.elf");
    EXPECT_FALSE(t) << "cut at " << cut;
  }
}

TEST(SymbolTable, ThisTestsOwnBinaryFindsItsOwnFunctionAfterTheLoadSlide) {
  auto t = SymbolTable::load("/proc/self/exe");
  if (!t) GTEST_SKIP() << t.error().message();
  const auto file_addr = t->address_of("kiln_profile_test_probe");
  ASSERT_TRUE(file_addr);
  const auto run_addr = reinterpret_cast<std::uint64_t>(&kiln_profile_test_probe);
  t->set_slide(run_addr - *file_addr);  // as for KASLR: one known symbol places all (PIE here)
  auto hit = t->lookup(run_addr + 1);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->name, "kiln_profile_test_probe");
  EXPECT_EQ(hit->offset, 1u);
}

TEST(Profile, TheReportPutsTheHottestFunctionFirstAndSplitsByPrivilegeLevel) {
  auto t = SymbolTable::from_system_map(kMap, "System.map");
  ASSERT_TRUE(t);
  Profile p(2);
  for (int i = 0; i < 70; ++i) p.record(0, 0xffffffff81001000 + (i % 4), 0);  // native_safe_halt
  for (int i = 0; i < 20; ++i) p.record(1, 0xffffffff81001044, 0);            // default_idle
  for (int i = 0; i < 10; ++i) p.record(1, 0x401000 + i, 3);                  // user space
  p.record(7, 0, 0);                                                          // no such vCPU: ignored
  EXPECT_EQ(p.samples(), 100u);
  const std::string r = p.report(&*t, {.seconds = 1.0, .hz = 100, .slide_source = "", .top = 10});
  EXPECT_NE(r.find("100 samples at 100 Hz"), std::string::npos) << r;
  EXPECT_NE(r.find("vCPU 0: 70, vCPU 1: 30"), std::string::npos) << r;
  EXPECT_NE(r.find("kernel (CPL 0) 90.0 %, user (CPL 3) 10.0 %"), std::string::npos) << r;
  const auto halt = r.find("native_safe_halt"), idle = r.find("default_idle"), user = r.find("[user space, no symbol]");
  ASSERT_NE(halt, std::string::npos) << r;
  ASSERT_NE(idle, std::string::npos) << r;
  ASSERT_NE(user, std::string::npos) << r;
  EXPECT_LT(halt, idle);
  EXPECT_LT(idle, user);
  EXPECT_NE(r.find("70  70.00%    0  native_safe_halt"), std::string::npos) << r;
}

TEST(Profile, WithoutSymbolsTheHottestAddressesAreListed) {
  Profile p(1);
  for (int i = 0; i < 3; ++i) p.record(0, 0x1234, 0);
  p.record(0, 0x5678, 0);
  const std::string r = p.report(nullptr, {});
  EXPECT_LT(r.find("0x1234"), r.find("0x5678")) << r;
  EXPECT_NE(r.find("symbols: none"), std::string::npos);
}

TEST(Profile, ACountsSectionGivesRatesAndLeavesOutZeros) {
  const std::string s = counts_section("KVM's counters", {{"exits", 5000}, {"halt_exits", 0}, {"insn_emulation", 124}}, 2.0);
  EXPECT_EQ(s, "\nKVM's counters\n"
               "  exits                    5000         2500/s\n"
               "  insn_emulation            124           62/s\n");
  EXPECT_EQ(counts_section("none", {{"exits", 0}}, 1.0), "");
  // Without a run time there are no rates.
  EXPECT_EQ(counts_section("t", {{"x", 7}}, 0), "\nt\n  x              7\n");
}

}  // namespace
}  // namespace kiln::profile
