#pragma once
// Linux x86 boot protocol structures (Documentation/arch/x86/boot.rst, zero-page.rst): the setup
// header inside a bzImage and the 4 KiB boot_params "zero page" the loader fills in.
#include <cstddef>
#include <cstdint>

namespace kiln::boot {

#pragma pack(push, 1)
struct SetupHeader {
  std::uint8_t setup_sects;
  std::uint16_t root_flags;
  std::uint32_t syssize;
  std::uint16_t ram_size;
  std::uint16_t vid_mode;
  std::uint16_t root_dev;
  std::uint16_t boot_flag;
  std::uint16_t jump;
  std::uint32_t header;
  std::uint16_t version;
  std::uint32_t realmode_swtch;
  std::uint16_t start_sys_seg;
  std::uint16_t kernel_version;
  std::uint8_t type_of_loader;
  std::uint8_t loadflags;
  std::uint16_t setup_move_size;
  std::uint32_t code32_start;
  std::uint32_t ramdisk_image;
  std::uint32_t ramdisk_size;
  std::uint32_t bootsect_kludge;
  std::uint16_t heap_end_ptr;
  std::uint8_t ext_loader_ver;
  std::uint8_t ext_loader_type;
  std::uint32_t cmd_line_ptr;
  std::uint32_t initrd_addr_max;
  std::uint32_t kernel_alignment;
  std::uint8_t relocatable_kernel;
  std::uint8_t min_alignment;
  std::uint16_t xloadflags;
  std::uint32_t cmdline_size;
  std::uint32_t hardware_subarch;
  std::uint64_t hardware_subarch_data;
  std::uint32_t payload_offset;
  std::uint32_t payload_length;
  std::uint64_t setup_data;
  std::uint64_t pref_address;
  std::uint32_t init_size;
  std::uint32_t handover_offset;
  std::uint32_t kernel_info_offset;
};

struct E820Entry {
  std::uint64_t addr;
  std::uint64_t size;
  std::uint32_t type;
};

struct BootParams {
  std::uint8_t screen_info[0x40];
  std::uint8_t apm_bios_info[0x14];
  std::uint8_t pad2[4];
  std::uint64_t tboot_addr;
  std::uint8_t ist_info[0x10];
  std::uint64_t acpi_rsdp_addr;
  std::uint8_t pad3[8];
  std::uint8_t hd0_info[16];
  std::uint8_t hd1_info[16];
  std::uint8_t sys_desc_table[16];
  std::uint8_t olpc_ofw_header[16];
  std::uint32_t ext_ramdisk_image;
  std::uint32_t ext_ramdisk_size;
  std::uint32_t ext_cmd_line_ptr;
  std::uint8_t pad4[112];
  std::uint32_t cc_blob_address;
  std::uint8_t edid_info[0x80];
  std::uint8_t efi_info[0x20];
  std::uint32_t alt_mem_k;
  std::uint32_t scratch;
  std::uint8_t e820_entries;
  std::uint8_t eddbuf_entries;
  std::uint8_t edd_mbr_sig_buf_entries;
  std::uint8_t kbd_status;
  std::uint8_t secure_boot;
  std::uint8_t pad5[2];
  std::uint8_t sentinel;
  std::uint8_t pad6[1];
  SetupHeader hdr;
  std::uint8_t pad7[0x290 - 0x1f1 - sizeof(SetupHeader)];
  std::uint32_t edd_mbr_sig_buffer[16];
  E820Entry e820_table[128];
  std::uint8_t pad8[48];
  std::uint8_t eddbuf[0x1ec];
  std::uint8_t pad9[276];
};
#pragma pack(pop)

static_assert(sizeof(SetupHeader) == 0x7b);
static_assert(offsetof(SetupHeader, header) == 0x202 - 0x1f1);
static_assert(offsetof(SetupHeader, cmd_line_ptr) == 0x228 - 0x1f1);
static_assert(offsetof(SetupHeader, xloadflags) == 0x236 - 0x1f1);
static_assert(offsetof(SetupHeader, init_size) == 0x260 - 0x1f1);
static_assert(sizeof(E820Entry) == 20);
static_assert(offsetof(BootParams, acpi_rsdp_addr) == 0x070);
static_assert(offsetof(BootParams, ext_cmd_line_ptr) == 0x0c8);
static_assert(offsetof(BootParams, e820_entries) == 0x1e8);
static_assert(offsetof(BootParams, sentinel) == 0x1ef);
static_assert(offsetof(BootParams, hdr) == 0x1f1);
static_assert(offsetof(BootParams, e820_table) == 0x2d0);
static_assert(offsetof(BootParams, eddbuf) == 0xd00);
static_assert(sizeof(BootParams) == 4096);

inline constexpr std::uint16_t kBootFlag = 0xaa55;
inline constexpr std::uint32_t kHdrSMagic = 0x53726448;  // "HdrS"
inline constexpr std::uint8_t kLoadedHigh = 0x01;
inline constexpr std::uint8_t kCanUseHeap = 0x80;
inline constexpr std::uint16_t kXlfKernel64 = 0x01;
inline constexpr std::uint32_t kE820Ram = 1;
inline constexpr std::uint32_t kE820Reserved = 2;

// PVH (xen/include/public/arch-x86/hvm/start_info.h).
#pragma pack(push, 1)
struct HvmStartInfo {
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t flags;
  std::uint32_t nr_modules;
  std::uint64_t modlist_paddr;
  std::uint64_t cmdline_paddr;
  std::uint64_t rsdp_paddr;
  std::uint64_t memmap_paddr;
  std::uint32_t memmap_entries;
  std::uint32_t reserved;
};
struct HvmModlistEntry {
  std::uint64_t paddr;
  std::uint64_t size;
  std::uint64_t cmdline_paddr;
  std::uint64_t reserved;
};
struct HvmMemmapEntry {
  std::uint64_t addr;
  std::uint64_t size;
  std::uint32_t type;
  std::uint32_t reserved;
};
#pragma pack(pop)
static_assert(sizeof(HvmStartInfo) == 56);
static_assert(offsetof(HvmStartInfo, memmap_paddr) == 40);
static_assert(offsetof(HvmStartInfo, memmap_entries) == 48);
static_assert(sizeof(HvmModlistEntry) == 32);
static_assert(sizeof(HvmMemmapEntry) == 24);
inline constexpr std::uint32_t kHvmStartMagic = 0x336ec578;
inline constexpr std::uint32_t kXenElfNotePhys32Entry = 18;

}  // namespace kiln::boot
