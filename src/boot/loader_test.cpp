#include "boot/loader.h"

#include <elf.h>

#include <cstring>

#include <gtest/gtest.h>

#include "arch/x86/layout.h"
#include "boot/boot_params.h"

namespace kiln::boot {
namespace {

GuestMemory make_mem(std::uint64_t size = 64 << 20) {
  auto l = x86_ram_layout(size);
  return std::move(*GuestMemory::create(l));
}

// A minimal bzImage: 4 setup sectors + boot sector, then `payload` bytes of protected-mode code.
std::vector<std::byte> fake_bzimage(std::size_t payload = 0x2000, std::uint16_t version = 0x20f,
                                    std::uint16_t xloadflags = kXlfKernel64) {
  std::vector<std::byte> img(5 * 512 + payload, std::byte{0x90});
  SetupHeader h{};
  h.setup_sects = 4;
  h.syssize = static_cast<std::uint32_t>(payload / 16);
  h.boot_flag = kBootFlag;
  h.jump = 0x66eb;  // jmp +0x66: header ends at 0x268
  h.header = kHdrSMagic;
  h.version = version;
  h.initrd_addr_max = 0x7fffffff;
  h.xloadflags = xloadflags;
  h.cmdline_size = 2047;
  h.init_size = 0x100000;
  std::memcpy(img.data() + 0x1f1, &h, sizeof(h));
  img[0x201] = std::byte{0x66};
  return img;
}

struct FakeElf {
  Elf64_Ehdr eh;
  Elf64_Phdr ph[2];
  struct {
    Elf64_Nhdr nh;
    char name[4];
    std::uint64_t desc;
  } note;
  std::uint8_t code[16];
};

std::vector<std::byte> fake_vmlinux(bool with_note = true) {
  FakeElf f{};
  std::memcpy(f.eh.e_ident, ELFMAG, SELFMAG);
  f.eh.e_ident[EI_CLASS] = ELFCLASS64;
  f.eh.e_ident[EI_DATA] = ELFDATA2LSB;
  f.eh.e_type = ET_EXEC;
  f.eh.e_machine = EM_X86_64;
  f.eh.e_phoff = offsetof(FakeElf, ph);
  f.eh.e_phentsize = sizeof(Elf64_Phdr);
  f.eh.e_phnum = 2;
  f.ph[0] = {PT_LOAD, 5, offsetof(FakeElf, code), 0xffffffff81000000, 0x1000000, 16, 0x3000, 0x1000};
  f.ph[1] = {PT_NOTE, 4, offsetof(FakeElf, note), 0, 0, sizeof(f.note), sizeof(f.note), 4};
  f.note.nh = {4, 8, with_note ? kXenElfNotePhys32Entry : 17};
  std::memcpy(f.note.name, "Xen", 4);
  f.note.desc = 0x1000008;
  std::memset(f.code, 0xf4, sizeof(f.code));
  std::vector<std::byte> v(sizeof(f));
  std::memcpy(v.data(), &f, sizeof(f));
  return v;
}

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

TEST(UnpackedBzImage, TheVmlinuxGoesToItsPhysicalAddressWithTheBzImagesBootParamsAndItsOwnEntry) {
  auto mem = make_mem();
  auto elf = fake_vmlinux();
  Elf64_Ehdr eh;
  std::memcpy(&eh, elf.data(), sizeof(eh));
  eh.e_entry = 0x1000000;  // a vmlinux's ELF entry: startup_64's physical address
  std::memcpy(elf.data(), &eh, sizeof(eh));
  auto k = load_linux(mem, fake_bzimage(), {}, "console=ttyS0", std::nullopt, elf);
  ASSERT_TRUE(k) << k.error().message();
  EXPECT_EQ(k->format, KernelFormat::kBzImageUnpacked);
  EXPECT_EQ(k->mode, x86::EntryMode::kLinux64);
  EXPECT_EQ(k->entry, 0x1000000u) << "the vmlinux's entry, not the decompressor's at 1 MiB + 0x200";
  EXPECT_EQ(k->kernel_end, 0x1000000u + 0x100000u) << "init_size from the kernel's start (past the 0x3000 it loads)";
  EXPECT_EQ(*mem.read_obj<std::uint8_t>(GuestAddress{0x1000000}), 0xf4u) << "the code is in place";
  EXPECT_EQ(*mem.read_obj<std::uint8_t>(GuestAddress{0x1000010}), 0u) << "and the rest of the segment zeroed";
  auto bp = mem.read_obj<BootParams>(GuestAddress{k->boot_info_addr});
  ASSERT_TRUE(bp);
  EXPECT_EQ(std::uint32_t{bp->hdr.header}, kHdrSMagic) << "the bzImage's setup header";
  EXPECT_EQ(std::uint32_t{bp->hdr.cmd_line_ptr}, x86::kCmdlineAddr);
  EXPECT_GT(bp->e820_entries, 0u);
  EXPECT_EQ(*mem.read_obj<std::uint8_t>(GuestAddress{x86::kBzImageLoadAddr}), 0u)
      << "nothing of the compressed kernel is loaded";
}

TEST(UnpackedBzImage, AnEntryOutsideTheSegmentsIsRefused) {
  auto mem = make_mem();
  auto elf = fake_vmlinux();
  Elf64_Ehdr eh;
  std::memcpy(&eh, elf.data(), sizeof(eh));
  eh.e_entry = 0x5000000;
  std::memcpy(elf.data(), &eh, sizeof(eh));
  auto k = load_linux(mem, fake_bzimage(), {}, "", std::nullopt, elf);
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message().find("entry point 0x5000000 is not inside"), std::string::npos) << k.error().message();
}

TEST(DetectFormat, PicksByContent) {
  EXPECT_EQ(*detect_kernel_format(fake_bzimage()), KernelFormat::kBzImage);
  EXPECT_EQ(*detect_kernel_format(fake_vmlinux()), KernelFormat::kElfPvh);
  auto r = detect_kernel_format(bytes("#!/bin/sh\necho this is not a kernel\n"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("not a Linux kernel"), std::string::npos);
}

TEST(BzImage, LoadsProtectedModeKernelAndFillsBootParams) {
  auto mem = make_mem();
  auto img = fake_bzimage();
  auto k = load_linux(mem, img, {}, "console=ttyS0");
  ASSERT_TRUE(k) << k.error().message();
  EXPECT_EQ(k->mode, x86::EntryMode::kLinux64);
  EXPECT_EQ(k->entry, 0x100200u);
  EXPECT_EQ(k->boot_info_addr, x86::kZeroPageAddr);
  EXPECT_EQ(*mem.read_obj<std::uint8_t>(GuestAddress{0x100000}), 0x90);
  // Fields at their absolute zero-page offsets, as the kernel reads them.
  const std::uint64_t zp = x86::kZeroPageAddr;
  EXPECT_EQ(*mem.read_obj<std::uint32_t>(GuestAddress{zp + 0x202}), kHdrSMagic);
  EXPECT_EQ(*mem.read_obj<std::uint8_t>(GuestAddress{zp + 0x210}), 0xff) << "type_of_loader";
  EXPECT_EQ(*mem.read_obj<std::uint32_t>(GuestAddress{zp + 0x228}), x86::kCmdlineAddr) << "cmd_line_ptr";
  const auto n = *mem.read_obj<std::uint8_t>(GuestAddress{zp + 0x1e8});
  ASSERT_EQ(n, 3u);
  auto e0 = *mem.read_obj<E820Entry>(GuestAddress{zp + 0x2d0});
  EXPECT_EQ(e0.addr, 0u);
  EXPECT_EQ(e0.size, x86::kEbdaStart);
  EXPECT_EQ(e0.type, kE820Ram);
  auto e2 = *mem.read_obj<E820Entry>(GuestAddress{zp + 0x2d0 + 2 * 20});
  EXPECT_EQ(e2.addr, x86::kHighMemStart);
  EXPECT_EQ(e2.addr + e2.size, 64u << 20);
  char cmd[16] = {};
  ASSERT_TRUE(mem.read(GuestAddress{x86::kCmdlineAddr}, std::as_writable_bytes(std::span(cmd))));
  EXPECT_STREQ(cmd, "console=ttyS0");
}

TEST(BzImage, InitrdGoesHighAndIsRecorded) {
  auto mem = make_mem();
  std::vector<std::byte> initrd(10000, std::byte{0xab});
  auto k = load_linux(mem, fake_bzimage(), initrd, "");
  ASSERT_TRUE(k) << k.error().message();
  ASSERT_TRUE(k->initrd);
  EXPECT_EQ(k->initrd->first % 4096, 0u);
  EXPECT_LE(k->initrd->first + initrd.size(), 64u << 20);
  EXPECT_GE(k->initrd->first, k->kernel_end);
  EXPECT_EQ(*mem.read_obj<std::uint32_t>(GuestAddress{x86::kZeroPageAddr + 0x218}), k->initrd->first);
  EXPECT_EQ(*mem.read_obj<std::uint32_t>(GuestAddress{x86::kZeroPageAddr + 0x21c}), 10000u);
  EXPECT_EQ(*mem.read_obj<std::uint8_t>(GuestAddress{k->initrd->first + 9999}), 0xab);
}

TEST(BzImage, TruncatedIsAnError) {
  auto img = fake_bzimage();
  img.resize(img.size() - 100);
  auto mem = make_mem();
  auto k = load_linux(mem, img, {}, "");
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message().find("truncated"), std::string::npos) << k.error().message();
  img.resize(0x210);
  EXPECT_FALSE(load_linux(mem, img, {}, ""));
}

TEST(BzImage, OldProtocolWithout64BitEntryIsRefused) {
  auto mem = make_mem();
  auto k = load_linux(mem, fake_bzimage(0x2000, 0x20a, 0), {}, "");
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message().find("64-bit"), std::string::npos);
}

