#!/usr/bin/env python3
"""Network figures, side by side in one run (as root: it makes a network namespace with a tap):
kiln's virtio-net (virtio-mmio and virtio-pci) and QEMU's virtio-net-device (virtio-mmio, no
vhost) with the same guest, and the host's own rate through the same tap (the floor).

The guest is the tiny guest's CPL3 virtio driver polling its rings (guest/tiny/virtio_driver.c,
"virtio-net-bench tx|rx N"): tx sends N frames of 1514 bytes (EtherType 0x88b5, dropped by the
host's stack) with up to 256 in flight; rx counts N frames arriving into 256 posted buffers while a
host process floods the tap's host side with the same frames through a packet socket. Per frame =
(T(N) - T(N0)) / (N - N0) of whole runs, so VM start-up cancels out; medians of --runs, the VMMs
taking turns within each run. The floor: a host process writing N frames to the tap's file
descriptor (tx), and reading them off it while the same flood runs (rx). Also kiln's peak RSS with
no interface, a tap, and user-mode networking.

TCP through user-mode networking (libslirp, no root needed for this part): the same guest's
"virtio-net-tcp rx|tx N" keeps one TCP connection with a host program through a hostfwd to its
port 5555 (just enough TCP for a lossless local link: window 65535, MSS 1460, checksums left to
the device when it offers CSUM): rx, the host sends N bytes and the guest takes them; tx, the
guest sends N bytes. Time from the host's connect to its EOF; per byte = (T(N) - T(N/10)) /
(0.9 N), medians of --runs, the VMMs taking turns. QEMU: -netdev user with the same forward. The
floor: a host TCP connection over loopback moving the same bytes (Python on both ends).
"""
from rss import peak_rss_kib
import argparse, json, os, shutil, socket, statistics, struct, subprocess, sys, time, fcntl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAME = bytes([2, 0, 0, 0, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x88, 0xb5]) + bytes(1500)
TAP = "kb0"


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def in_ns(ns, cmd):
    return ["ip", "netns", "exec", ns] + cmd


def timed(cmd, timeout=300):
    t0 = time.monotonic_ns()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    t1 = time.monotonic_ns()
    if p.returncode not in (0, 1):  # QEMU's isa-debug-exit turns 0 into 1
        raise RuntimeError(f"{cmd[4] if cmd[0] == 'ip' else cmd[0]} exited {p.returncode}: "
                           f"{(p.stdout + p.stderr).decode(errors='replace')[-600:]}")
    return t1 - t0


def kiln_cmd(build, transport, test, net=f"tap={TAP}"):
    return [os.path.join(build, "kiln"), "run", "--kernel", os.path.join(build, "guests", "tiny.elf"), "--memory", "64M",
            "--net", net, "--transport", transport, "--cmdline", test]


def qemu_cmd(build, test):
    return ["qemu-system-x86_64", "-M", "microvm,acpi=off", "-enable-kvm", "-global", "virtio-mmio.force-legacy=false",
            "-cpu", "host,-arch-capabilities", "-m", "64M", "-nodefaults", "-no-user-config", "-nographic",
            "-serial", "none", "-kernel", os.path.join(build, "guests", "tiny.elf"), "-append", test,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=1",
            "-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no,vhost=off", "-device", "virtio-net-device,netdev=n0"]


def medians_in_turns(makers, sample, runs, what):
    """Medians of `runs` samples for each of `makers` (name -> command maker), `sample(make)` taking
    one. The VMMs take turns within each run, so that a drift of the host's speed during the row
    (these hosts drift by tens of percent within minutes) reaches every column alike. A QEMU column
    whose VMM fails is left out, with a line on stderr."""
    samples = {name: [] for name in makers}
    for _ in range(runs):
        for name, make in makers.items():
            if name not in samples:
                continue
            try:
                samples[name].append(sample(make))
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                if not name.startswith("qemu"):
                    raise
                print(f"bench/net.py: QEMU {what}: {e}", file=sys.stderr)
                del samples[name]
    return {name: statistics.median(s) for name, s in samples.items()}


def per_frame(ns, makers, kind, n, n0, runs):
    """Seconds per frame for each of `makers`, as medians_in_turns gives them."""
    def sample(make):
        big = timed(in_ns(ns, make(f"virtio-net-bench {kind} {n}")))
        small = timed(in_ns(ns, make(f"virtio-net-bench {kind} {n0}")))
        return (big - small) / 1e9 / (n - n0)
    return medians_in_turns(makers, sample, runs, kind)


