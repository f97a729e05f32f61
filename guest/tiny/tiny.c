/*
 * kiln's tiny test guest. The command line (from PVH start info) names one test:
 *   hello          print a line on COM1, exit 0
 *   fallback       run each instruction nested-PVM KVM cannot emulate; exit 0 if all gave the
 *                  architectural result, else 10 + the failing step
 *   triple-fault   fault with no usable IDT (kiln should exit 3)
 *   unknown        an SSE instruction KVM's emulator gives up on and kiln does not emulate
 *   pio N          at CPL3 with IOPL 3, write port 0x80 N times, then exit 0 (benchmark)
 *   echo           print what arrives on COM1; a few keys end the run their own way:
 *                  q exit 0, T triple fault, P a panic (start and end lines), R reset via the i8042
 *   smp N          start the other vCPUs (x2APIC INIT + SIPI to a real-mode trampoline that counts
 *                  itself in); print how many came, exit 0 if N - 1 did, else 30
 *   panic-end      print a kernel's panic line and its end line, then halt
 *   panic-spin     print only the panic line, then halt (kiln's 3 s fallback ends it)
 *   panic-reset    print the panic line, then reset through the i8042 (still a panic)
 *   reset-kbd      reset through the i8042 keyboard controller (Linux's reboot=k), exit 2
 *   cpl0-loop N    N iterations of a 2-instruction loop at CPL0, then exit 0 (how fast the host
 *                  runs guest kernel code)
 *   cpuid          print the CPUID registers the guest sees (leaves 1, 7.0, 0x80000001,
 *                  0x80000008, 0x8000001e)
 *   firmware       check the RSDP the start info points at and the MP floating pointer; exit 0
 *                  if both are where kiln puts them with right signatures and checksums, else 20+
 *   profile-spin N at CPL3, N iterations of a loop in profile_hot, then N/4 in profile_cold, exit 0
 *                  (kiln's --profile must find them on top, in that order)
 *   virtio-...     drive virtio devices from CPL3 by polling (virtio_driver.c lists the tests)
 *   syscall-fix    a kernel's syscall set-up as kiln's run-time redirect expects it: LSTAR in a
 *                  supervisor 2 MiB page whose last 64 bytes are int3 padding, a #PF gate; waits a
 *                  while for kiln to point the gate elsewhere (says whether it did), then makes a
 *                  SYSCALL from CPL3. Exit 0 if it reached the entry at CPL0 with the user's RIP
 *                  and stack; 41 if it became a #PF at the entry instead (nested PVM, no redirect)
 *   syscall-fix-nopad  the same without the padding (kiln must refuse and leave the gate alone)
 *   timer N        at CPL0, N times: arm the x2APIC's TSC-deadline timer for now and wait (hlt)
 *                  for its interrupt; exit 0 when all N came (kiln's --timer-floor shows in how
 *                  long that takes), 50 if the timer is not in TSC-deadline mode
 * Every exit goes through the debug-exit port (0xf4).
 */
#include <stdint.h>

#include "tiny.h"

struct hvm_start_info {
  uint32_t magic, version, flags, nr_modules;
  uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
  uint32_t memmap_entries, reserved;
};

extern uint64_t bp_count;
extern volatile uint64_t timer_count;
extern void bp_handler(void), other_handler_ud(void), other_handler_gp(void), timer_handler(void);
extern void enter_user(void (*fn)(uint64_t), uint64_t arg) __attribute__((noreturn));

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

void __attribute__((noreturn)) finish(uint8_t status) {
  outb(0xf4, status);
  for (;;) __asm__ volatile("hlt");
}

static void putc_serial(char c) {
  while ((inb(0x3f8 + 5) & 0x20) == 0) {
  }
  outb(0x3f8, (uint8_t)c);
}

void puts_serial(const char* s) {
  for (; *s; ++s) {
    if (*s == '\n') putc_serial('\r');
    putc_serial(*s);
  }
}