TEST(BzImage, CmdlineLongerThanTheKernelTakesIsRefused) {
  auto mem = make_mem();
  const std::string longline(3000, 'x');
  auto k = load_linux(mem, fake_bzimage(), {}, longline);
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message().find("--cmdline"), std::string::npos);
  const std::string huge(x86::kCmdlineMax, 'y');
  EXPECT_FALSE(load_linux(mem, fake_bzimage(), {}, huge));
}

TEST(Initrd, TooBigForMemoryIsAClearError) {
  auto mem = make_mem(16 << 20);
  std::vector<std::byte> initrd(15 << 20);
  auto k = load_linux(mem, fake_bzimage(), initrd, "");
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message().find("--memory"), std::string::npos) << k.error().message();
}

TEST(Initrd, PlacementRespectsLimitAndKernelEnd) {
  auto mem = make_mem(64 << 20);
  EXPECT_EQ(*place_initrd(mem, 0x200000, 0x1000000, 0x1800), 0x1000000u - 0x2000);
  EXPECT_FALSE(place_initrd(mem, 0x3f00000, ~0ull, 0x200000));
  EXPECT_FALSE(place_initrd(mem, 0, ~0ull, ~0ull));
}

TEST(ElfPvh, LoadsSegmentsAndFindsEntryNote) {
  auto mem = make_mem();
  std::vector<std::byte> initrd(5000, std::byte{1});
  auto k = load_linux(mem, fake_vmlinux(), initrd, "root=/dev/vda");
  ASSERT_TRUE(k) << k.error().message();
  EXPECT_EQ(k->mode, x86::EntryMode::kPvh32);
  EXPECT_EQ(k->entry, 0x1000008u);
  EXPECT_EQ(k->kernel_end, 0x1003000u);
  EXPECT_EQ(*mem.read_obj<std::uint8_t>(GuestAddress{0x1000000}), 0xf4);
  EXPECT_EQ(*mem.read_obj<std::uint8_t>(GuestAddress{0x1002fff}), 0x00) << "bss zeroed";
  auto si = *mem.read_obj<HvmStartInfo>(GuestAddress{x86::kPvhStartInfoAddr});
  EXPECT_EQ(si.magic, kHvmStartMagic);
  EXPECT_EQ(si.version, 1u);
  EXPECT_EQ(si.cmdline_paddr, x86::kCmdlineAddr);
  ASSERT_EQ(si.nr_modules, 1u);
  auto mod = *mem.read_obj<HvmModlistEntry>(GuestAddress{si.modlist_paddr});
  EXPECT_EQ(mod.size, 5000u);
  EXPECT_EQ(mod.paddr, k->initrd->first);
  ASSERT_EQ(si.memmap_entries, 3u);
  auto last = *mem.read_obj<HvmMemmapEntry>(GuestAddress{si.memmap_paddr + 2 * sizeof(HvmMemmapEntry)});
  EXPECT_EQ(last.type, kE820Ram);
  EXPECT_EQ(last.addr + last.size, 64u << 20);
}

