/*
 * A virtio driver for kiln's tests and benchmarks, at CPL3 with no interrupts: it finds the
 * device on either transport (a virtio-mmio device kiln put on the command line,
 * virtio_mmio.device=4K@0x...:N, or else a virtio-pci function on bus 0), sets it up as a driver
 * would, and polls the used ring. Tests (the first word after "virtio-"):
 *   blk-io        read, write, flush, GET_ID, discard, write zeroes and a read past the end on a disk
 *                 whose byte i of sector s the host set to (s * 7 + i) & 0xff; exit 0 or 40 + step
 *   blk-ro        the disk is read-only: a write gets IOERR, a read works; exit 0 or 50 + step
 *   blk-reset     a looping chain: the device must say NEEDS_RESET; then reset, set it up again
 *                 and read; exit 0 or 60 + step
 *   rng           64 bytes from virtio-rng, twice, not equal; exit 0 or 70 + step
 *   blk-records   durability: record n (sector n: n, then a pattern) written, then flushed, then
 *                 "tiny: flushed n" printed, for ever (the host kills kiln at a random moment)
 *   blk-resize    waits for the disk's capacity to change (the host swaps the image), then checks
 *                 the config generation and the config-change interrupt status; exit 0 or 100 + step
 *   net-arp       virtio-net: an ARP request for 10.0.2.2, whose reply must come; exit 0 or 110 + step
 *   net-arp-mmds  the same for 169.254.169.254, kiln's metadata service (--mmds)
 *   net-flood N   N full-size frames sent as fast as the queue takes them, nothing read; then the
 *                 ARP exchange must still work; exit 0 or 120 + step
 *   net-bench tx|rx N   N frames sent, or received (the host floods), as fast as the queues go;
 *                 prints the TSC cycles taken, exit 0
 *   net-tcp rx|tx N   N bytes received from, or sent to, a host program over one TCP connection
 *                 through user-mode networking's hostfwd to port 5555; prints the TSC cycles taken,
 *                 exit 0 or 150 + step
 *   vsock         virtio-vsock: connects to the host's port 5000, sends "hello from the guest", prints
 *                 what comes back, closes (SHUTDOWN, then the host's RST); then says "vsock
 *                 listening" and accepts the host's connection to its port 7000, echoes what
 *                 comes as "echo: ..." and waits for the host to close; exit 0 or 130 + step
 *   vsock-bench tx|rx|connect N   to the host's port 5000: N packets of 4 KiB sent (within the
 *                 host's credit), or N * 4 KiB received, or N connections opened and closed;
 *                 prints the TSC cycles taken, exit 0 or 140 + step (147: a connection refused)
 *   blk-bench K D N   N requests of kind K (randread4k, seqread128k, seqwrite128k) with D in
 *                 flight; prints the TSC cycles taken, exit 0
 */
#include <stdint.h>

#include "tiny.h"

static uint32_t reg_read(uintptr_t at) { return *(volatile uint32_t*)at; }
static void reg_write(uintptr_t at, uint32_t v) { *(volatile uint32_t*)at = v; }
#define RD(base, off) reg_read((base) + (off))
#define WR(base, off, v) reg_write((base) + (off), (v))
enum {
  kMagic = 0x000, kVersion = 0x004, kDeviceId = 0x008, kDevFeatures = 0x010, kDevFeaturesSel = 0x014,
  kDrvFeatures = 0x020, kDrvFeaturesSel = 0x024, kQueueSel = 0x030, kQueueNumMax = 0x034, kQueueNum = 0x038,
  kQueueReady = 0x044, kQueueNotify = 0x050, kStatus = 0x070, kDescLo = 0x080, kDescHi = 0x084,
  kAvailLo = 0x090, kAvailHi = 0x094, kUsedLo = 0x0a0, kUsedHi = 0x0a4, kConfig = 0x100,
};
enum { kAck = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8, kNeedsReset = 64 };
enum { kIn = 0, kOut = 1, kFlush = 4, kGetId = 8, kDiscard = 11, kWriteZeroes = 13 };
#define NEXT 1
#define WRITE 2

struct desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags, next;
};
struct vq {
  uint16_t size, used_seen, avail_idx, index;
  volatile struct desc* desc;
  volatile uint16_t* avail; /* flags, idx, ring[] */
  volatile uint16_t* used;  /* flags, idx, then {u32 id, u32 len}[] */
  uintptr_t notify_at;
};

/* Fixed places in the first GiB (identity-mapped, user-accessible). */
#define QUEUE_AREA 0x300000ull
#define HEADERS 0x340000ull
#define STATUSES 0x348000ull
#define DATA 0x400000ull /* 8 MiB of buffers */

static void barrier(void) { __asm__ volatile("mfence" ::: "memory"); }

/* The device found, on either transport: virtio-mmio registers, or a virtio-pci function's
 * common, notify and device-config structures in its BAR. */
static struct {
  int pci;
  uintptr_t regs;                 /* virtio-mmio */
  uintptr_t common, notify, cfg, isr;  /* virtio-pci */
  uint32_t notify_mult;
} dev;