void put_hex(uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  char buf[9];
  for (int i = 0; i < 8; ++i) buf[i] = digits[(v >> (28 - 4 * i)) & 0xf];
  buf[8] = 0;
  puts_serial(buf);
}

static uint8_t sum8(const uint8_t* p, uint32_t n) {
  uint8_t s = 0;
  for (uint32_t i = 0; i < n; ++i) s = (uint8_t)(s + p[i]);
  return s;
}

int starts_with(const char* s, const char* p) {
  for (; *p; ++s, ++p)
    if (*s != *p) return 0;
  return 1;
}

uint64_t parse_u64(const char* s) {
  uint64_t v = 0;
  while (*s == ' ') ++s;
  while (*s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
  return v;
}

struct idt_entry {
  uint16_t off_lo, sel;
  uint8_t ist, type;
  uint16_t off_mid;
  uint32_t off_hi, zero;
} __attribute__((packed));
static struct idt_entry idt[64] __attribute__((aligned(16)));

static void set_gate(int v, void (*h)(void)) {
  uint64_t a = (uint64_t)h;
  idt[v] = (struct idt_entry){(uint16_t)a, 0x08, 0, 0x8e, (uint16_t)(a >> 16), (uint32_t)(a >> 32), 0};
}

/* A TSS for CPL3, loaded into TR (GDT slot 0x30): a CPL0 stack for exceptions, and an I/O
 * permission bitmap that allows every port. Nested PVM does not honour IOPL 3 for CPL3 port I/O
 * but checks the TSS bitmap (with no TSS loaded, whatever memory the reset TR points at decides). */
extern uint64_t gdt_tss[2];
static struct {
  uint32_t reserved0;
  uint64_t rsp0, rsp1, rsp2, reserved1, ist[7], reserved2;
  uint16_t reserved3, iomap_base;
  uint8_t iomap[8192 + 1]; /* all zero: every port allowed; the last byte ends the map */
} __attribute__((packed)) tss;
static uint8_t interrupt_stack[4096] __attribute__((aligned(16)));

static void load_tss(void) {
  tss.rsp0 = (uint64_t)(interrupt_stack + sizeof interrupt_stack);
  tss.iomap_base = (uint16_t)((uint64_t)&tss.iomap - (uint64_t)&tss);
  tss.iomap[8192] = 0xff;
  const uint64_t base = (uint64_t)&tss, limit = sizeof tss - 1;
  gdt_tss[0] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) | (((base >> 24) & 0xff) << 56);
  gdt_tss[1] = base >> 32;
  __asm__ volatile("ltr %w0" ::"r"(0x30));
}

static void load_idt(uint16_t limit) {
  struct {
    uint16_t limit;
    uint64_t base;
  } __attribute__((packed)) d = {limit, (uint64_t)idt};
  __asm__ volatile("lidt %0" ::"m"(d));
}

static void step(int n, const char* name, int ok) {
  puts_serial(ok ? "tiny: ok " : "tiny: FAIL ");
  puts_serial(name);
  puts_serial("\n");
  if (!ok) finish((uint8_t)(10 + n));
}

