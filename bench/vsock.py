#!/usr/bin/env python3
"""vsock figures: kiln's virtio-vsock (virtio-mmio and virtio-pci) with the tiny guest's CPL3 driver
polling its rings (guest/tiny/virtio_driver.c, "virtio-vsock-bench tx|rx|connect N"), against a host
program on the Unix socket side, and the host's own Unix-socket rate as the floor.

tx: the guest sends N packets of 4 KiB to the host's port 5000 (within the credit kiln grants);
rx: the host sends N * 4 KiB to the guest; connect: the guest opens and closes N connections.
Per unit = (T(N) - T(N0)) / (N - N0) of whole runs, so VM start-up cancels out; medians of --runs.

QEMU's side needs vhost-vsock (/dev/vhost-vsock, the host kernel's vhost_vsock module): QEMU has no
vsock device of its own. Where that is missing (nested-PVM hosts), its column says so.
"""
import argparse, os, socket, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = 4096


class Host:
    """The host program: accepts on PATH_5000; reads everything (tx, connect) or sends `send` bytes
    and then reads to the end (rx)."""

    def __init__(self, path, send=0, drain=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path + "_5000")
        self.sock.listen(1024)
        self.send = send
        self.drain = drain
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        chunk = bytes(1 << 16)
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                left = self.send
                while left > 0:
                    c.sendall(chunk[:min(left, len(chunk))])
                    left -= min(left, len(chunk))
                if self.send:
                    c.shutdown(socket.SHUT_WR)
                while self.drain and c.recv(1 << 20):
                    pass

    def close(self):
        self.sock.close()


def run_kiln(build, transport, test, send=0):
    with tempfile.TemporaryDirectory(prefix="kiln-vsock-bench-") as d:
        uds = os.path.join(d, "v.sock")
        # connect: each connection is closed as soon as it is accepted (the guest closes its side
        # too), so that a slow host program is not what is measured.
        host = Host(uds, send, drain="connect" not in test)
        cmd = [os.path.join(build, "kiln"), "run", "--kernel", os.path.join(build, "guests", "tiny.elf"), "--memory",
               "64M", "--transport", transport, "--vsock", f"cid=3,uds={uds}", "--cmdline", test]
        t0 = time.monotonic_ns()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
        t1 = time.monotonic_ns()
        host.close()
        if p.returncode != 0:
            raise RuntimeError(f"{test}: kiln exited {p.returncode}: {(p.stdout + p.stderr).decode(errors='replace')[-600:]}")
        return t1 - t0


def per_unit(build, transport, kind, n, n0, runs):
    samples = []
    for _ in range(runs):
        send = (lambda k: k * PAGE) if kind == "rx" else (lambda k: 0)
        big = run_kiln(build, transport, f"virtio-vsock-bench {kind} {n}", send(n))
        small = run_kiln(build, transport, f"virtio-vsock-bench {kind} {n0}", send(n0))
        samples.append((big - small) / 1e9 / (n - n0))
    return statistics.median(samples)


def floor_unix(n):
    """The host's own rate: n pages through a Unix socket pair, one thread writing, one reading."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    total = n * PAGE

    def reader():
        got = 0
        while got < total:
            got += len(b.recv(1 << 20))

    t = threading.Thread(target=reader)
    t0 = time.monotonic_ns()
    t.start()
    chunk = bytes(1 << 16)
    left = total
    while left > 0:
        a.sendall(chunk[:min(left, len(chunk))])
        left -= min(left, len(chunk))
    t.join()
    return (time.monotonic_ns() - t0) / 1e9 / n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pages", type=int, default=50000, help="4 KiB packets per throughput run")
    ap.add_argument("--connects", type=int, default=2000)
    args = ap.parse_args()
    qemu = "n/a: no /dev/vhost-vsock here" if not os.path.exists("/dev/vhost-vsock") else "not measured by this script yet"
    n, n0 = args.pages, args.pages // 10
    gbit = lambda s: PAGE * 8 / s / 1e9
    print(f"vsock, 4 KiB packets ({n} per run, medians of {args.runs}; QEMU: {qemu})")
    for kind, what in (("tx", "guest -> host"), ("rx", "host -> guest")):
        cells = [f"kiln {t} {gbit(per_unit(args.build, t, kind, n, n0, args.runs)):.2f} Gbit/s" for t in ("mmio", "pci")]
        print(f"  {what}: " + ", ".join(cells) + f"; floor (a host Unix socket pair) {gbit(floor_unix(n)):.2f} Gbit/s")
    c, c0 = args.connects, args.connects // 10
    cells = [f"kiln {t} {per_unit(args.build, t, 'connect', c, c0, args.runs) * 1e6:.1f} us" for t in ("mmio", "pci")]
    print("  connect and close (guest to a host Unix socket): " + ", ".join(cells))


if __name__ == "__main__":
    sys.exit(main())