FLOOD = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
f = bytes.fromhex(sys.argv[2])
while True:
    try:
        s.send(f)
    except OSError:
        pass
"""

TAP_FLOOR = """
import fcntl, os, struct, sys, time
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", sys.argv[1].encode(), 0x0002 | 0x1000))
f = bytes.fromhex(sys.argv[2]); n = int(sys.argv[4])
t0 = time.monotonic()
if sys.argv[3] == "tx":
    for _ in range(n):
        os.write(fd, f)
else:
    for _ in range(n):
        os.read(fd, 2048)
print((time.monotonic() - t0) / n)
"""


def floor(ns, kind, n):
    out = subprocess.run(in_ns(ns, [sys.executable, "-c", TAP_FLOOR, TAP, FRAME.hex(), kind, str(n)]), check=True,
                         capture_output=True, timeout=300).stdout
    return float(out)


TCP_PORT_GUEST = 5555


def tcp_once(cmd, kind, n, port, timeout=300):
    """One run of virtio-net-tcp: seconds from the host's connect to its EOF."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            line = p.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[0]}: no 'tcp listening': {p.stderr.read()[-600:].decode(errors='replace')}")
            if b"tcp listening" in line:
                break
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        t0 = time.monotonic()
        if kind == "rx":
            buf = memoryview(bytes(1 << 20))
            left = n
            while left > 0:
                left -= s.send(buf[:min(left, len(buf))])
            s.shutdown(socket.SHUT_WR)
            while s.recv(1 << 16):
                pass
        else:
            got = 0
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                got += len(d)
            if got != n:
                raise RuntimeError(f"{cmd[0]}: {got} bytes of {n}")
        t1 = time.monotonic()
        s.close()
        p.wait(timeout=60)
        if p.returncode not in (0, 1):
            raise RuntimeError(f"{cmd[0]} exited {p.returncode}: {p.stderr.read()[-600:].decode(errors='replace')}")
        return t1 - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def tcp_per_byte(make, kind, n, n0):
    port = free_port()
    big = tcp_once(make(port, f"virtio-net-tcp {kind} {n}"), kind, n, port)
    port = free_port()
    small = tcp_once(make(port, f"virtio-net-tcp {kind} {n0}"), kind, n0, port)
    return (big - small) / (n - n0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_floor(n):
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    def sink():
        c, _ = srv.accept()
        while c.recv(1 << 20):
            pass
        c.close()
    t = threading.Thread(target=sink)
    t.start()
    s = socket.create_connection(srv.getsockname())
    buf = memoryview(bytes(1 << 20))
    t0 = time.monotonic()
    left = n
    while left > 0:
        left -= s.send(buf[:min(left, len(buf))])
    s.close()
    t.join()
    srv.close()
    return (time.monotonic() - t0) / n


def kiln_tcp_cmd(build, transport, port, test):
    return [os.path.join(build, "kiln"), "run", "--kernel", os.path.join(build, "guests", "tiny.elf"), "--memory", "64M",
            "--net", f"user,hostfwd=tcp:127.0.0.1:{port}-:{TCP_PORT_GUEST}", "--transport", transport, "--cmdline", test]


def qemu_tcp_cmd(build, port, test):
    return ["qemu-system-x86_64", "-M", "microvm,acpi=off", "-enable-kvm", "-global", "virtio-mmio.force-legacy=false",
            "-cpu", "host,-arch-capabilities", "-m", "64M", "-nodefaults", "-no-user-config", "-display", "none",
            "-serial", "stdio", "-kernel", os.path.join(build, "guests", "tiny.elf"), "-append", test,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=1",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:{TCP_PORT_GUEST}", "-device", "virtio-net-device,netdev=n0"]


def tcp_rows(build, n, runs, have_qemu):
    rows = {}
    for kind in ("rx", "tx"):
        makers = {f"kiln_{transport}": (lambda port, t, transport=transport: kiln_tcp_cmd(build, transport, port, t))
                  for transport in ("mmio", "pci")}
        if have_qemu:
            makers["qemu_mmio"] = lambda port, t: qemu_tcp_cmd(build, port, t)
        row = medians_in_turns(makers, lambda make: tcp_per_byte(make, kind, n, n // 10), runs, f"tcp {kind}")
        row["floor"] = tcp_floor(n)
        rows[kind] = row
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--frames", type=int, default=200000)
    ap.add_argument("--tcp-bytes", type=int, default=64 << 20)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/net.py: needs root (a network namespace and a tap)")
    ns = f"kiln-bench-{os.getpid()}"
    sh("ip", "netns", "add", ns)
    flood = None
    try:
        sh("ip", "-n", ns, "tuntap", "add", TAP, "mode", "tap")
        sh("ip", "-n", ns, "link", "set", TAP, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        have_qemu = shutil.which("qemu-system-x86_64") is not None
        n, n0 = args.frames, args.frames // 10
        rows = {}
        for kind in ("tx", "rx"):
            if kind == "rx":
                flood = subprocess.Popen(in_ns(ns, [sys.executable, "-c", FLOOD, TAP, FRAME.hex()]))
                time.sleep(0.5)
            makers = {f"kiln_{transport}": (lambda t, transport=transport: kiln_cmd(args.build, transport, t))
                      for transport in ("mmio", "pci")}
            if have_qemu:
                makers["qemu_mmio"] = lambda t: qemu_cmd(args.build, t)
            row = per_frame(ns, makers, kind, n, n0, args.runs)
            row["floor"] = floor(ns, kind, n)
            rows[kind] = row
            if flood:
                flood.kill()
                flood.wait()
                flood = None
        tcp = tcp_rows(args.build, args.tcp_bytes, args.runs, have_qemu)
        rss = {
            "none": peak_rss_kib([os.path.join(args.build, "kiln"), "run", "--kernel",
                                  os.path.join(args.build, "guests", "tiny.elf"), "--memory", "64M", "--cmdline", "hello"]),
            "tap": peak_rss_kib(in_ns(ns, kiln_cmd(args.build, "mmio", "hello"))),
            "user": peak_rss_kib(kiln_cmd(args.build, "mmio", "hello", "user")),
        }
    finally:
        if flood:
            flood.kill()
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)

    def cell(s):
        return f"{1 / s / 1e3:8.0f} k ({1514 * 8 / s / 1e9:5.2f})" if s else "—"

    print(f"\n1514-byte frames over a tap, frames/s (Gbit/s of frames); medians of {args.runs}, N = {n}")
    print(f"{'':6}{'kiln mmio':>22}{'kiln pci':>22}{'QEMU mmio':>22}{'host floor':>22}{'mmio/QEMU':>11}{'pci/QEMU':>10}")
    for kind, row in rows.items():
        q = row.get("qemu_mmio")
        ratio = lambda k: f"{q / row[k]:.2f}" if q else "—"
        print(f"{kind:<6}{cell(row['kiln_mmio']):>22}{cell(row['kiln_pci']):>22}{cell(q):>22}{cell(row['floor']):>22}"
              f"{ratio('kiln_mmio'):>11}{ratio('kiln_pci'):>10}")
    print(f"\nTCP through user-mode networking (hostfwd), Gbit/s; medians of {args.runs}, N = {args.tcp_bytes} bytes")
    print(f"{'':6}{'kiln mmio':>12}{'kiln pci':>12}{'QEMU mmio':>12}{'host floor':>12}{'mmio/QEMU':>11}{'pci/QEMU':>10}")
    gbit = lambda s: f"{8 / s / 1e9:.2f}" if s else "—"
    for kind, row in tcp.items():
        q = row.get("qemu_mmio")
        ratio = lambda k: f"{q / row[k]:.2f}" if q else "—"
        print(f"{kind:<6}{gbit(row['kiln_mmio']):>12}{gbit(row['kiln_pci']):>12}{gbit(q):>12}{gbit(row['floor']):>12}"
              f"{ratio('kiln_mmio'):>11}{ratio('kiln_pci'):>10}")
    print(f"kiln peak RSS (tiny guest, 64 MiB): no interface {rss['none'] / 1024:.1f} MiB, a tap "
          f"{rss['tap'] / 1024:.1f} MiB, user-mode networking {rss['user'] / 1024:.1f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"per_frame_s": rows, "tcp_per_byte_s": tcp, "rss_kib": rss, "frames": n, "runs": args.runs}, f, indent=1)


if __name__ == "__main__":
    main()