static void fallback(void) {
  set_gate(3, bp_handler);
  set_gate(6, other_handler_ud);
  set_gate(13, other_handler_gp);
  load_idt(sizeof(idt) - 1);

  __asm__ volatile("int3");
  step(1, "int3", bp_count == 1);

  uint64_t flags;
  __asm__ volatile("stac; pushfq; popq %0" : "=r"(flags));
  step(2, "stac", (flags & (1u << 18)) != 0);
  __asm__ volatile("clac; pushfq; popq %0" : "=r"(flags));
  step(3, "clac", (flags & (1u << 18)) == 0);

  __asm__ volatile("fwait");
  step(4, "fwait", 1);

  uint32_t in = 0x1fa0, out = 0;
  __asm__ volatile("ldmxcsr %1; stmxcsr %0" : "=m"(out) : "m"(in));
  step(5, "ldmxcsr/stmxcsr", out == 0x1fa0);

  uint64_t src = 0xf0f0f0f0f0f0f0f0ull, cnt = 0;
  __asm__ volatile("popcnt %1, %0" : "=r"(cnt) : "r"(src) : "cc");
  step(6, "popcnt", cnt == 32);

  static uint64_t pair[2] __attribute__((aligned(16))) = {1, 2};
  uint64_t rax = 1, rdx = 2;
  uint8_t zf;
  __asm__ volatile("lock cmpxchg16b %1; setz %0"
                   : "=q"(zf), "+m"(pair), "+a"(rax), "+d"(rdx)
                   : "b"(7ull), "c"(8ull)
                   : "cc");
  step(7, "cmpxchg16b", zf == 1 && pair[0] == 7 && pair[1] == 8);

  /* What Linux's NMI entry does to find its CPU without RDPID; a null selector gives ZF=0. */
  uint64_t limit = 0x2b, untouched = 0x77;
  uint8_t zf_null;
  __asm__ volatile("lsl %0, %0; setz %1" : "+r"(limit), "=q"(zf) : : "cc");
  __asm__ volatile("lsl %2, %0; setz %1" : "+r"(untouched), "=q"(zf_null) : "r"(0ull) : "cc");
  step(8, "lsl", zf == 1 && limit == 0x1003 && zf_null == 0 && untouched == 0x77);
  finish(0);
}

/* syscall-fix (see the list above). */
extern uint64_t pd[512];
extern uint8_t stack_top[], user_stack_top[];
extern void pf_handler(void), syscall_entry(void);
extern char syscall_return[];
uint64_t syscall_rcx, syscall_rsp, syscall_cs;

