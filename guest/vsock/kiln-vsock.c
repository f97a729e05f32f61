/*
 * kiln-vsock: a stream over AF_VSOCK for the test guest's scripts (busybox has no vsock), and a
 * raw-frame flood (busybox has nothing that sends as fast as it can). Built by
 * guest/initramfs/build.sh, freestanding (raw system calls, no libc): a few KiB, where a static
 * glibc binary would add most of a megabyte for the guest's kernel to unpack at every boot.
 *
 *   kiln-vsock connect CID PORT   connect to CID:PORT (the host is CID 2)
 *   kiln-vsock listen PORT        accept one connection on PORT
 *   kiln-vsock flood IFACE SECS   send 60-byte broadcast frames (EtherType 0x88b5, for local
 *                                 experiments: no host stack takes them) through IFACE's driver
 *                                 from a non-blocking packet socket, as fast as the guest can, for
 *                                 SECS seconds; prints "flood: N frames" (those the driver took)
 *
 * Then standard input goes to the connection and the connection to standard output; at the end of
 * standard input the sending side is shut (the peer reads EOF), and the program ends once the peer
 * has shut its side and everything it sent is written out. Exit 0; 1 on an error (named on
 * standard error); 2 for a bad command line.
 */
typedef unsigned long u64;
typedef long i64;

static i64 sys(i64 n, i64 a, i64 b, i64 c) {
  i64 r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}
enum { kRead = 0, kWrite = 1, kClose = 3, kPoll = 7, kIoctl = 16, kSocket = 41, kConnect = 42, kAccept = 43,
       kShutdown = 48, kBind = 49, kListen = 50, kExit = 60, kFcntl = 72, kClockGettime = 228 };
enum { kAfVsock = 40, kStream = 1, kShutWr = 1, kPollIn = 1, kEintr = 4 };
enum { kAfPacket = 17, kSockRaw = 3, kSiocGifIndex = 0x8933, kClockMonotonic = 1, kEtherType = 0x88b5, kSetFl = 4,
       kNonBlock = 0x800 };

struct sockaddr_vm {
  unsigned short family, reserved;
  unsigned port, cid;
  unsigned char zero[4];
};
struct pollfd {
  int fd;
  short events, revents;
};

static u64 len(const char* s) {
  u64 n = 0;
  while (s[n]) ++n;
  return n;
}
static int eq(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}
static unsigned num(const char* s) {
  unsigned v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (unsigned)(*s++ - '0');
  return v;
}
static void __attribute__((noreturn)) quit(int status) {
  sys(kExit, status, 0, 0);
  __builtin_unreachable();
}
static void __attribute__((noreturn)) die(const char* what) {
  sys(kWrite, 2, (i64) "kiln-vsock: ", 12);
  sys(kWrite, 2, (i64)what, (i64)len(what));
  sys(kWrite, 2, (i64) " failed\n", 8);
  quit(1);
}
static void write_all(int fd, const char* p, i64 n, const char* what) {
  while (n > 0) {
    const i64 w = sys(kWrite, fd, (i64)p, n);
    if (w == -kEintr) continue;
    if (w <= 0) die(what);
    p += w;
    n -= w;
  }
}

static char buf[65536];

struct sockaddr_ll {
  unsigned short family, protocol;
  int ifindex;
  unsigned short hatype;
  unsigned char pkttype, halen, addr[8];
};
struct ifreq {
  char name[16];
  int ifindex;
  char pad[20];
};
struct timespec {
  i64 sec, nsec;
};

static i64 now_s(void) {
  struct timespec t;
  sys(kClockGettime, kClockMonotonic, (i64)&t, 0);
  return t.sec;
}