static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint32_t inl(uint16_t port) {
  uint32_t v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static uint32_t pci_cfg(uint32_t d, uint32_t reg) {
  outl(0xcf8, 0x80000000u | d << 11 | (reg & 0xfc));
  return inl(0xcfc);
}
static void pci_cfg_write(uint32_t d, uint32_t reg, uint32_t v) {
  outl(0xcf8, 0x80000000u | d << 11 | (reg & 0xfc));
  outl(0xcfc, v);
}

static int find_mmio(const char* cmd, uint32_t type) {
  for (const char* p = cmd; *p; ++p) {
    if (!starts_with(p, "virtio_mmio.device=")) continue;
    const char* at = p;
    while (*at && *at != '@') ++at;
    if (*at != '@' || at[1] != '0' || at[2] != 'x') continue;
    uintptr_t base = 0;
    for (at += 3;; ++at) {
      const char c = *at;
      if (c >= '0' && c <= '9') base = base * 16 + (uintptr_t)(c - '0');
      else if (c >= 'a' && c <= 'f') base = base * 16 + (uintptr_t)(c - 'a' + 10);
      else break;
    }
    if (RD(base, kMagic) == 0x74726976 && RD(base, kDeviceId) == type) {
      dev.pci = 0;
      dev.regs = base;
      return 1;
    }
  }
  return 0;
}

/* Bus 0 through ports 0xCF8/0xCFC: the virtio-pci function of `type`, its BAR and capabilities. */
static int find_pci(uint32_t type) {
  for (uint32_t d = 0; d < 32; ++d) {
    const uint32_t id = pci_cfg(d, 0);
    if (id != (0x1af4u | (0x1040u + type) << 16)) continue;
    const uint64_t bar = (pci_cfg(d, 0x10) & ~0xfull) | (uint64_t)pci_cfg(d, 0x14) << 32;
    pci_cfg_write(d, 0x04, pci_cfg(d, 0x04) | 0x6); /* memory decoding, bus master */
    for (uint32_t cap = pci_cfg(d, 0x34) & 0xff; cap != 0; cap = (pci_cfg(d, cap) >> 8) & 0xff) {
      const uint32_t head = pci_cfg(d, cap);
      if ((head & 0xff) != 0x09) continue;
      const uint32_t cfg_type = (head >> 24) & 0xff;
      const uintptr_t at = (uintptr_t)(bar + pci_cfg(d, cap + 8));
      if (cfg_type == 1) dev.common = at;
      if (cfg_type == 2) {
        dev.notify = at;
        dev.notify_mult = pci_cfg(d, cap + 16);
      }
      if (cfg_type == 3) dev.isr = at;
      if (cfg_type == 4) dev.cfg = at;
    }
    dev.pci = 1;
    return dev.common && dev.notify && dev.cfg;
  }
  return 0;
}

static uint8_t rd8(uintptr_t at) { return *(volatile uint8_t*)at; }
static void wr8(uintptr_t at, uint8_t v) { *(volatile uint8_t*)at = v; }
static uint16_t rd16(uintptr_t at) { return *(volatile uint16_t*)at; }
static void wr16(uintptr_t at, uint16_t v) { *(volatile uint16_t*)at = v; }

static uint32_t dev_status(void) { return dev.pci ? rd8(dev.common + 0x14) : RD(dev.regs, kStatus); }
static void dev_set_status(uint32_t v) {
  if (dev.pci) wr8(dev.common + 0x14, (uint8_t)v);
  else WR(dev.regs, kStatus, v);
}
static uint32_t dev_features(uint32_t sel) {
  if (dev.pci) {
    WR(dev.common, 0x00, sel);
    return RD(dev.common, 0x04);
  }
  WR(dev.regs, kDevFeaturesSel, sel);
  return RD(dev.regs, kDevFeatures);
}
static void dev_set_driver_features(uint32_t sel, uint32_t v) {
  WR(dev.pci ? dev.common : dev.regs, dev.pci ? 0x08 : kDrvFeaturesSel, sel);
  WR(dev.pci ? dev.common : dev.regs, dev.pci ? 0x0c : kDrvFeatures, v);
}
static uint32_t dev_cfg32(uint32_t off) { return dev.pci ? RD(dev.cfg, off) : RD(dev.regs, kConfig + off); }

/* Driver initialization (virtio 1.x, 3.1.1), in three parts so that a device with several queues
 * can set each up: features (VERSION_1, and of `want_lo` what the device offers), each queue at its
 * own area, then DRIVER_OK. */
static int negotiate(uint32_t want_lo, uint32_t* features_lo) {
  if (!dev.pci && RD(dev.regs, kVersion) != 2) return 1;
  dev_set_status(0);
  dev_set_status(kAck);
  dev_set_status(kAck | kDriver);
  *features_lo = dev_features(0);
  if ((dev_features(1) & 1) == 0) return 2;
  dev_set_driver_features(0, *features_lo & want_lo);
  dev_set_driver_features(1, 1); /* VERSION_1 */
  dev_set_status(kAck | kDriver | kFeaturesOk);
  if ((dev_status() & kFeaturesOk) == 0) return 3;
  return 0;
}

static int setup_queue(struct vq* q, uint16_t index, uint16_t size, uintptr_t area) {
  q->size = size;
  q->index = index;
  q->used_seen = q->avail_idx = 0;
  q->desc = (volatile struct desc*)area;
  q->avail = (volatile uint16_t*)(area + 16ull * size);
  q->used = (volatile uint16_t*)(area + 16ull * size + 0x1000);
  for (volatile uint8_t* p = (volatile uint8_t*)area; p < (volatile uint8_t*)(area + 0x20000); ++p) *p = 0;
  if (dev.pci) {
    wr16(dev.common + 0x16, index);
    if (rd16(dev.common + 0x18) < size) return 4;
    wr16(dev.common + 0x18, size);
    WR(dev.common, 0x20, (uint32_t)(uintptr_t)q->desc);
    WR(dev.common, 0x24, 0);
    WR(dev.common, 0x28, (uint32_t)(uintptr_t)q->avail);
    WR(dev.common, 0x2c, 0);
    WR(dev.common, 0x30, (uint32_t)(uintptr_t)q->used);
    WR(dev.common, 0x34, 0);
    q->notify_at = dev.notify + rd16(dev.common + 0x1e) * dev.notify_mult;
    wr16(dev.common + 0x1c, 1);
  } else {
    WR(dev.regs, kQueueSel, index);
    if (RD(dev.regs, kQueueNumMax) < size) return 4;
    WR(dev.regs, kQueueNum, size);
    WR(dev.regs, kDescLo, (uint32_t)(uintptr_t)q->desc);
    WR(dev.regs, kDescHi, 0);
    WR(dev.regs, kAvailLo, (uint32_t)(uintptr_t)q->avail);
    WR(dev.regs, kAvailHi, 0);
    WR(dev.regs, kUsedLo, (uint32_t)(uintptr_t)q->used);
    WR(dev.regs, kUsedHi, 0);
    WR(dev.regs, kQueueReady, 1);
    q->notify_at = dev.regs + kQueueNotify;
  }
  return 0;
}

static int driver_ok(void) {
  dev_set_status(kAck | kDriver | kFeaturesOk | kDriverOk);
  return (dev_status() & kNeedsReset) ? 5 : 0;
}

/* One queue at QUEUE_AREA. FLUSH, if offered (a block device): the write cache stays on, as with
 * Linux's driver; without it the device must write every request through (fdatasync each). */
static int setup(struct vq* q, uint16_t size, uint32_t* features_lo) {
  int r = negotiate(1u << 9, features_lo);
  if (r == 0) r = setup_queue(q, 0, size, QUEUE_AREA);
  return r ? r : driver_ok();
}

static void make_available(struct vq* q, uint16_t head) {
  q->avail[2 + (q->avail_idx % q->size)] = head;
  barrier();
  q->avail[1] = ++q->avail_idx;
  barrier();
}

static void notify(struct vq* q) {
  if (dev.pci) wr16(q->notify_at, q->index);
  else WR(q->notify_at, 0, q->index);
}

/* Waits for the device to return one chain; its head, or -1 after ~10 s. */
static int wait_used_for(struct vq* q, uint32_t* len, uint64_t cycles) {
  const uint64_t t0 = rdtsc();
  while (q->used[1] == q->used_seen) {
    if (rdtsc() - t0 > cycles) return -1;
    __asm__ volatile("pause");
  }
  barrier();
  volatile uint32_t* elem = (volatile uint32_t*)(q->used + 2) + 2 * (q->used_seen % q->size);
  ++q->used_seen;
  if (len) *len = elem[1];
  return (int)elem[0];
}
static int wait_used(struct vq* q, uint32_t* len) { return wait_used_for(q, len, 30000000000ull); }

/* One block request in descriptors head, head+1, head+2: the header, the data (if any) and the
 * status byte. Made available, not waited for. */
static void blk_post(struct vq* q, uint16_t head, uint32_t type, uint64_t sector, uint64_t data, uint32_t len) {
  volatile uint32_t* hdr = (volatile uint32_t*)(HEADERS + 16ull * head);
  hdr[0] = type;
  hdr[1] = 0;
  *(volatile uint64_t*)(hdr + 2) = sector;
  volatile uint8_t* st = (volatile uint8_t*)(STATUSES + head);
  *st = 0xee;
  q->desc[head] = (struct desc){HEADERS + 16ull * head, 16, NEXT, (uint16_t)(head + 1)};
  uint16_t last = head + 1;
  if (len) {
    const uint16_t dev_writes = (type == kIn || type == kGetId) ? WRITE : 0;
    q->desc[head + 1] = (struct desc){data, len, (uint16_t)(NEXT | dev_writes), (uint16_t)(head + 2)};
    last = head + 2;
  }
  q->desc[last] = (struct desc){STATUSES + head, 1, WRITE, 0};
  make_available(q, head);
}

/* A request, waited for: its status byte, or 0xff if the device never answered. */
static uint8_t blk(struct vq* q, uint32_t type, uint64_t sector, uint64_t data, uint32_t len, uint32_t* used_len) {
  blk_post(q, 0, type, sector, data, len);
  notify(q);
  if (wait_used(q, used_len) != 0) return 0xff;
  return *(volatile uint8_t*)STATUSES;
}

static uint8_t pattern(uint64_t sector, uint32_t i) { return (uint8_t)(sector * 7 + i); }

static int check_bytes(uint64_t at, uint64_t len, uint64_t first_sector, int zeros) {
  const volatile uint8_t* p = (const volatile uint8_t*)at;
  for (uint64_t i = 0; i < len; ++i)
    if (p[i] != (zeros ? 0 : pattern(first_sector + i / 512, (uint32_t)(i % 512)))) return 0;
  return 1;
}

static void say(const char* what) {
  puts_serial("tiny: ");
  puts_serial(what);
  puts_serial("\n");
}

/* "<what><16 hex digits>\n": a benchmark's TSC cycles. */
static void say_cycles(const char* what, uint64_t cycles) {
  puts_serial(what);
  put_hex((uint32_t)(cycles >> 32));
  put_hex((uint32_t)cycles);
  puts_serial("\n");
}

static void __attribute__((noreturn)) blk_io(void) {
  struct vq q;
  uint32_t f = 0, used = 0;
  if (setup(&q, 64, &f)) finish(41);
  puts_serial("tiny: capacity ");
  put_hex(dev_cfg32(0));
  puts_serial("\n");
  if (blk(&q, kGetId, 0, DATA, 20, &used) != 0 || used != 21) finish(42);
  puts_serial("tiny: serial ");
  volatile char* id = (volatile char*)DATA;
  id[20] = 0;
  puts_serial((const char*)id);
  puts_serial("\n");
  if (blk(&q, kIn, 0, DATA, 4096, &used) != 0 || used != 4097 || !check_bytes(DATA, 4096, 0, 0)) finish(43);
  say("read ok");
  volatile uint8_t* d = (volatile uint8_t*)DATA;
  for (uint32_t i = 0; i < 4096; ++i) d[i] = (uint8_t)(0xa5 ^ i);
  if (blk(&q, kOut, 8, DATA, 4096, &used) != 0) finish(44);
  for (uint32_t i = 0; i < 4096; ++i) d[i] = 0;
  if (blk(&q, kIn, 8, DATA, 4096, &used) != 0) finish(45);
  for (uint32_t i = 0; i < 4096; ++i)
    if (d[i] != (uint8_t)(0xa5 ^ i)) finish(45);
  say("write ok");
  if (blk(&q, kFlush, 0, 0, 0, &used) != 0) finish(46);
  say("flush ok");
  volatile uint64_t* seg = (volatile uint64_t*)(DATA + 0x10000);
  seg[0] = 16;
  seg[1] = 8; /* 8 sectors, flags 0 */
  if (blk(&q, kDiscard, 0, DATA + 0x10000, 16, &used) != 0) finish(47);
  if (blk(&q, kIn, 16, DATA, 4096, &used) != 0 || !check_bytes(DATA, 4096, 0, 1)) finish(47);
  say("discard ok");
  seg[0] = 24;
  seg[1] = 8;
  if (blk(&q, kWriteZeroes, 0, DATA + 0x10000, 16, &used) != 0) finish(48);
  if (blk(&q, kIn, 24, DATA, 4096, &used) != 0 || !check_bytes(DATA, 4096, 0, 1)) finish(48);
  say("write-zeroes ok");
  const uint64_t capacity = dev_cfg32(0) | ((uint64_t)dev_cfg32(4) << 32);
  if (blk(&q, kIn, capacity, DATA, 512, &used) != 1) finish(49);
  say("read past the end refused");
  finish(0);
}

static void __attribute__((noreturn)) blk_ro(void) {
  struct vq q;
  uint32_t f = 0, used = 0;
  if (setup(&q, 64, &f)) finish(51);
  if ((f & (1u << 5)) == 0) finish(52); /* VIRTIO_BLK_F_RO */
  volatile uint8_t* d = (volatile uint8_t*)DATA;
  for (uint32_t i = 0; i < 512; ++i) d[i] = 0xff;
  if (blk(&q, kOut, 0, DATA, 512, &used) != 1) finish(53);
  say("write refused");
  if (blk(&q, kIn, 0, DATA, 512, &used) != 0 || !check_bytes(DATA, 512, 0, 0)) finish(54);
  say("read ok");
  finish(0);
}

static void __attribute__((noreturn)) blk_reset(void) {
  struct vq q;
  uint32_t f = 0, used = 0;
  if (setup(&q, 64, &f)) finish(61);
  q.desc[0] = (struct desc){DATA, 16, NEXT, 1};
  q.desc[1] = (struct desc){DATA, 16, NEXT, 0}; /* back to 0: a loop */
  make_available(&q, 0);
  notify(&q);
  const uint64_t t0 = rdtsc();
  while ((dev_status() & kNeedsReset) == 0)
    if (rdtsc() - t0 > 30000000000ull) finish(62);
  say("needs reset");
  if (setup(&q, 64, &f)) finish(63);
  if (blk(&q, kIn, 2, DATA, 1024, &used) != 0 || !check_bytes(DATA, 1024, 2, 0)) finish(64);
  say("usable again after a reset");
  finish(0);
}

static void __attribute__((noreturn)) rng(void) {
  struct vq q;
  uint32_t f = 0, used = 0;
  if (setup(&q, 16, &f)) finish(71);
  volatile uint64_t* a = (volatile uint64_t*)DATA;
  for (int round = 0; round < 2; ++round) {
    q.desc[0] = (struct desc){DATA + 64ull * round, 64, WRITE, 0};
    make_available(&q, 0);
    notify(&q);
    if (wait_used(&q, &used) != 0 || used != 64) finish(72);
  }
  int same = 1, zero = 1;
  for (int i = 0; i < 8; ++i) {
    if (a[i] != a[8 + i]) same = 0;
    if (a[i] != 0) zero = 0;
  }
  if (same || zero) finish(73);
  say("random bytes");
  finish(0);
}

/* The host gives the drive a bigger image (PATCH /drives): the capacity changes, the config
 * generation moves and the interrupt status says "config change". */
static void __attribute__((noreturn)) blk_resize(void) {
  struct vq q;
  uint32_t f = 0;
  if (setup(&q, 64, &f)) finish(101);
  const uint32_t before = dev_cfg32(0);
  const uint32_t gen = dev.pci ? rd8(dev.common + 0x15) : RD(dev.regs, 0x0fc);
  puts_serial("tiny: capacity before ");
  put_hex(before);
  puts_serial("\n");
  const uint64_t t0 = rdtsc();
  while (dev_cfg32(0) == before)
    if (rdtsc() - t0 > 60000000000ull) finish(102);
  puts_serial("tiny: capacity after ");
  put_hex(dev_cfg32(0));
  puts_serial("\n");
  const uint32_t gen_now = dev.pci ? rd8(dev.common + 0x15) : RD(dev.regs, 0x0fc);
  if (gen_now == gen) finish(103);
  /* virtio-mmio's interrupt status, or virtio-pci's ISR (MSI-X is off here): bit 1 is a config change. */
  const uint32_t why = dev.pci ? rd8(dev.isr) : RD(dev.regs, 0x060);
  if ((why & 2) == 0) finish(104);
  say("config change seen");
  finish(0);
}

static void __attribute__((noreturn)) blk_records(void) {
  struct vq q;
  uint32_t f = 0, used = 0;
  if (setup(&q, 64, &f)) finish(81);
  volatile uint64_t* rec = (volatile uint64_t*)DATA;
  for (uint64_t n = 0;; ++n) {
    rec[0] = n;
    for (int i = 1; i < 64; ++i) rec[i] = n * 0x9e3779b97f4a7c15ull + (uint64_t)i;
    if (blk(&q, kOut, n, DATA, 512, &used) != 0) finish(82);
    if (blk(&q, kFlush, 0, 0, 0, &used) != 0) finish(83);
    puts_serial("tiny: flushed ");
    put_hex((uint32_t)n);
    puts_serial("\n");
  }
}

/* Request n's sector: the next one in order, or a random 4 KiB-aligned one (xorshift). */
static uint64_t bench_sector(int random, uint64_t n, uint64_t sectors, uint64_t capacity, uint64_t* state) {
  if (!random) return (n * sectors) % (capacity - sectors);
  *state ^= *state << 13;
  *state ^= *state >> 7;
  *state ^= *state << 17;
  return (*state % (capacity / 8)) * 8;
}

/* N requests of one kind with `depth` in flight: descriptors 3k..3k+2 for slot k. */
static void __attribute__((noreturn)) blk_bench(const char* args) {
  struct vq q;
  uint32_t f = 0, used = 0;
  if (setup(&q, 256, &f)) finish(91);
  const int rand4k = starts_with(args, "randread4k"), wr = starts_with(args, "seqwrite128k");
  while (*args && *args != ' ') ++args;
  uint64_t depth = parse_u64(args);
  ++args;
  while (*args && *args != ' ') ++args;
  const uint64_t n = parse_u64(args);
  if (depth == 0 || depth > 64) depth = 1;
  const uint32_t len = rand4k ? 4096 : 131072;
  const uint64_t capacity = dev_cfg32(0) | ((uint64_t)dev_cfg32(4) << 32);
  const uint64_t sectors = len / 512;
  uint64_t next = 0, done = 0, rng_state = 88172645463325252ull;
  const uint64_t t0 = rdtsc();
  for (uint64_t k = 0; k < depth && next < n; ++k, ++next) {
    blk_post(&q, (uint16_t)(3 * k), wr ? kOut : kIn, bench_sector(rand4k, next, sectors, capacity, &rng_state),
             DATA + (uint64_t)len * k, len);
  }
  notify(&q);
  /* Reap every completion there is, post a request in each freed slot, then notify once (unless
   * the device asked for no notifications): what a driver with a batch of completions does. */
  while (done < n) {
    const int head = wait_used(&q, &used);
    if (head < 0 || *(volatile uint8_t*)(STATUSES + head) != 0) finish(92);
    int heads[64], reaped = 0;
    heads[reaped++] = head;
    while (reaped < 64 && q.used[1] != q.used_seen) {
      const int h = wait_used(&q, &used);
      if (h < 0 || *(volatile uint8_t*)(STATUSES + h) != 0) finish(92);
      heads[reaped++] = h;
    }
    int posted = 0;
    for (int i = 0; i < reaped; ++i) {
      ++done;
      if (next >= n) continue;
      blk_post(&q, (uint16_t)heads[i], wr ? kOut : kIn, bench_sector(rand4k, next, sectors, capacity, &rng_state),
               DATA + (uint64_t)len * (heads[i] / 3), len);
      ++next;
      ++posted;
    }
    if (posted && (q.used[0] & 1) == 0) notify(&q);
  }
  say_cycles("tiny: bench cycles ", rdtsc() - t0);
  finish(0);
}

/* virtio-net: the receive queue (0) and the transmit queue (1), at their own areas; receive
 * buffers of 2 KiB from DATA on, transmit frames from DATA + 1 MiB on. */
#define NET_RX_BUFS 32
static const uint8_t kDefaultMac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};