static void wrmsr(uint32_t msr, uint64_t v) {
  __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static uint64_t rdmsr(uint32_t msr) {
  uint32_t lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return lo | ((uint64_t)hi << 32);
}

void __attribute__((noreturn)) syscall_arrived(void) {
  if ((syscall_cs & 3) != 0) {
    puts_serial("tiny: the syscall entry ran at CPL3\n");
    finish(43);
  }
  if (syscall_rcx != (uint64_t)syscall_return) {
    puts_serial("tiny: RCX at the syscall entry is not the user's return address\n");
    finish(44);
  }
  if (syscall_rsp > (uint64_t)user_stack_top || syscall_rsp < (uint64_t)stack_top) {
    puts_serial("tiny: RSP at the syscall entry is not the user's stack\n");
    finish(45);
  }
  puts_serial("tiny: syscall reached the kernel at CPL0 with the user's RIP and stack\n");
  finish(0);
}

static void make_syscall(uint64_t unused) {
  (void)unused;
  __asm__ volatile("syscall\n.globl syscall_return\nsyscall_return:" ::: "rcx", "r11", "memory");
  finish(46); /* never returns here: the entry ends the run */
}

static void __attribute__((noreturn)) syscall_fix(int padding) {
  const uint64_t lstar = 0x400000, page_end = 0x600000;
  pd[2] = lstar | 0x83; /* present | writable | 2 MiB, supervisor only */
  __asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" ::: "rax", "memory");
  uint8_t* t = (uint8_t*)lstar; /* jmp *0(%rip); .quad syscall_entry */
  const uint8_t jmp[6] = {0xff, 0x25, 0, 0, 0, 0};
  for (int i = 0; i < 6; ++i) t[i] = jmp[i];
  const uint64_t target = (uint64_t)syscall_entry;
  for (int i = 0; i < 8; ++i) t[6 + i] = (uint8_t)(target >> (8 * i));
  for (uint64_t a = page_end - 64; a < page_end; ++a) *(volatile uint8_t*)a = padding ? 0xcc : 0x00;
  set_gate(14, pf_handler);
  set_gate(6, other_handler_ud);
  set_gate(13, other_handler_gp);
  load_idt(sizeof(idt) - 1);
  load_tss();
  wrmsr(0xc0000080, rdmsr(0xc0000080) | 1);  /* EFER.SCE */
  wrmsr(0xc0000081, (0x08ull << 32) | (0x10ull << 48)); /* STAR: kernel CS 0x08 */
  wrmsr(0xc0000084, 0x200);                  /* SFMASK: IF */
  wrmsr(0xc0000082, lstar);
  /* Wait for kiln (it looks every 100 ms, after an exit): the gate's offset changes. */
  const uint64_t ours = (uint64_t)pf_handler;
  int patched = 0;
  for (unsigned i = 0; i < 50000 && !patched; ++i) {
    const volatile struct idt_entry* g = &idt[14];
    const uint64_t now = g->off_lo | ((uint64_t)g->off_mid << 16) | ((uint64_t)g->off_hi << 32);
    patched = now != ours;
    outb(0x80, 0);
  }
  puts_serial(patched ? "tiny: gate patched\n" : "tiny: gate not patched\n");
  enter_user(make_syscall, 0);
}

static void __attribute__((noreturn)) halt_forever(void) {
  for (;;) __asm__ volatile("cli; hlt");
}

static void __attribute__((noreturn)) triple_fault(void) {
  load_idt(0);
  __asm__ volatile("ud2");
  halt_forever();
}

/* What Linux prints when it panics, and once it has done all it will (kernel/panic.c). */
static void panic_line(void) { puts_serial("Kernel panic - not syncing: tiny guest panics on purpose\n"); }
static void panic_end_line(void) { puts_serial("---[ end Kernel panic - not syncing: tiny guest panics on purpose ]---\n"); }

static void __attribute__((noreturn)) reset_kbd(void) {
  outb(0x64, 0xfe); /* pulse the reset line */
  halt_forever();
}


uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

extern const uint8_t ap_trampoline[], ap_trampoline_end[];
#define AP_TRAMPOLINE 0x10000u /* SIPI vector 0x10 */
#define AP_COUNT (AP_TRAMPOLINE + 0x100u)

static void __attribute__((noreturn)) smp(uint64_t cpus) {
  volatile uint8_t* dst = (volatile uint8_t*)(uint64_t)AP_TRAMPOLINE;
  for (const uint8_t* p = ap_trampoline; p < ap_trampoline_end; ++p) *dst++ = *p;
  volatile uint16_t* count = (volatile uint16_t*)(uint64_t)AP_COUNT;
  *count = 0;
  wrmsr(0x1b, rdmsr(0x1b) | (1u << 11) | (1u << 10)); /* APIC on, x2APIC mode */
  wrmsr(0x80f, 0x1ff);                                 /* spurious vector register: software-enabled */
  wrmsr(0x830, 0xc4500);                               /* INIT, level assert, to all but self */
  wrmsr(0x830, 0xc4600 | (AP_TRAMPOLINE >> 12));       /* STARTUP at the trampoline */
  /* Up to ~1 s (2e9 TSC ticks at 2 GHz): the APs take microseconds when they come at all. */
  const uint64_t t0 = rdtsc();
  while (*count < cpus - 1 && rdtsc() - t0 < 2000000000ull) __asm__ volatile("pause");
  const uint16_t came = *count;
  puts_serial("tiny: ");
  put_hex(came);
  puts_serial(" other cpus ran\n");
  finish(cpus > 0 && came == cpus - 1 ? 0 : 30);
}

/* Two loops for the profiler's test: their names are what the report must show. */
/* noipa: the compiler must not fold the two into one (they differ only in name). */
static void __attribute__((noipa)) profile_hot(uint64_t n) {
  if (n != 0) __asm__ volatile("1: dec %0; jnz 1b" : "+r"(n)::"cc");
}
static void __attribute__((noipa)) profile_cold(uint64_t n) {
  /* The same loop as profile_hot's: an emulator may run different instructions at different
   * speeds (with a `sub` loop here, TCG in the nested-SVM VM gave a ratio of 20, not 4). */
  if (n != 0) __asm__ volatile("1: dec %0; jnz 1b" : "+r"(n)::"cc");
}
static void profile_spin(uint64_t n) {
  profile_hot(n);
  profile_cold(n / 4);
  finish(0);
}

static void __attribute__((noreturn)) timer(uint64_t n) {
  set_gate(0x20, timer_handler);
  set_gate(6, other_handler_ud);
  set_gate(13, other_handler_gp);
  load_idt(sizeof(idt) - 1);
  wrmsr(0x1b, rdmsr(0x1b) | (1u << 11) | (1u << 10)); /* APIC on, x2APIC mode */
  wrmsr(0x80f, 0x1ff);                                 /* spurious vector register: software-enabled */
  wrmsr(0x832, 0x20 | (2u << 17));                     /* LVT timer: vector 0x20, TSC-deadline mode */
  if ((rdmsr(0x832) & (3u << 17)) != (2u << 17)) finish(50);
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t before = timer_count;
    wrmsr(0x6e0, rdtsc() + 1000);
    while (timer_count == before) __asm__ volatile("sti; hlt; cli");
  }
  puts_serial("tiny: timer fired ");
  put_hex((uint32_t)n);
  puts_serial(" times\n");
  finish(0);
}

