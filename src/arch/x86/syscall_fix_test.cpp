#include "arch/x86/syscall_fix.h"

#include <Zydis/Zydis.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "arch/x86/boot_cpu.h"
#include "arch/x86/layout.h"

namespace kiln::x86 {
namespace {

constexpr std::uint64_t kIdt = 0x10000, kLstar = 0x400100, kSite = 0x600000 - 64, kHandler = 0x234560;

// A guest as a kernel leaves it: 4 GiB identity-mapped (kiln's boot tables), an IDT whose gate 14
// is a present interrupt gate, and int3 padding at the end of LSTAR's 2 MiB page.
GuestMemory make_mem() {
  const RegionLayout l[] = {{0, 16 << 20}};
  return std::move(*GuestMemory::create(l));
}

struct FixTest : ::testing::Test {
  void SetUp() override {
    auto st = setup_boot_cpu(mem, EntryMode::kLinux64, 0x100200, kZeroPageAddr);
    ASSERT_TRUE(st);
    s = st->sregs;
    s.idt = {kIdt, 32 * 16 - 1};
    set_gate(kHandler);
    ASSERT_TRUE(mem.fill(GuestAddress{kSite}, std::byte{0xcc}, 64));
  }
  void set_gate(std::uint64_t handler, std::uint8_t type_attr = 0x8e) {
    std::array<std::uint8_t, 16> g{};
    g[0] = static_cast<std::uint8_t>(handler);
    g[1] = static_cast<std::uint8_t>(handler >> 8);
    g[2] = 0x10;  // __KERNEL_CS
    g[5] = type_attr;
    g[6] = static_cast<std::uint8_t>(handler >> 16);
    g[7] = static_cast<std::uint8_t>(handler >> 24);
    const auto hi = static_cast<std::uint32_t>(handler >> 32);
    std::memcpy(&g[8], &hi, 4);
    ASSERT_TRUE(mem.write(GuestAddress{kIdt + 14 * 16}, std::as_bytes(std::span(g))));
  }
  std::uint64_t gate_target() {
    std::array<std::uint8_t, 16> g{};
    EXPECT_TRUE(mem.read(GuestAddress{kIdt + 14 * 16}, std::as_writable_bytes(std::span(g))));
    std::uint32_t hi;
    std::memcpy(&hi, &g[8], 4);
    return g[0] | (std::uint64_t{g[1]} << 8) | (std::uint64_t{g[6]} << 16) | (std::uint64_t{g[7]} << 24) |
           (std::uint64_t{hi} << 32);
  }
  GuestMemory mem = make_mem();
  SpecialRegisters s;
};

TEST_F(FixTest, InstallsTheStubAtTheEndOfLstarsPageAndPointsTheGateAtIt) {
  const auto r = install_syscall_fix(mem, s, kLstar);
  ASSERT_EQ(r.kind, SyscallFixState::Kind::kInstalled) << r.why;
  EXPECT_EQ(r.stub, kSite);
  EXPECT_EQ(r.original, kHandler);
  EXPECT_EQ(gate_target(), kSite);
  std::array<std::byte, kSyscallStubSize> there{};
  ASSERT_TRUE(mem.read(GuestAddress{kSite}, there));
  EXPECT_EQ(there, syscall_stub(kLstar, kHandler));
  // The gate's other fields are the kernel's.
  std::array<std::uint8_t, 16> g{};
  ASSERT_TRUE(mem.read(GuestAddress{kIdt + 14 * 16}, std::as_writable_bytes(std::span(g))));
  EXPECT_EQ(g[2], 0x10);
  EXPECT_EQ(g[5], 0x8e);

  const auto again = install_syscall_fix(mem, s, kLstar);
  EXPECT_EQ(again.kind, SyscallFixState::Kind::kInPlace) << again.why;
  EXPECT_EQ(again.original, kHandler);
}

TEST_F(FixTest, AKernelThatRewritesItsGateGetsTheStubBackWithItsNewHandler) {
  ASSERT_EQ(install_syscall_fix(mem, s, kLstar).kind, SyscallFixState::Kind::kInstalled);
  set_gate(0x345670);  // the kernel's final #PF entry replaces its early one
  const auto r = install_syscall_fix(mem, s, kLstar);
  ASSERT_EQ(r.kind, SyscallFixState::Kind::kInstalled) << r.why;
  EXPECT_EQ(r.original, 0x345670u);
  EXPECT_EQ(gate_target(), kSite);
}

TEST_F(FixTest, WaitsForLstarAndAPresentGate) {
  EXPECT_EQ(install_syscall_fix(mem, s, 0).kind, SyscallFixState::Kind::kNotYet);
  set_gate(kHandler, 0x0e);  // not present
  EXPECT_EQ(install_syscall_fix(mem, s, kLstar).kind, SyscallFixState::Kind::kNotYet);
  s.idt.limit = 14 * 16 - 1;  // no gate 14 in the table
  EXPECT_EQ(install_syscall_fix(mem, s, kLstar).kind, SyscallFixState::Kind::kNotYet);
  EXPECT_EQ(gate_target(), kHandler) << "nothing written";
}

TEST_F(FixTest, RefusesAKernelWithoutPaddingAndWritesNothing) {
  ASSERT_TRUE(mem.fill(GuestAddress{kSite + 10}, std::byte{0x90}, 1));
  const auto r = install_syscall_fix(mem, s, kLstar);
  EXPECT_EQ(r.kind, SyscallFixState::Kind::kRefused);
  EXPECT_NE(r.why.find("int3 padding"), std::string::npos) << r.why;
  EXPECT_EQ(gate_target(), kHandler);
  std::uint8_t b = 0;
  ASSERT_TRUE(mem.read(GuestAddress{kSite}, std::as_writable_bytes(std::span(&b, 1))));
  EXPECT_EQ(b, 0xcc);
}

TEST_F(FixTest, RefusesAGateThatIsNotAnInterruptOrTrapGate) {
  set_gate(kHandler, 0x8c);  // a call gate
  EXPECT_EQ(install_syscall_fix(mem, s, kLstar).kind, SyscallFixState::Kind::kRefused);
}

TEST_F(FixTest, WaitsWhileLstarsPageEndIsUnmapped) {
  // 0x1'0000'0000 and up is not mapped by the boot tables (as a user process's tables may not map it).
  EXPECT_EQ(install_syscall_fix(mem, s, 0x1'0000'0100ull).kind, SyscallFixState::Kind::kNotYet);
  EXPECT_EQ(gate_target(), kHandler);
}

// The stub decodes as the instructions syscall_fix.h describes, its branches land on the jump to
// the kernel's handler, and its RIP-relative operands on the two literals.
TEST(SyscallStub, DecodesAsDescribed) {
  const auto stub = syscall_stub(0x1111'2222'3333'4444ull, 0x5555'6666'7777'8888ull);
  ZydisDecoder d;
  ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  std::vector<std::pair<ZydisMnemonic, std::uint64_t>> seen;  // mnemonic, branch or RIP-relative target
  std::size_t off = 0;
  while (off < 44) {
    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    ASSERT_TRUE(ZYAN_SUCCESS(ZydisDecoderDecodeFull(&d, stub.data() + off, stub.size() - off, &in, ops))) << off;
    std::uint64_t target = 0;
    for (unsigned i = 0; i < in.operand_count_visible; ++i) {
      ZyanU64 abs = 0;
      if ((ops[i].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && ops[i].imm.is_relative) ||
          (ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY && ops[i].mem.base == ZYDIS_REGISTER_RIP)) {
        ASSERT_TRUE(ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&in, &ops[i], off, &abs)));
        target = abs;
      }
    }
    seen.emplace_back(in.mnemonic, target);
    off += in.length;
  }
  EXPECT_EQ(off, 44u);
  const std::vector<std::pair<ZydisMnemonic, std::uint64_t>> want = {
      {ZYDIS_MNEMONIC_ENDBR64, 0}, {ZYDIS_MNEMONIC_PUSH, 0}, {ZYDIS_MNEMONIC_MOV, 48}, {ZYDIS_MNEMONIC_CMP, 0},
      {ZYDIS_MNEMONIC_POP, 0},     {ZYDIS_MNEMONIC_JNZ, 38}, {ZYDIS_MNEMONIC_TEST, 0}, {ZYDIS_MNEMONIC_JZ, 38},
      {ZYDIS_MNEMONIC_MOV, 0},     {ZYDIS_MNEMONIC_JMP, 48}, {ZYDIS_MNEMONIC_JMP, 56}};
  EXPECT_EQ(seen, want);
  std::uint64_t lit;
  std::memcpy(&lit, stub.data() + 48, 8);
  EXPECT_EQ(lit, 0x1111'2222'3333'4444ull);
  std::memcpy(&lit, stub.data() + 56, 8);
  EXPECT_EQ(lit, 0x5555'6666'7777'8888ull);
}

}  // namespace
}  // namespace kiln::x86