static void net_post_rx(struct vq* rx, uint16_t i) {
  rx->desc[i] = (struct desc){DATA + 2048ull * i, 2048, WRITE, 0};
  make_available(rx, i);
}

static int net_setup(struct vq* rx, struct vq* tx, uint8_t mac[6]) {
  uint32_t f = 0;
  int r = negotiate(1u << 5, &f); /* MAC, if the device has one */
  if (r == 0) r = setup_queue(rx, 0, 64, QUEUE_AREA);
  if (r == 0) r = setup_queue(tx, 1, 64, QUEUE_AREA + 0x20000);
  if (r == 0) r = driver_ok();
  if (r) return r;
  for (int i = 0; i < 6; ++i) mac[i] = (f & (1u << 5)) ? rd8((dev.pci ? dev.cfg : dev.regs + kConfig) + (uintptr_t)i) : kDefaultMac[i];
  for (uint16_t i = 0; i < NET_RX_BUFS; ++i) net_post_rx(rx, i);
  notify(rx);
  return 0;
}

/* A frame of `len` bytes at DATA + 1 MiB + 2 KiB * slot, its 12-byte header zeroed in front. */
static volatile uint8_t* net_frame(uint16_t slot) { return (volatile uint8_t*)(DATA + 0x100000 + 2048ull * slot + 12); }
static void net_send(struct vq* tx, uint16_t slot, uint32_t len) {
  volatile uint8_t* hdr = net_frame(slot) - 12;
  for (int i = 0; i < 12; ++i) hdr[i] = 0;
  tx->desc[slot] = (struct desc){(uint64_t)(uintptr_t)hdr, 12 + len, 0, 0};
  make_available(tx, slot);
}