/* Writes to COM1's data register may wait in KVM's coalesced-write ring: a register read must
   still see every write before it (the divisor latch, a byte looped back). */
static void __attribute__((noreturn)) serial_order(void) {
  outb(0x3f8 + 3, 0x80); /* LCR: DLAB */
  outb(0x3f8, 0x5a);     /* the divisor's low byte */
  if (inb(0x3f8) != 0x5a) finish(60);
  outb(0x3f8, 0x01); /* 115200 baud again */
  outb(0x3f8 + 3, 0x03);
  outb(0x3f8 + 4, 0x18); /* MCR: loopback, OUT2 */
  outb(0x3f8, 'k');
  if ((inb(0x3f8 + 5) & 1) == 0) finish(61); /* LSR: data ready */
  if (inb(0x3f8) != 'k') finish(62);
  outb(0x3f8 + 4, 0x08);
  puts_serial("tiny: serial order ok\n");
  finish(0);
}

/* A line written without a read of LSR, then nothing that exits to the VMM ever again. */
static void __attribute__((noreturn)) serial_tail(void) {
  for (const char* p = "tiny: the last line\r\n"; *p; ++p) outb(0x3f8, (uint8_t)*p);
  halt_forever();
}

static void pio_loop(uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) outb(0x80, (uint8_t)i);
  finish(0);
}