TEST(ElfPvh, WithoutTheNoteIsRefused) {
  auto mem = make_mem();
  auto k = load_linux(mem, fake_vmlinux(false), {}, "");
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message().find("PVH"), std::string::npos);
}

TEST(ElfPvh, TruncatedSegmentIsRefused) {
  auto img = fake_vmlinux();
  img.resize(img.size() - 8);
  auto mem = make_mem();
  auto k = load_linux(mem, img, {}, "");
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message().find("truncated"), std::string::npos);
}

TEST(ElfPvh, SegmentOutsideMemoryIsRefused) {
  auto mem = make_mem(8 << 20);  // the segment sits at 16 MiB
  auto k = load_linux(mem, fake_vmlinux(), {}, "");
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message().find("--memory"), std::string::npos);
}

TEST(ElfPvh, AnEntryPointOutsideTheLoadedSegmentsIsRefused) {
  // The note says 0x90000008; the only segment is 0x1000000..0x1003000 (found by kernel_image_fuzz).
  auto img = fake_vmlinux();
  const std::uint64_t outside = 0x9000'0008;
  std::memcpy(img.data() + offsetof(FakeElf, note.desc), &outside, sizeof(outside));
  auto mem = make_mem();
  auto k = load_linux(mem, img, {}, "");
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message().find("entry point 0x90000008 is not inside any loadable segment"), std::string::npos)
      << k.error().message();
}

TEST(ReadImageFile, MissingFileNamesTheFlag) {
  auto r = read_image_file("/nonexistent/kernel", "--kernel");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message().rfind("--kernel: cannot open '/nonexistent/kernel'", 0), 0u);
  EXPECT_FALSE(read_image_file("/tmp", "--initrd"));
  EXPECT_FALSE(read_image_file("/dev/null", "--initrd"));
}

}  // namespace
}  // namespace kiln::boot