static const uint8_t kHostIp[4] = {10, 0, 2, 2}, kMmdsIp[4] = {169, 254, 169, 254};

/* An ARP request from 10.0.2.15 for `ip` in slot `slot`. */
static void net_arp_request(struct vq* tx, uint16_t slot, const uint8_t mac[6], const uint8_t ip[4]) {
  volatile uint8_t* f = net_frame(slot);
  static const uint8_t tail[] = {0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1};
  for (int i = 0; i < 6; ++i) f[i] = 0xff, f[6 + i] = mac[i], f[22 + i] = mac[i], f[32 + i] = 0;
  for (int i = 0; i < 10; ++i) f[12 + i] = tail[i];
  f[28] = 10, f[29] = 0, f[30] = 2, f[31] = 15;
  for (int i = 0; i < 4; ++i) f[38 + i] = ip[i];
  for (int i = 42; i < 60; ++i) f[i] = 0;
  net_send(tx, slot, 60);
}

/* Waits up to `cycles` TSC cycles for an ARP reply from `ip` to `mac` among the received frames
 * (others are given back); 1 when it came. */
static int net_wait_arp_reply(struct vq* rx, const uint8_t mac[6], const uint8_t ip[4], uint64_t cycles) {
  const uint64_t t0 = rdtsc();
  for (int frames = 0; frames < 64; ++frames) {
    uint32_t len = 0;
    const uint64_t spent = rdtsc() - t0;
    const int head = spent < cycles ? wait_used_for(rx, &len, cycles - spent) : -1;
    if (head < 0) return 0;
    const volatile uint8_t* f = (const volatile uint8_t*)(DATA + 2048ull * (uint32_t)head + 12);
    int ok = len >= 12 + 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 && f[28] == ip[0] && f[29] == ip[1] &&
             f[30] == ip[2] && f[31] == ip[3];
    for (int i = 0; i < 6 && ok; ++i) ok = f[i] == mac[i];
    net_post_rx(rx, (uint16_t)head);
    notify(rx);
    if (ok) return 1;
  }
  return 0;
}