void __attribute__((noreturn)) tiny_main(uint32_t start_info_addr) {
  const struct hvm_start_info* si = (const struct hvm_start_info*)(uint64_t)start_info_addr;
  const char* cmd = si->magic == 0x336ec578 && si->cmdline_paddr ? (const char*)si->cmdline_paddr : "";
  if (starts_with(cmd, "hello")) {
    puts_serial("tiny: hello from the guest\n");
    finish(0);
  }
  if (starts_with(cmd, "fallback")) fallback();
  if (starts_with(cmd, "triple-fault")) triple_fault();
  if (starts_with(cmd, "smp")) smp(parse_u64(cmd + 3));
  if (starts_with(cmd, "panic-end")) {
    panic_line();
    panic_end_line();
    halt_forever();
  }
  if (starts_with(cmd, "panic-spin")) {
    panic_line();
    halt_forever();
  }
  if (starts_with(cmd, "panic-reset")) {
    panic_line();
    reset_kbd();
  }
  if (starts_with(cmd, "reset-kbd")) reset_kbd();
  if (starts_with(cmd, "serial-order")) serial_order();
  if (starts_with(cmd, "serial-tail")) serial_tail();
  if (starts_with(cmd, "unknown")) {
    set_gate(6, other_handler_ud);
    set_gate(13, other_handler_gp);
    load_idt(sizeof(idt) - 1);
    __asm__ volatile(".byte 0x66, 0x0f, 0x6e, 0xc0" ::"a"(1));  /* movd xmm0, eax */
    puts_serial("tiny: movd ran\n");
    finish(0);
  }
  if (starts_with(cmd, "pio")) {
    load_tss();
    enter_user(pio_loop, parse_u64(cmd + 3));
  }
  if (starts_with(cmd, "profile-spin")) {
    load_tss();
    enter_user(profile_spin, parse_u64(cmd + 12));
  }
  if (starts_with(cmd, "virtio")) {
    load_tss();
    enter_user(virtio_main, (uint64_t)cmd);
  }
  if (starts_with(cmd, "timer")) timer(parse_u64(cmd + 5));
  if (starts_with(cmd, "syscall-fix-nopad")) syscall_fix(0);
  if (starts_with(cmd, "syscall-fix")) syscall_fix(1);
  if (starts_with(cmd, "cpl0-loop")) {
    uint64_t n = parse_u64(cmd + 9);
    if (n != 0) __asm__ volatile("1: dec %0; jnz 1b" : "+r"(n)::"cc");
    finish(0);
  }
  if (starts_with(cmd, "cpuid")) {
    static const uint32_t leaves[][2] = {{1, 0}, {7, 0}, {0x80000001, 0}, {0x80000008, 0}, {0x8000001e, 0}, {0xb, 0}, {0xb, 1}, {0, 0}};
    for (unsigned i = 0; i < 8; ++i) {
      uint32_t a, b, c, d;
      __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaves[i][0]), "c"(leaves[i][1]));
      puts_serial("tiny: cpuid ");
      put_hex(leaves[i][0]);
      puts_serial(" ebx=");
      put_hex(b);
      puts_serial(" ecx=");
      put_hex(c);
      puts_serial(" edx=");
      put_hex(d);
      puts_serial("\n");
    }
    finish(0);
  }
  if (starts_with(cmd, "firmware")) {
    const uint8_t* rsdp = (const uint8_t*)si->rsdp_paddr;
    if (rsdp == 0 || !starts_with((const char*)rsdp, "RSD PTR ")) finish(20);
    if (sum8(rsdp, 20) != 0 || sum8(rsdp, 36) != 0) finish(21);
    const uint8_t* xsdt = (const uint8_t*)*(const uint64_t*)(rsdp + 24);
    if (!starts_with((const char*)xsdt, "XSDT") || sum8(xsdt, *(const uint32_t*)(xsdt + 4)) != 0) finish(22);
    const uint8_t* mp = (const uint8_t*)0x9fc00;
    if (!starts_with((const char*)mp, "_MP_") || sum8(mp, 16) != 0) finish(23);
    const uint8_t* pcmp = (const uint8_t*)(uintptr_t)*(const uint32_t*)(mp + 4);
    if (!starts_with((const char*)pcmp, "PCMP") || sum8(pcmp, *(const uint16_t*)(pcmp + 4)) != 0) finish(24);
    puts_serial("tiny: firmware tables ok\n");
    finish(0);
  }
  if (starts_with(cmd, "counter")) {  /* a line per step, forever: for pause and resume */
    for (uint64_t i = 0;; ++i) {
      puts_serial("tiny: count ");
      put_hex(i);
      puts_serial("\n");
      for (unsigned d = 0; d < 2000; ++d) outb(0x80, 0);
    }
  }
  if (starts_with(cmd, "echo")) {
    puts_serial("tiny: echo ready\n");
    for (;;) {
      while ((inb(0x3f8 + 5) & 1) == 0) {
      }
      const char c = (char)inb(0x3f8);
      if (c == 'q') {
        puts_serial("\ntiny: bye\n");
        finish(0);
      }
      if (c == 'T') triple_fault();
      if (c == 'P') {
        panic_line();
        panic_end_line();
        halt_forever();
      }
      if (c == 'R') reset_kbd();
      putc_serial(c);
    }
  }
  puts_serial("tiny: unknown test '");
  puts_serial(cmd);
  puts_serial("'\n");
  finish(98);
}
