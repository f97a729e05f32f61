#include "arch/x86/emulation.h"

#include <vector>

#include <gtest/gtest.h>

#include "arch/x86/boot_cpu.h"
#include "arch/x86/layout.h"

namespace kiln::x86 {
namespace {

using Kind = EmulationOutcome::Kind;

class Fallback : public ::testing::Test {
 protected:
  void SetUp() override {
    const RegionLayout l[] = {{0, 8 << 20}};
    mem_ = std::move(*GuestMemory::create(l));
    auto st = setup_boot_cpu(mem_, EntryMode::kLinux64, 0x200000, kZeroPageAddr);
    ASSERT_TRUE(st);
    sregs_ = st->sregs;
    regs_ = st->regs;
    regs_.rflags = kRflagsReserved1;
  }
  EmulationOutcome run(std::vector<std::uint8_t> bytes) {
    std::vector<std::byte> b(bytes.size());
    for (std::size_t i = 0; i < bytes.size(); ++i) b[i] = std::byte{bytes[i]};
    return emulate_instruction(b, regs_, sregs_, fpu_, mem_);
  }
  GuestMemory mem_;
  Registers regs_;
  SpecialRegisters sregs_;
  FpuState fpu_;
};

TEST_F(Fallback, Int3InjectsBreakpointAfterTheInstruction) {
  auto o = run({0xcc});
  EXPECT_EQ(o.kind, Kind::kInjectException);
  EXPECT_EQ(o.vector, kVectorBreakpoint);
  EXPECT_EQ(regs_.rip, 0x200001u);
  EXPECT_EQ(o.name, "int3");
}

TEST_F(Fallback, ClacAndStacToggleAc) {
  regs_.rflags |= kRflagsAc;
  auto o = run({0x0f, 0x01, 0xca});
  EXPECT_EQ(o.kind, Kind::kEmulated);
  EXPECT_EQ(regs_.rflags & kRflagsAc, 0u);
  EXPECT_EQ(regs_.rip, 0x200003u);
  o = run({0x0f, 0x01, 0xcb});
  EXPECT_EQ(o.name, "stac");
  EXPECT_NE(regs_.rflags & kRflagsAc, 0u);
  EXPECT_EQ(regs_.rip, 0x200006u);
}

TEST_F(Fallback, FwaitAdvances) {
  auto o = run({0x9b});
  EXPECT_EQ(o.kind, Kind::kEmulated);
  EXPECT_EQ(regs_.rip, 0x200001u);
}

TEST_F(Fallback, LdmxcsrLoadsFromMemory) {
  ASSERT_TRUE(mem_.write_obj<std::uint32_t>(GuestAddress{0x3000 + 0x10}, 0x1fa0));
  regs_.rdi = 0x3000;
  auto o = run({0x0f, 0xae, 0x57, 0x10});  // ldmxcsr [rdi+0x10]
  EXPECT_EQ(o.kind, Kind::kEmulated) << o.detail;
  EXPECT_TRUE(o.fpu_changed);
  EXPECT_EQ(fpu_.mxcsr, 0x1fa0u);
  EXPECT_EQ(regs_.rip, 0x200004u);
}

TEST_F(Fallback, LdmxcsrWithReservedBitsIsGp) {
  ASSERT_TRUE(mem_.write_obj<std::uint32_t>(GuestAddress{0x3000}, 0x10000));
  regs_.rax = 0x3000;
  auto o = run({0x0f, 0xae, 0x10});  // ldmxcsr [rax]
  EXPECT_EQ(o.kind, Kind::kInjectException);
  EXPECT_EQ(o.vector, kVectorGeneralProtection);
  EXPECT_EQ(fpu_.mxcsr, 0x1f80u);
}

TEST_F(Fallback, StmxcsrStoresRipRelative) {
  fpu_.mxcsr = 0x1f83;
  auto o = run({0x0f, 0xae, 0x1d, 0x00, 0x10, 0x00, 0x00});  // stmxcsr [rip+0x1000]
  EXPECT_EQ(o.kind, Kind::kEmulated) << o.detail;
  EXPECT_EQ(*mem_.read_obj<std::uint32_t>(GuestAddress{0x200007 + 0x1000}), 0x1f83u);
}

TEST_F(Fallback, PopcntRegisterForms) {
  regs_.rbx = 0xff00'ff00'0000'000full;
  regs_.rax = 0xdead'beef'dead'beefull;
  auto o = run({0xf3, 0x48, 0x0f, 0xb8, 0xc3});  // popcnt rax, rbx
  EXPECT_EQ(o.kind, Kind::kEmulated) << o.detail;
  EXPECT_EQ(regs_.rax, 20u);
  EXPECT_EQ(regs_.rflags & kRflagsZf, 0u);
  regs_.rcx = 0xffff'ffff'0000'0000ull;
  regs_.rdx = ~0ull;
  o = run({0xf3, 0x0f, 0xb8, 0xd1});  // popcnt edx, ecx
  EXPECT_EQ(regs_.rdx, 0u) << "32-bit result zero-extends";
  EXPECT_NE(regs_.rflags & kRflagsZf, 0u);
}

TEST_F(Fallback, PopcntMemory16Bit) {
  ASSERT_TRUE(mem_.write_obj<std::uint32_t>(GuestAddress{0x4000}, 0xffff'0007));
  regs_.rsi = 0x4000;
  regs_.rax = 0x1111'1111'1111'1111ull;
  auto o = run({0x66, 0xf3, 0x0f, 0xb8, 0x06});  // popcnt ax, word [rsi]
  EXPECT_EQ(o.kind, Kind::kEmulated) << o.detail;
  EXPECT_EQ(regs_.rax, 0x1111'1111'1111'0003ull);
}

TEST_F(Fallback, Cmpxchg16bBothOutcomes) {
  const std::array<std::uint64_t, 2> m{1, 2};
  ASSERT_TRUE(mem_.write(GuestAddress{0x5000}, std::as_bytes(std::span(m))));
  regs_.rdi = 0x5000;
  regs_.rax = 1; regs_.rdx = 2; regs_.rbx = 7; regs_.rcx = 8;
  auto o = run({0xf0, 0x48, 0x0f, 0xc7, 0x0f});  // lock cmpxchg16b [rdi]
  EXPECT_EQ(o.kind, Kind::kEmulated) << o.detail;
  EXPECT_NE(regs_.rflags & kRflagsZf, 0u);
  EXPECT_EQ(*mem_.read_obj<std::uint64_t>(GuestAddress{0x5000}), 7u);
  EXPECT_EQ(*mem_.read_obj<std::uint64_t>(GuestAddress{0x5008}), 8u);
  regs_.rax = 0;
  o = run({0xf0, 0x48, 0x0f, 0xc7, 0x0f});
  EXPECT_EQ(regs_.rflags & kRflagsZf, 0u);
  EXPECT_EQ(regs_.rax, 7u);
  EXPECT_EQ(regs_.rdx, 8u);
}

TEST_F(Fallback, Cmpxchg16bMisalignedIsGp) {
  regs_.rdi = 0x5008;
  auto o = run({0xf0, 0x48, 0x0f, 0xc7, 0x0f});
  EXPECT_EQ(o.kind, Kind::kInjectException);
  EXPECT_EQ(o.vector, kVectorGeneralProtection);
}

TEST_F(Fallback, MemoryOperandOutsideGuestIsAFault) {
  regs_.rdi = 0x7fff'0000'0000ull;
  const auto rip = regs_.rip;
  auto o = run({0x0f, 0xae, 0x17});  // ldmxcsr [rdi]
  EXPECT_EQ(o.kind, Kind::kFault);
  EXPECT_EQ(regs_.rip, rip) << "nothing changes on a fault";
}

TEST_F(Fallback, UnknownInstructionsAreReportedNotRun) {
  const auto rip = regs_.rip;
  auto o = run({0x48, 0x0f, 0xae, 0x2f});  // xrstor [rdi]
  EXPECT_EQ(o.kind, Kind::kUnknown);
  EXPECT_NE(o.detail.find("xrstor"), std::string::npos) << o.detail;
  EXPECT_EQ(regs_.rip, rip);
}

TEST_F(Fallback, BmiInstructionsRunOnRegistersAndMemory) {
  regs_.rbx = 0xf0f0'1234'5678'9abcull;
  regs_.rcx = 0x0ff0'0000'ffff'0000ull;
  regs_.rflags = kRflagsReserved1 | kRflagsCf | kRflagsOf;
  auto o = run({0xc4, 0xe2, 0xe0, 0xf2, 0xc1});  // andn rax, rbx, rcx
  ASSERT_EQ(o.kind, Kind::kEmulated) << o.detail;
  EXPECT_EQ(o.name, "andn");
  EXPECT_EQ(regs_.rax, ~regs_.rbx & regs_.rcx);
  EXPECT_EQ(regs_.rflags & (kRflagsCf | kRflagsOf | kRflagsZf), 0u) << "CF and OF cleared, ZF from a non-zero result";
  EXPECT_EQ(regs_.rip, 0x200005u);

  // bextr eax, [rdi], ecx: 8 bits from bit 4 of the dword at rdi; the upper half of rax cleared.
  ASSERT_TRUE(mem_.write(GuestAddress{0x1000}, std::as_bytes(std::span<const std::uint32_t>({0xdeadbeefu}))));
  regs_.rdi = 0x1000;
  regs_.rcx = 0x0804;
  regs_.rax = ~0ull;
  o = run({0xc4, 0xe2, 0x70, 0xf7, 0x07});
  ASSERT_EQ(o.kind, Kind::kEmulated) << o.detail;
  EXPECT_EQ(regs_.rax, 0xeeu);

  regs_.rcx = 68;  // shlx masks the count to 6 bits: 4
  o = run({0xc4, 0xe2, 0xf1, 0xf7, 0xc3});  // shlx rax, rbx, rcx
  EXPECT_EQ(regs_.rax, regs_.rbx << 4);

  regs_.rdx = ~0ull;
  regs_.rbx = 3;
  const auto flags = regs_.rflags;
  o = run({0xc4, 0x62, 0xb3, 0xf6, 0xc3});  // mulx r8, r9, rbx
  ASSERT_EQ(o.kind, Kind::kEmulated) << o.detail;
  EXPECT_EQ(regs_.r8, 2u) << "high half of (2^64 - 1) * 3";
  EXPECT_EQ(regs_.r9, ~0ull - 2) << "low half";
  EXPECT_EQ(regs_.rflags, flags) << "mulx leaves the flags";

  regs_.rbx = 0x8000'0001;
  o = run({0xc4, 0xe3, 0x7b, 0xf0, 0xc3, 0x05});  // rorx eax, ebx, 5
  EXPECT_EQ(regs_.rax, 0x0c00'0000u);

  regs_.rax = 0x1111'2222'3333'4444ull;
  regs_.rbx = 0x0100;
  o = run({0x66, 0xf3, 0x0f, 0xbc, 0xc3});  // tzcnt ax, bx
  ASSERT_EQ(o.kind, Kind::kEmulated) << o.detail;
  EXPECT_EQ(regs_.rax, 0x1111'2222'3333'0008ull) << "a 16-bit result keeps the rest of rax";

  ASSERT_TRUE(mem_.write(GuestAddress{0x1008}, std::as_bytes(std::span<const std::uint64_t>({0b1011000ull}))));
  o = run({0xc4, 0xe2, 0xe8, 0xf3, 0x4f, 0x08});  // blsr rdx, [rdi+8]
  EXPECT_EQ(regs_.rdx, 0b1010000u);
  EXPECT_EQ(regs_.rflags & kRflagsCf, 0u);

  regs_.rbx = 0xabcd;
  regs_.rcx = 0xf0f0;
  o = run({0xc4, 0xe2, 0xe2, 0xf5, 0xf1});  // pext rsi, rbx, rcx
  EXPECT_EQ(regs_.rsi, 0xacu);
}

TEST_F(Fallback, ABmiMemoryOperandOutsideTheGuestIsAFault) {
  regs_.rdi = 0x4000'0000'0000ull;
  const auto before = regs_;
  auto o = run({0xc4, 0xe2, 0x70, 0xf7, 0x07});  // bextr eax, [rdi], ecx
  EXPECT_EQ(o.kind, Kind::kFault);
  EXPECT_EQ(regs_.rip, before.rip);
  EXPECT_EQ(regs_.rax, before.rax);
}

// A GDT at 0x300000 with Linux's CPUNODE segment (entry 15: limit = node << 12 | cpu, RO data,
// DPL 3, byte granular), a kernel-only data segment (entry 2, DPL 0, 4 KiB granular, limit
// 0xfffff) and a 64-bit TSS (entry 8, a system type LSL accepts; entry 10, a call gate, it does not).
class Descriptors : public Fallback {
 protected:
  static constexpr std::uint64_t kGdt = 0x300000;
  static std::uint64_t segment(std::uint32_t limit, unsigned type, bool s, unsigned dpl, bool g) {
    return (limit & 0xffffull) | (std::uint64_t{limit >> 16 & 0xf} << 48) | (std::uint64_t{type} << 40) |
           (std::uint64_t{s} << 44) | (std::uint64_t{dpl} << 45) | (1ull << 47) | (std::uint64_t{g} << 55) |
           (1ull << 54);
  }
  void SetUp() override {
    Fallback::SetUp();
    put(15, segment(0x1003, 0x5, true, 3, false));
    put(2, segment(0xfffff, 0x3, true, 0, true));
    put(8, segment(0x67, 0x9, false, 0, false));
    put(10, segment(0, 0xc, false, 3, false));
    sregs_.gdt = {kGdt, 16 * 8 - 1};
    regs_.rflags = kRflagsReserved1;
  }
  void put(unsigned index, std::uint64_t raw) {
    ASSERT_TRUE(mem_.write_obj<std::uint64_t>(GuestAddress{kGdt + index * 8}, raw));
  }
};

TEST_F(Descriptors, LslReadsTheCpuNodeSegmentAsLinuxsNmiEntryDoes) {
  regs_.rax = 0x7b;  // mov $__CPUNODE_SEG, %rax; lsl %rax, %rax  (RPL 3)
  auto o = run({0x48, 0x0f, 0x03, 0xc0});
  EXPECT_EQ(o.kind, Kind::kEmulated) << o.detail;
  EXPECT_EQ(o.name, "lsl");
  EXPECT_EQ(regs_.rax, 0x1003u);
  EXPECT_NE(regs_.rflags & kRflagsZf, 0u);
  EXPECT_EQ(regs_.rip, 0x200004u);
}

TEST_F(Descriptors, LslScalesPageGranularLimits) {
  regs_.rcx = 0x10;
  auto o = run({0x0f, 0x03, 0xc1});  // lsl eax, ecx
  EXPECT_EQ(o.kind, Kind::kEmulated);
  EXPECT_EQ(regs_.rax, 0xffff'ffffu);
  EXPECT_NE(regs_.rflags & kRflagsZf, 0u);
}

TEST_F(Descriptors, LslRefusesWithZfClearAndLeavesTheDestination) {
  struct Case { std::uint16_t selector; const char* why; };
  for (auto [sel, why] : {Case{0x0, "null selector"}, Case{0x80, "past the GDT limit"},
                          Case{0x13, "DPL 0 segment asked for with RPL 3"}, Case{0x53, "call gate"},
                          Case{0x4, "LDT selector with no LDT"}}) {
    regs_.rax = 0x1234'5678'9abc'def0;
    regs_.rbx = sel;
    regs_.rflags |= kRflagsZf;
    auto o = run({0x48, 0x0f, 0x03, 0xc3});  // lsl rax, rbx
    EXPECT_EQ(o.kind, Kind::kEmulated) << why;
    EXPECT_EQ(regs_.rflags & kRflagsZf, 0u) << why;
    EXPECT_EQ(regs_.rax, 0x1234'5678'9abc'def0u) << why;
  }
  regs_.rbx = 0x40;  // the TSS: a system type LSL accepts
  auto o = run({0x48, 0x0f, 0x03, 0xc3});
  EXPECT_NE(regs_.rflags & kRflagsZf, 0u);
  EXPECT_EQ(regs_.rax, 0x67u);
  EXPECT_EQ(o.kind, Kind::kEmulated);
}

TEST_F(Descriptors, LarGivesTheAccessRightsAndAcceptsCallGates) {
  regs_.rbx = 0x7b;
  run({0x0f, 0x02, 0xc3});  // lar eax, ebx
  EXPECT_NE(regs_.rflags & kRflagsZf, 0u);
  EXPECT_EQ(regs_.rax, 0x0040f500u);  // D=1, P=1, DPL=3, S=1, type 5
  regs_.rbx = 0x53;
  auto o = run({0x0f, 0x02, 0xc3});
  EXPECT_EQ(o.name, "lar");
  EXPECT_NE(regs_.rflags & kRflagsZf, 0u);
}

TEST_F(Descriptors, VerwAsLinuxClearsCpuBuffersAndVerrOnEachKind) {
  // Linux 6.12's exit to user space: verw x86_verw_sel(%rip), the selector __KERNEL_DS (0x18 here
  // is entry 3: a writable DPL 0 data segment).
  put(3, segment(0xfffff, 0x3, true, 0, true));
  ASSERT_TRUE(mem_.write_obj<std::uint16_t>(GuestAddress{0x201000}, 0x18));
  regs_.rip = 0x200000;
  auto o = run({0x0f, 0x00, 0x2d, 0xf9, 0x0f, 0x00, 0x00});  // verw [rip+0xff9] -> 0x201000
  EXPECT_EQ(o.kind, Kind::kEmulated) << o.detail;
  EXPECT_EQ(o.name, "verw");
  EXPECT_NE(regs_.rflags & kRflagsZf, 0u);
  EXPECT_EQ(regs_.rip, 0x200007u);
  struct Case { std::uint16_t selector; bool readable, writable; const char* why; };
  put(4, segment(0xfffff, 0xb, true, 0, true));   // execute/read code
  put(5, segment(0xfffff, 0x8, true, 0, true));   // execute-only code
  put(6, segment(0xfffff, 0xe, true, 3, true));   // conforming execute/read code, DPL 3
  for (auto [sel, readable, writable, why] :
       {Case{0x10, true, true, "writable data"}, Case{0x7b, true, false, "read-only data, DPL 3, RPL 3"},
        Case{0x13, false, false, "DPL 0 data with RPL 3"}, Case{0x20, true, false, "execute/read code"},
        Case{0x28, false, false, "execute-only code"}, Case{0x33, true, false, "conforming code"},
        Case{0x40, false, false, "a TSS"}, Case{0x0, false, false, "null selector"},
        Case{0x80, false, false, "past the GDT limit"}}) {
    regs_.rbx = sel;
    regs_.rflags = readable ? regs_.rflags & ~kRflagsZf : regs_.rflags | kRflagsZf;  // the opposite first
    auto r = run({0x0f, 0x00, 0xe3});  // verr bx
    EXPECT_EQ(r.kind, Kind::kEmulated) << why;
    EXPECT_EQ((regs_.rflags & kRflagsZf) != 0, readable) << "verr: " << why;
    regs_.rflags = writable ? regs_.rflags & ~kRflagsZf : regs_.rflags | kRflagsZf;
    auto w = run({0x0f, 0x00, 0xeb});  // verw bx
    EXPECT_EQ(w.kind, Kind::kEmulated) << why;
    EXPECT_EQ((regs_.rflags & kRflagsZf) != 0, writable) << "verw: " << why;
  }
}

TEST_F(Descriptors, ATableOutsideGuestMemoryIsAFault) {
  sregs_.gdt.base = 0x7000'0000;  // mapped by the boot page tables, but no memory there
  regs_.rax = 0x7b;
  auto o = run({0x48, 0x0f, 0x03, 0xc0});
  EXPECT_EQ(o.kind, Kind::kFault);
}

TEST_F(Fallback, GarbageBytesAreUndecodable) {
  auto o = run({0x0f, 0xff, 0xff, 0xff});
  EXPECT_EQ(o.kind, Kind::kUnknown);
  o = run({});
  EXPECT_EQ(o.kind, Kind::kUnknown);
  o = run({0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0});
  EXPECT_EQ(o.kind, Kind::kUnknown);
}

TEST_F(Fallback, ThirtyTwoBitModeDecodesDifferently) {
  // In 32-bit mode 0x48 is "dec eax", not REX.W: popcnt with a 0x48 prefix is not popcnt.
  sregs_.efer = 0;
  sregs_.cr0 = kCr0Pe;
  sregs_.cs.l = 0;
  sregs_.cs.db = 1;
  regs_.rip = 0x1000;
  regs_.rbx = 0xf;
  auto o = run({0xf3, 0x0f, 0xb8, 0xc3});  // popcnt eax, ebx
  EXPECT_EQ(o.kind, Kind::kEmulated);
  EXPECT_EQ(regs_.rax, 4u);
}

TEST_F(Fallback, FetchReadsThroughPageTables) {
  ASSERT_TRUE(mem_.write_obj<std::uint32_t>(GuestAddress{0x200000}, 0x00ca010f));
  std::array<std::byte, 15> buf{};
  EXPECT_EQ(fetch_instruction(mem_, sregs_, regs_, buf), 15u);
  EXPECT_EQ(hex_bytes(std::span(buf).first(3)), "0f 01 ca");
}

std::vector<std::byte> bytes_of(std::initializer_list<std::uint8_t> v) {
  std::vector<std::byte> b;
  for (auto x : v) b.push_back(std::byte{x});
  return b;
}

TEST_F(Fallback, TheBytesKvmFailedOnWinOverWhatMemoryHoldsNow) {
  // Another vCPU finished patching the text after this one met the int3: memory now holds the
  // new instruction (a call), which kiln does not emulate. The int3 must still be delivered.
  ASSERT_TRUE(mem_.write(GuestAddress{0x200000}, bytes_of({0xe8, 0x10, 0x00, 0x00, 0x00})));
  const auto f = emulate_failed_instruction(bytes_of({0xcc}), regs_, sregs_, fpu_, mem_);
  EXPECT_TRUE(f.from_kvm);
  EXPECT_EQ(f.outcome.kind, Kind::kInjectException);
  EXPECT_EQ(f.outcome.vector, kVectorBreakpoint);
  EXPECT_EQ(regs_.rip, 0x200001u);
  EXPECT_EQ(hex_bytes(f.used()), "cc");
}

TEST_F(Fallback, WithoutBytesFromKvmTheInstructionIsReadAtRip) {
  ASSERT_TRUE(mem_.write(GuestAddress{0x200000}, bytes_of({0x0f, 0x01, 0xca})));
  regs_.rflags |= kRflagsAc;
  const auto f = emulate_failed_instruction({}, regs_, sregs_, fpu_, mem_);
  EXPECT_FALSE(f.from_kvm);
  EXPECT_EQ(f.outcome.name, "clac");
  EXPECT_EQ(regs_.rflags & kRflagsAc, 0u);
  EXPECT_EQ(regs_.rip, 0x200003u);
}

TEST_F(Fallback, PartialBytesFromKvmFallBackToMemoryAndLeaveTheStateAlone) {
  // KVM stopped fetching two bytes into the instruction: they do not decode, so memory decides.
  ASSERT_TRUE(mem_.write(GuestAddress{0x200000}, bytes_of({0x9b})));
  const auto f = emulate_failed_instruction(bytes_of({0x0f, 0x01}), regs_, sregs_, fpu_, mem_);
  EXPECT_FALSE(f.from_kvm);
  EXPECT_EQ(f.outcome.name, "fwait");
  EXPECT_EQ(regs_.rip, 0x200001u);
}

TEST_F(Fallback, NeitherKvmsBytesNorMemoryGiveAnInstructionKilnKnows) {
  ASSERT_TRUE(mem_.write(GuestAddress{0x200000}, bytes_of({0xe8, 0x10, 0x00, 0x00, 0x00})));
  const auto before = regs_;
  const auto f = emulate_failed_instruction(bytes_of({0xe8, 0x10, 0x00, 0x00, 0x00}), regs_, sregs_, fpu_, mem_);
  EXPECT_EQ(f.outcome.kind, Kind::kUnknown);
  EXPECT_EQ(regs_.rip, before.rip);
  EXPECT_EQ(hex_bytes(f.used().first(5)), "e8 10 00 00 00");
}

}  // namespace
}  // namespace kiln::x86