/* net-arp: the host's side at 10.0.2.2 (slirp's gateway, or the tap's address) answers; with
 * `mmds`, kiln's metadata service at 169.254.169.254 does. */
static void __attribute__((noreturn)) net_arp(int mmds) {
  struct vq rx, tx;
  uint8_t mac[6];
  const uint8_t* ip = mmds ? kMmdsIp : kHostIp;
  if (net_setup(&rx, &tx, mac)) finish(111);
  /* Asked again after ~1 s without an answer, as a real stack does: over a tap, the one request
   * or its answer was seen lost now and then (the test's tap comes up as kiln attaches). */
  for (int attempt = 0; attempt < 8; ++attempt) {
    net_arp_request(&tx, 0, mac, ip);
    notify(&tx);
    uint32_t len = 0;
    if (wait_used(&tx, &len) != 0) finish(112);
    if (net_wait_arp_reply(&rx, mac, ip, 3000000000ull)) {
      say(mmds ? "arp reply from 169.254.169.254" : "arp reply from 10.0.2.2");
      finish(0);
    }
  }
  finish(113);
}

/* net-flood N: N frames as fast as the queue takes them (UDP to 10.0.2.2's discard port, never
 * waiting for the host), while never reading what comes back; then the ARP exchange must still
 * work. */
static void __attribute__((noreturn)) net_flood(const char* args) {
  struct vq rx, tx;
  uint8_t mac[6];
  const uint64_t n = parse_u64(args);
  if (net_setup(&rx, &tx, mac)) finish(121);
  /* One UDP frame, reused by every slot (its IPv4 checksum zero: slirp drops it or sends it on). */
  for (uint16_t s = 0; s < 64; ++s) {
    volatile uint8_t* f = net_frame(s);
    for (int i = 0; i < 1514; ++i) f[i] = (uint8_t)i;
    for (int i = 0; i < 6; ++i) f[i] = 0xff, f[6 + i] = mac[i];
    f[12] = 0x08, f[13] = 0;
  }
  uint64_t sent = 0;
  uint16_t in_flight = 0;
  const uint64_t t0 = rdtsc();
  while (sent < n) {
    while (in_flight < 64 && sent < n) {
      tx.desc[tx.avail_idx % 64] = (struct desc){(uint64_t)(uintptr_t)(net_frame((uint16_t)(tx.avail_idx % 64)) - 12), 12 + 1514, 0, 0};
      make_available(&tx, (uint16_t)(tx.avail_idx % 64));
      ++in_flight;
      ++sent;
    }
    if ((tx.used[0] & 1) == 0) notify(&tx);
    uint32_t len = 0;
    if (wait_used(&tx, &len) < 0) finish(122);
    --in_flight;
    while (tx.used[1] != tx.used_seen) {
      wait_used(&tx, &len);
      --in_flight;
    }
  }
  say_cycles("tiny: flood sent, cycles ", rdtsc() - t0);
  net_arp_request(&tx, (uint16_t)(tx.avail_idx % 64), mac, kHostIp);
  notify(&tx);
  if (!net_wait_arp_reply(&rx, mac, kHostIp, 30000000000ull)) finish(123);
  say("arp reply after the flood");
  finish(0);
}

/* net-bench tx|rx N: N frames of 1514 bytes. tx: sent (to 02:00:00:00:00:01, EtherType 0x88b5,
 * which the host drops) with up to 256 in flight; rx: counted as they arrive into 256 posted
 * buffers (the host floods the interface). Prints the TSC cycles taken; exit 0. */
static void __attribute__((noreturn)) net_bench(const char* args) {
  struct vq rx, tx;
  uint8_t mac[6];
  const int is_tx = starts_with(args, "tx");
  while (*args && *args != ' ') ++args;
  const uint64_t n = parse_u64(args);
  uint32_t f = 0;
  int r = negotiate(1u << 5, &f);
  if (r == 0) r = setup_queue(&rx, 0, 256, QUEUE_AREA);
  if (r == 0) r = setup_queue(&tx, 1, 256, QUEUE_AREA + 0x20000);
  if (r == 0) r = driver_ok();
  if (r) finish(131);
  (void)mac;
  uint64_t done = 0;
  uint32_t len = 0;
  const uint64_t t0 = rdtsc();
  if (is_tx) {
    for (uint16_t s = 0; s < 256; ++s) {
      volatile uint8_t* fr = (volatile uint8_t*)(DATA + 2048ull * s);
      for (int i = 0; i < 12; ++i) fr[i] = 0;
      fr += 12;
      for (int i = 0; i < 6; ++i) fr[i] = i == 0 ? 2 : i == 5 ? 1 : 0, fr[6 + i] = kDefaultMac[i];
      fr[12] = 0x88, fr[13] = 0xb5;
      tx.desc[s] = (struct desc){DATA + 2048ull * s, 12 + 1514, 0, 0};
    }
    uint64_t posted = 0;
    while (done < n) {
      int added = 0;
      while (posted - done < 256 && posted < n) {
        make_available(&tx, (uint16_t)(posted % 256));
        ++posted;
        ++added;
      }
      if (added && (tx.used[0] & 1) == 0) notify(&tx);
      if (wait_used(&tx, &len) < 0) finish(132);
      ++done;
      while (tx.used[1] != tx.used_seen && done < n) {
        wait_used(&tx, &len);
        ++done;
      }
    }
  } else {
    for (uint16_t i = 0; i < 256; ++i) {
      rx.desc[i] = (struct desc){DATA + 2048ull * i, 2048, WRITE, 0};
      make_available(&rx, i);
    }
    notify(&rx);
    while (done < n) {
      const int head = wait_used(&rx, &len);
      if (head < 0) finish(133);
      ++done;
      make_available(&rx, (uint16_t)head);
      if (rx.used[1] == rx.used_seen && (rx.used[0] & 1) == 0) notify(&rx);
    }
  }
  say_cycles("tiny: bench cycles ", rdtsc() - t0);
  finish(0);
}

/* virtio-net-tcp rx|tx N: one TCP connection through user-mode networking's hostfwd to the guest's
 * port 5555 (10.0.2.15), just enough TCP for a benchmark over a lossless local link: the guest
 * ARPs for 10.0.2.2 (so the network learns its MAC), says "tcp listening", answers the host's
 * SYN, then rx: takes N bytes in order (an ACK after each batch of frames, window 65535, dup ACKs
 * for anything out of order) until the host's FIN; tx: sends N bytes in 1460-byte segments
 * within the host's window (go-back-N after a quiet spell), then FIN. Checksums: left to the
 * device when it offers CSUM, else computed here. Prints the TSC cycles from the SYN to the end;
 * exit 0 or 150 + step. */
#define TCP_PORT 5555
#define TCP_MSS 1460
#define TX_BASE (DATA + 0x100000ull)
static uint8_t tcp_peer_mac[6], tcp_mac[6];
static uint16_t tcp_peer_port;
static uint32_t tcp_csum_offload;