static void __attribute__((noreturn)) flood(const char* iface, unsigned seconds) {
  const unsigned short proto = (unsigned short)(kEtherType >> 8 | (kEtherType & 0xff) << 8); /* network order */
  const i64 s = sys(kSocket, kAfPacket, kSockRaw, proto);
  if (s < 0) die("packet socket");
  struct ifreq ifr = {{0}, 0, {0}};
  for (u64 i = 0; iface[i] && i < 15; ++i) ifr.name[i] = iface[i];
  if (sys(kIoctl, s, kSiocGifIndex, (i64)&ifr) != 0) die("SIOCGIFINDEX");
  struct sockaddr_ll a = {kAfPacket, proto, ifr.ifindex, 0, 0, 0, {0}};
  if (sys(kBind, s, (i64)&a, sizeof a) != 0) die("bind");
  /* Never waits for the driver: a frame its queue cannot take now is not sent (not counted). */
  if (sys(kFcntl, s, kSetFl, kNonBlock) != 0) die("fcntl");
  for (int i = 0; i < 6; ++i) buf[i] = (char)0xff;
  buf[6] = 0x02; /* a locally administered source */
  buf[12] = (char)(kEtherType >> 8), buf[13] = (char)(kEtherType & 0xff);
  const i64 end = now_s() + seconds;
  u64 sent = 0;
  for (;;) {
    for (int i = 0; i < 64; ++i)
      if (sys(kWrite, s, (i64)buf, 60) == 60) ++sent; /* EAGAIN, ENOBUFS: not taken; on */
    if (now_s() >= end) break;
  }
  char out[40] = "flood: ";
  char digits[24];
  int n = 0, at = 7;
  do digits[n++] = (char)('0' + sent % 10); while ((sent /= 10) != 0);
  while (n > 0) out[at++] = digits[--n];
  const char* tail = " frames\n";
  for (u64 i = 0; tail[i]; ++i) out[at++] = tail[i];
  write_all(1, out, at, "write to standard output");
  quit(0);
}

static void __attribute__((noreturn, used)) run(u64* sp) {
  const int argc = (int)sp[0];
  char** argv = (char**)(sp + 1);
  if (argc == 4 && eq(argv[1], "flood")) flood(argv[2], num(argv[3]));
  struct sockaddr_vm addr = {kAfVsock, 0, 0, 0, {0}};
  i64 s = sys(kSocket, kAfVsock, kStream, 0);
  if (s < 0) die("socket");
  if (argc == 4 && eq(argv[1], "connect")) {
    addr.cid = num(argv[2]);
    addr.port = num(argv[3]);
    if (sys(kConnect, s, (i64)&addr, sizeof addr) != 0) die("connect");
  } else if (argc == 3 && eq(argv[1], "listen")) {
    addr.cid = 0xffffffffu; /* VMADDR_CID_ANY */
    addr.port = num(argv[2]);
    if (sys(kBind, s, (i64)&addr, sizeof addr) != 0) die("bind");
    if (sys(kListen, s, 1, 0) != 0) die("listen");
    const i64 c = sys(kAccept, s, 0, 0);
    if (c < 0) die("accept");
    sys(kClose, s, 0, 0);
    s = c;
  } else {
    const char* usage = "usage: kiln-vsock connect CID PORT | kiln-vsock listen PORT | kiln-vsock flood IFACE SECS\n";
    sys(kWrite, 2, (i64)usage, (i64)len(usage));
    quit(2);
  }
  int in_open = 1;
  for (;;) {
    struct pollfd p[2] = {{(int)s, kPollIn, 0}, {0, kPollIn, 0}};
    const i64 r = sys(kPoll, (i64)p, in_open ? 2 : 1, -1);
    if (r == -kEintr) continue;
    if (r < 0) die("poll");
    if (p[0].revents) {
      const i64 n = sys(kRead, s, (i64)buf, sizeof buf);
      if (n == 0) break; /* the peer is done */
      if (n < 0 && n != -kEintr) die("read from the connection");
      if (n > 0) write_all(1, buf, n, "write to standard output");
    }
    if (in_open && p[1].revents) {
      const i64 n = sys(kRead, 0, (i64)buf, sizeof buf);
      if (n < 0 && n != -kEintr) die("read standard input");
      if (n == 0) {
        in_open = 0;
        sys(kShutdown, s, kShutWr, 0);
      }
      if (n > 0) write_all((int)s, buf, n, "write to the connection");
    }
  }
  sys(kClose, s, 0, 0);
  quit(0);
}

__asm__(".globl _start\n_start:\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call run\n");
