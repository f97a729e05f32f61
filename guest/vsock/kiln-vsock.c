/*
 * kiln-vsock: a stream over AF_VSOCK for the test guest's scripts (busybox has no vsock). Built by
 * guest/initramfs/build.sh, freestanding (raw system calls, no libc): a few KiB, where a static
 * glibc binary would add most of a megabyte for the guest's kernel to unpack at every boot.
 *
 *   kiln-vsock connect CID PORT   connect to CID:PORT (the host is CID 2)
 *   kiln-vsock listen PORT        accept one connection on PORT
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
enum { kRead = 0, kWrite = 1, kClose = 3, kPoll = 7, kSocket = 41, kConnect = 42, kAccept = 43, kShutdown = 48,
       kBind = 49, kListen = 50, kExit = 60 };
enum { kAfVsock = 40, kStream = 1, kShutWr = 1, kPollIn = 1, kEintr = 4 };

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

static void __attribute__((noreturn, used)) run(u64* sp) {
  const int argc = (int)sp[0];
  char** argv = (char**)(sp + 1);
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
    const char* usage = "usage: kiln-vsock connect CID PORT | kiln-vsock listen PORT\n";
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