static uint32_t sum16(const volatile uint8_t* p, uint32_t n, uint32_t sum) {
  for (uint32_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)p[i] << 8 | p[i + 1];
  if (n & 1) sum += (uint32_t)p[n - 1] << 8;
  return sum;
}
static uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}
static uint32_t be32(const volatile uint8_t* p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put32(volatile uint8_t* p, uint32_t v) { p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v; }

/* A TCP segment from 10.0.2.15:5555 to 10.0.2.2:peer in transmit slot `slot` (its payload, `len`
 * bytes, already there), made available (not notified). */
static void tcp_send(struct vq* tx, uint32_t seq, uint32_t ack, uint8_t flags, uint32_t len) {
  const uint16_t slot = (uint16_t)(tx->avail_idx % tx->size);
  volatile uint8_t* h = (volatile uint8_t*)(TX_BASE + 2048ull * slot);
  volatile uint8_t* f = h + 12;
  const uint32_t opt = (flags & 0x02) ? 4 : 0; /* MSS on the SYN-ACK */
  const uint32_t tcp_len = 20 + opt + len, ip_len = 20 + tcp_len;
  for (int i = 0; i < 6; ++i) f[i] = tcp_peer_mac[i], f[6 + i] = tcp_mac[i];
  f[12] = 0x08, f[13] = 0;
  volatile uint8_t* ip = f + 14;
  static const uint8_t ip_head[20] = {0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 2, 15, 10, 0, 2, 2};
  for (int i = 0; i < 20; ++i) ip[i] = ip_head[i];
  ip[2] = (uint8_t)(ip_len >> 8), ip[3] = (uint8_t)ip_len;
  const uint16_t ipc = (uint16_t)~fold(sum16(ip, 20, 0));
  ip[10] = (uint8_t)(ipc >> 8), ip[11] = (uint8_t)ipc;
  volatile uint8_t* t = ip + 20;
  t[0] = TCP_PORT >> 8, t[1] = TCP_PORT & 0xff, t[2] = (uint8_t)(tcp_peer_port >> 8), t[3] = (uint8_t)tcp_peer_port;
  put32(t + 4, seq);
  put32(t + 8, ack);
  t[12] = (uint8_t)((20 + opt) / 4 << 4), t[13] = flags, t[14] = 0xff, t[15] = 0xff;
  t[16] = t[17] = t[18] = t[19] = 0;
  if (opt) t[20] = 2, t[21] = 4, t[22] = TCP_MSS >> 8, t[23] = TCP_MSS & 0xff;
  /* The pseudo-header: addresses, protocol, TCP length. */
  const uint32_t pseudo = 0x0a00 + 0x020f + 0x0a00 + 0x0202 + 6 + tcp_len;
  for (int i = 0; i < 12; ++i) h[i] = 0;
  uint16_t c;
  if (tcp_csum_offload) {
    c = fold(pseudo); /* the device folds the rest in */
    h[0] = 1;         /* NEEDS_CSUM */
    h[6] = 34, h[8] = 16;
  } else {
    c = (uint16_t)~fold(sum16(t, tcp_len, pseudo));
  }
  t[16] = (uint8_t)(c >> 8), t[17] = (uint8_t)c;
  tx->desc[slot] = (struct desc){(uint64_t)(uintptr_t)h, 12 + 14 + ip_len, 0, 0};
  make_available(tx, slot);
}

static uint32_t tcp_tx_done;
/* Takes back finished transmit chains; waits while the ring is full. */
static void tcp_reap(struct vq* tx, int wait_room) {
  do {
    while (tx->used[1] != tx->used_seen) {
      uint32_t len;
      wait_used(tx, &len);
      ++tcp_tx_done;
    }
  } while (wait_room && (uint16_t)(tx->avail_idx - tcp_tx_done) >= tx->size - 1);
}

static void __attribute__((noreturn)) net_tcp(const char* args) {
  struct vq rx, tx;
  const int is_tx = starts_with(args, "tx");
  while (*args && *args != ' ') ++args;
  const uint64_t n = parse_u64(args);
  uint32_t f = 0;
  int r = negotiate(1u << 5 | 1u << 0, &f); /* MAC, CSUM */
  if (r == 0) r = setup_queue(&rx, 0, 256, QUEUE_AREA);
  if (r == 0) r = setup_queue(&tx, 1, 256, QUEUE_AREA + 0x20000);
  if (r == 0) r = driver_ok();
  if (r) finish(151);
  tcp_csum_offload = f & 1;
  for (int i = 0; i < 6; ++i) tcp_mac[i] = (f & (1u << 5)) ? rd8((dev.pci ? dev.cfg : dev.regs + kConfig) + (uintptr_t)i) : kDefaultMac[i];
  for (uint16_t i = 0; i < 256; ++i) {
    rx.desc[i] = (struct desc){DATA + 2048ull * i, 2048, WRITE, 0};
    make_available(&rx, i);
  }
  notify(&rx);
  /* The ARP exchange: the network learns this MAC, and the gateway's is where segments go. */
  {
    volatile uint8_t* h = (volatile uint8_t*)TX_BASE;
    volatile uint8_t* fr = h + 12;
    static const uint8_t tail[] = {0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1};
    for (int i = 0; i < 12; ++i) h[i] = 0;
    for (int i = 0; i < 6; ++i) fr[i] = 0xff, fr[6 + i] = tcp_mac[i], fr[22 + i] = tcp_mac[i], fr[32 + i] = 0;
    for (int i = 0; i < 10; ++i) fr[12 + i] = tail[i];
    fr[28] = 10, fr[29] = 0, fr[30] = 2, fr[31] = 15;
    fr[38] = 10, fr[39] = 0, fr[40] = 2, fr[41] = 2;
    for (int i = 42; i < 60; ++i) fr[i] = 0;
    tx.desc[0] = (struct desc){TX_BASE, 12 + 60, 0, 0};
    make_available(&tx, 0);
    notify(&tx);
  }
  int have_gateway = 0;
  uint32_t irs = 0, rcv_nxt = 0, snd_una = 0, snd_nxt = 0, snd_wnd = 0, fin_seq = 0;
  const uint32_t iss = 1000;
  uint64_t t0 = 0, got = 0, quiet = 0;
  /* 0 ARP, 1 listening, 2 connected, 3 our FIN sent, 4 done */
  int state = 0, peer_fin = 0;
  for (;;) {
    int frames = 0, ack_due = 0;
    while (rx.used[1] != rx.used_seen) {
      uint32_t len = 0;
      const int head = wait_used(&rx, &len);
      volatile uint8_t* fr = (volatile uint8_t*)(DATA + 2048ull * (uint32_t)head + 12);
      const uint32_t flen = len >= 12 ? len - 12 : 0;
      ++frames;
      if (flen >= 42 && fr[12] == 0x08 && fr[13] == 0x06) {
        if (fr[21] == 2 && fr[28] == 10 && fr[31] == 2 && !have_gateway) {
          for (int i = 0; i < 6; ++i) tcp_peer_mac[i] = fr[22 + i];
          have_gateway = 1;
        }
      } else if (flen >= 54 && fr[12] == 0x08 && fr[13] == 0 && fr[23] == 6 && fr[36] == (TCP_PORT >> 8) &&
                 fr[37] == (TCP_PORT & 0xff)) {
        volatile uint8_t* ip = fr + 14;
        const uint32_t ihl = (ip[0] & 0xf) * 4u, ip_len = (uint32_t)ip[2] << 8 | ip[3];
        volatile uint8_t* t = ip + ihl;
        const uint32_t thl = (t[12] >> 4) * 4u, seq = be32(t + 4), ack = be32(t + 8);
        const uint8_t fl = t[13];
        const uint32_t dlen = ip_len - ihl - thl;
        if ((fl & 0x02) && state == 1) { /* SYN */
          tcp_peer_port = (uint16_t)(t[0] << 8 | t[1]);
          irs = seq;
          rcv_nxt = irs + 1;
          snd_una = iss;
          snd_nxt = iss + 1;
          t0 = rdtsc();
          tcp_reap(&tx, 1);
          tcp_send(&tx, iss, rcv_nxt, 0x12, 0);
          notify(&tx);
          state = 2;
        } else if (state >= 2 && !(fl & 0x02)) {
          if (fl & 0x10) {
            if ((int32_t)(ack - snd_una) > 0 && (int32_t)(ack - snd_nxt) <= 0) {
              snd_una = ack;
              quiet = 0;
            }
            snd_wnd = (uint32_t)t[14] << 8 | t[15];
          }
          if (dlen > 0 || (fl & 0x01)) {
            if (seq == rcv_nxt) {
              rcv_nxt += dlen;
              got += dlen;
              if (fl & 0x01) {
                rcv_nxt += 1;
                peer_fin = 1;
              }
            }
            ack_due = 1;
          }
        }
      }
      rx.desc[head] = (struct desc){DATA + 2048ull * (uint32_t)head, 2048, WRITE, 0};
      make_available(&rx, (uint16_t)head);
      if (frames == 64) break;
    }
    if (frames && (rx.used[0] & 1) == 0) notify(&rx);
    if (state == 0) {
      if (have_gateway) {
        state = 1;
        say("tcp listening");
      }
      continue;
    }
    if (state < 2) continue;
    int added = 0;
    if (ack_due) {
      tcp_reap(&tx, 1);
      tcp_send(&tx, snd_nxt, rcv_nxt, 0x10, 0);
      ++added;
    }
    if (is_tx && state == 2) {
      /* Go back to the first unacknowledged byte after a quiet spell. */
      if (snd_nxt != snd_una && ++quiet > 2000000) {
        snd_nxt = snd_una;
        quiet = 0;
      }
      for (;;) {
        const uint32_t off = snd_nxt - (iss + 1);
        if (off >= n) break;
        const uint32_t in_flight = snd_nxt - snd_una;
        uint32_t len = n - off < TCP_MSS ? (uint32_t)(n - off) : TCP_MSS;
        if (in_flight + len > snd_wnd) break;
        tcp_reap(&tx, 1);
        tcp_send(&tx, snd_nxt, rcv_nxt, 0x18, len);
        snd_nxt += len;
        ++added;
        if (added >= 64) break;
      }
    }
    /* FIN once everything sent is acknowledged (tx) or the host has sent its FIN (rx). */
    if (state == 2 && (is_tx ? snd_una != iss && snd_una - (iss + 1) >= n : peer_fin)) {
      tcp_reap(&tx, 1);
      fin_seq = snd_nxt;
      tcp_send(&tx, snd_nxt, rcv_nxt, 0x11, 0);
      snd_nxt += 1;
      ++added;
      state = 3;
    }
    if (added && (tx.used[0] & 1) == 0) notify(&tx);
    tcp_reap(&tx, 0);
    if (state == 3 && snd_una == fin_seq + 1 && (is_tx ? peer_fin : 1)) break;
    if (state == 3 && ++quiet > 20000000) finish(153); /* the host never finished */
  }
  if (!is_tx && got != n) finish(152);
  say_cycles("tiny: bench cycles ", rdtsc() - t0);
  finish(0);
}


/* virtio-vsock: receive (0), transmit (1) and event (2) queues; receive buffers of a header and
 * 4 KiB at DATA + 8 KiB * i, packets sent from DATA + 1 MiB. */
struct vs_hdr {
  uint64_t src_cid, dst_cid;
  uint32_t src_port, dst_port, len;
  uint16_t type, op;
  uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
enum { kVsRequest = 1, kVsResponse = 2, kVsRst = 3, kVsShutdown = 4, kVsRw = 5 };
#define VS_RX_BUFS 16
static uint64_t vs_cid;
static uint32_t vs_fwd; /* the current connection's bytes received (one connection at a time) */

static void vs_post_rx(struct vq* rx, uint16_t i) {
  rx->desc[i] = (struct desc){DATA + 8192ull * i, 44 + 4096, WRITE, 0};
  make_available(rx, i);
}

/* A packet made available (the device not told). */
static void vs_post(struct vq* tx, uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags,
                    const char* data, uint32_t len) {
  const uint16_t slot = (uint16_t)(tx->avail_idx % 16);
  volatile struct vs_hdr* h = (volatile struct vs_hdr*)(DATA + 0x100000 + 8192ull * slot);
  h->src_cid = vs_cid;
  h->dst_cid = 2;
  h->src_port = src_port;
  h->dst_port = dst_port;
  h->len = len;
  h->type = 1;
  h->op = op;
  h->flags = flags;
  h->buf_alloc = 1u << 30; /* the guest takes what comes at once: no credit updates needed */
  h->fwd_cnt = vs_fwd;
  volatile char* p = (volatile char*)(h + 1);
  for (uint32_t i = 0; i < len; ++i) p[i] = data[i];
  tx->desc[slot] = (struct desc){(uint64_t)(uintptr_t)h, 44 + len, 0, 0};
  make_available(tx, slot);
}

static void vs_send(struct vq* tx, uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags,
                    const char* data, uint32_t len) {
  vs_post(tx, op, src_port, dst_port, flags, data, len);
  notify(tx);
}

/* Waits for a packet with `op` (others are skipped), copies it and its payload (NUL-terminated,
 * at most 255 bytes) out and gives the buffer back; 1 when it came. */
static int vs_wait(struct vq* rx, uint16_t op, struct vs_hdr* out, char* payload) {
  for (int n = 0; n < 64; ++n) {
    uint32_t len = 0;
    const int head = wait_used(rx, &len);
    if (head < 0) return 0;
    const volatile struct vs_hdr* h = (const volatile struct vs_hdr*)(DATA + 8192ull * (uint32_t)head);
    const uint16_t got = h->op;
    if (got == op) {
      *out = *(const struct vs_hdr*)h;
      uint32_t k = h->len < 255 ? h->len : 255;
      for (uint32_t i = 0; i < k; ++i) payload[i] = ((const volatile char*)(h + 1))[i];
      payload[k] = 0;
      if (got == kVsRw) vs_fwd += h->len;
    }
    vs_post_rx(rx, (uint16_t)head);
    notify(rx);
    if (got == op) return 1;
  }
  return 0;
}

static uint32_t str_len(const char* s) {
  uint32_t n = 0;
  while (s[n]) ++n;
  return n;
}

/* The three queues, the guest's CID read, receive buffers posted; exit `fail` if the device
 * will not be set up. */
static void vs_setup(struct vq* rx, struct vq* tx, struct vq* ev, uint8_t fail) {
  uint32_t f = 0;
  int r = negotiate(0, &f);
  if (r == 0) r = setup_queue(rx, 0, 64, QUEUE_AREA);
  if (r == 0) r = setup_queue(tx, 1, 64, QUEUE_AREA + 0x20000);
  if (r == 0) r = setup_queue(ev, 2, 64, QUEUE_AREA + 0x40000);
  if (r == 0) r = driver_ok();
  if (r) finish(fail);
  vs_cid = (uint64_t)dev_cfg32(0) | (uint64_t)dev_cfg32(4) << 32;
  for (uint16_t i = 0; i < VS_RX_BUFS; ++i) vs_post_rx(rx, i);
  notify(rx);
}

static void __attribute__((noreturn)) vsock_test(void) {
  struct vq rx, tx, ev;
  vs_setup(&rx, &tx, &ev, 131);
  puts_serial("tiny: vsock cid ");
  put_hex((uint32_t)vs_cid);
  puts_serial("\n");
  struct vs_hdr h;
  char buf[256];
  /* The guest connects to the host's port 5000. */
  vs_send(&tx, kVsRequest, 1234, 5000, 0, 0, 0);
  if (!vs_wait(&rx, kVsResponse, &h, buf) || h.src_port != 5000 || h.dst_port != 1234) finish(132);
  const char* hello = "hello from the guest";
  vs_send(&tx, kVsRw, 1234, 5000, 0, hello, str_len(hello));
  if (!vs_wait(&rx, kVsRw, &h, buf)) finish(133);
  puts_serial("tiny: vsock got ");
  puts_serial(buf);
  puts_serial("\n");
  vs_send(&tx, kVsShutdown, 1234, 5000, 3, 0, 0);
  if (!vs_wait(&rx, kVsRst, &h, buf)) finish(134);
  say("vsock guest connection closed");
  /* The host connects to the guest's port 7000 (a new connection: its own forward count). */
  vs_fwd = 0;
  say("vsock listening");
  if (!vs_wait(&rx, kVsRequest, &h, buf) || h.dst_port != 7000) finish(135);
  const uint32_t peer = h.src_port;
  vs_send(&tx, kVsResponse, 7000, peer, 0, 0, 0);
  if (!vs_wait(&rx, kVsRw, &h, buf)) finish(136);
  char echo[300] = "echo: ";
  uint32_t n = 6;
  for (uint32_t i = 0; buf[i] && n < 299; ++i) echo[n++] = buf[i];
  vs_send(&tx, kVsRw, 7000, peer, 0, echo, n);
  /* The host closes: its SHUTDOWN, then (once the guest closes too) the RST. */
  if (!vs_wait(&rx, kVsShutdown, &h, buf)) finish(137);
  vs_send(&tx, kVsShutdown, 7000, peer, 3, 0, 0);
  if (!vs_wait(&rx, kVsRst, &h, buf)) finish(138);
  say("vsock host connection closed");
  finish(0);
}

/* vsock-bench: one connection at a time to the host's port 5000, the guest's buffer offered as
 * (nearly) unlimited, so the host never waits for a credit update. */
static uint32_t vs_peer_buf, vs_peer_fwd, vs_tx_cnt, vs_rx_bytes, vs_last_port;

/* Takes one returned receive buffer if there is one (without waiting): its op, or 0. */
static uint16_t vs_take(struct vq* rx) {
  if (rx->used[1] == rx->used_seen) return 0;
  uint32_t len = 0;
  const int head = wait_used(rx, &len);
  const volatile struct vs_hdr* h = (const volatile struct vs_hdr*)(DATA + 8192ull * (uint32_t)head);
  const uint16_t op = h->op;
  vs_last_port = h->dst_port;
  vs_peer_buf = h->buf_alloc;
  vs_peer_fwd = h->fwd_cnt;
  if (op == kVsRw) {
    vs_rx_bytes += h->len;
    vs_fwd += h->len;
  }
  vs_post_rx(rx, (uint16_t)head);
  notify(rx);
  return op;
}

static int vs_wait_op(struct vq* rx, uint16_t op) {
  const uint64_t t0 = rdtsc();
  while (rdtsc() - t0 < 30000000000ull)
    if (vs_take(rx) == op) return 1;
  return 0;
}

static void vs_bench_open(struct vq* rx, struct vq* tx, uint32_t port) {
  vs_tx_cnt = vs_rx_bytes = 0;
  vs_fwd = 0;
  vs_send(tx, kVsRequest, port, 5000, 0, 0, 0);
  const uint64_t t0 = rdtsc();
  for (;;) {
    const uint16_t op = vs_take(rx);
    if (op == kVsResponse) return;
    /* Refused: nothing listening, or its backlog full. (An RST for an earlier connection, which
     * both sides closed at once, is not this one's.) */
    if (op == kVsRst && vs_last_port == port) finish(147);
    if (rdtsc() - t0 > 30000000000ull) finish(142);
  }
}

static void vs_bench_close(struct vq* rx, struct vq* tx, uint32_t port) {
  vs_send(tx, kVsShutdown, port, 5000, 3, 0, 0);
  if (!vs_wait_op(rx, kVsRst)) finish(143);
}

static void __attribute__((noreturn)) vsock_bench(const char* args) {
  struct vq rx, tx, ev;
  vs_setup(&rx, &tx, &ev, 141);
  const int kind = starts_with(args, "tx") ? 0 : starts_with(args, "rx") ? 1 : 2;
  const char* p = args;
  while (*p && *p != ' ') ++p;
  while (*p == ' ') ++p;
  uint32_t n = 0;
  while (*p >= '0' && *p <= '9') n = n * 10 + (uint32_t)(*p++ - '0');
  static char page[4096];
  const uint64_t t0 = rdtsc();
  if (kind == 2) {
    for (uint32_t i = 0; i < n; ++i) {
      vs_bench_open(&rx, &tx, 2000 + i);
      vs_bench_close(&rx, &tx, 2000 + i);
    }
  } else {
    vs_bench_open(&rx, &tx, 1999);
    if (kind == 0) {
      for (uint32_t i = 0; i < n; ++i) {
        const uint64_t t1 = rdtsc();
        while (vs_peer_buf - (vs_tx_cnt - vs_peer_fwd) < sizeof page) { /* the host's credit */
          vs_take(&rx);
          if (rdtsc() - t1 > 30000000000ull) finish(144);
        }
        /* At most 16 in flight: the slot is reused once the device has taken it. */
        if ((uint16_t)(tx.avail_idx - tx.used_seen) >= 16 && wait_used(&tx, 0) < 0) finish(145);
        vs_post(&tx, kVsRw, 1999, 5000, 0, page, sizeof page);
        if ((tx.used[0] & 1) == 0) notify(&tx); /* unless the device is at work already */
        vs_tx_cnt += sizeof page;
        vs_take(&rx);
      }
    } else {
      const uint64_t t1 = rdtsc();
      while (vs_rx_bytes < (uint64_t)n * sizeof page) {
        vs_take(&rx);
        if (rdtsc() - t1 > 300000000000ull) finish(146);
      }
    }
    vs_bench_close(&rx, &tx, 1999);
  }
  say_cycles("tiny: bench cycles ", rdtsc() - t0);
  finish(0);
}

void __attribute__((noreturn)) virtio_main(uint64_t cmdline) {
  const char* cmd = (const char*)cmdline;
  const char* test = cmd + 7; /* after "virtio-" */
  const uint32_t type = starts_with(test, "rng") ? 4 : starts_with(test, "net") ? 1 : starts_with(test, "vsock") ? 19 : 2;
  if (!find_mmio(cmd, type) && !find_pci(type)) {
    say("no such virtio device on the command line");
    finish(39);
  }
  if (starts_with(test, "blk-io")) blk_io();
  if (starts_with(test, "blk-ro")) blk_ro();
  if (starts_with(test, "blk-reset")) blk_reset();
  if (starts_with(test, "blk-records")) blk_records();
  if (starts_with(test, "blk-resize")) blk_resize();
  if (starts_with(test, "blk-bench")) blk_bench(test + 10);
  if (starts_with(test, "rng")) rng();
  if (starts_with(test, "net-arp-mmds")) net_arp(1);
  if (starts_with(test, "net-arp")) net_arp(0);
  if (starts_with(test, "net-flood")) net_flood(test + 10);
  if (starts_with(test, "net-bench")) net_bench(test + 10);
  if (starts_with(test, "net-tcp")) net_tcp(test + 8);
  if (starts_with(test, "vsock-bench")) vsock_bench(test + 12);
  if (starts_with(test, "vsock")) vsock_test();
  say("unknown virtio test");
  finish(38);
}
