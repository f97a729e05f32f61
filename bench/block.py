#!/usr/bin/env python3
"""Block-device figures, side by side in one run: kiln (virtio-mmio and virtio-pci), QEMU's
virtio-blk with the same guest, and fio on the host against the same file (the floor: the better of its io_uring and psync engines).

The guest is the tiny guest's CPL3 virtio driver polling the used ring (guest/tiny/virtio_driver.c,
"virtio-blk-bench KIND DEPTH N"): 4 KiB random reads, 128 KiB sequential reads and writes, at
queue depth 1 and 32, on a 256 MiB raw image in the host's page cache (cache=writeback, as a user
gets by default; fio with buffered I/O too). Per request = (T(N) - T(N0)) / (N - N0) of whole runs,
so VM start-up cancels out; medians of --runs. kiln also reports its VM exits per request (the
exits to kiln, plus the queue notifications, which KVM turns into ioeventfd signals) and its peak
RSS with one disk. QEMU: -M microvm with virtio-blk-device (virtio-mmio), KVM; virtio-pci on QEMU needs a PC
machine (q35, a modern-only virtio-blk-pci), whose firmware (SeaBIOS) must run first: tried for 20 s,
and the reason is printed when it cannot run (on nested-PVM hosts it does not end).
"""
from rss import peak_rss_kib
import argparse, json, os, re, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = [("randread4k", 4096), ("seqread128k", 131072), ("seqwrite128k", 131072)]


def run_timed(cmd, ok=(0,), timeout=300):
    """(wall ns, stderr, peak RSS KiB) of one run."""
    t0 = time.monotonic_ns()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise RuntimeError(f"{cmd[0]}: no end within {timeout} s")
    t1 = time.monotonic_ns()
    if p.returncode not in ok:
        raise RuntimeError(f"{cmd[0]} exited {p.returncode}: {(out + err).decode(errors='replace')[-600:]}")
    return t1 - t0, (out + err).decode(errors="replace")



def kiln_cmd(build, image, transport, test, debug=False):
    cmd = [os.path.join(build, "kiln"), "run", "--kernel", os.path.join(build, "guests", "tiny.elf"), "--memory", "64M",
           "--disk", f"path={image}", "--transport", transport, "--cmdline", test]
    return cmd + (["--log-level", "debug"] if debug else [])


def qemu_cmd(build, image, test, machine="microvm"):
    # microvm puts its virtio-mmio devices on the command line only without ACPI, and they are
    # legacy (version 1) unless told otherwise; the guest's driver speaks version 2.
    dev = "virtio-blk-device" if machine == "microvm" else "virtio-blk-pci,disable-legacy=on"
    machine = "microvm,acpi=off" if machine == "microvm" else machine
    return ["qemu-system-x86_64", "-M", machine, "-enable-kvm", "-global", "virtio-mmio.force-legacy=false", "-cpu", "host,-arch-capabilities", "-m", "64M",
            "-nodefaults", "-no-user-config", "-nographic", "-serial", "none",
            "-kernel", os.path.join(build, "guests", "tiny.elf"), "-append", test,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=1",
            "-drive", f"file={image},if=none,id=d0,format=raw,cache=writeback", "-device", f"{dev},drive=d0"]


def per_request(make_cmd, kind, depth, n, n0, runs, ok):
    """Seconds per request, and user-space exits per request when the output has kiln's count."""
    t, exits = [], []
    for _ in range(runs):
        hi, out_hi = run_timed(make_cmd(f"virtio-blk-bench {kind} {depth} {n}"), ok)
        lo, out_lo = run_timed(make_cmd(f"virtio-blk-bench {kind} {depth} {n0}"), ok)
        t.append((hi - lo) / (n - n0) / 1e9)
        def count(o):
            # Exits to kiln (its debug line), plus the queue notifications, each an exit that KVM
            # turns into an ioeventfd signal without coming to kiln.
            m = re.search(r"exits: (.*)", o)
            if not m:
                return None
            n = sum(int(x) for x in re.findall(r" (\d+)", " " + m.group(1)))
            v = re.search(r"virtio: (\{.*\})", o)
            if v:
                n += sum(d.get("notifications", 0) for d in json.loads(v.group(1)).values())
            return n
        if count(out_hi) is not None:
            exits.append((count(out_hi) - count(out_lo)) / (n - n0))
    return statistics.median(t), (statistics.median(exits) if exits else None)


def fio(image, kind, size, depth, seconds):
    """The host's own rate on the same file: the better of fio's io_uring engine at this depth and
    its psync engine (one thread, pread/pwrite): for buffered writes on ext4 io_uring hands every
    write to a worker, and a plain pwrite loop is the faster floor."""
    rw = {"randread4k": "randread", "seqread128k": "read", "seqwrite128k": "write"}[kind]
    best = 0.0
    for engine in ("io_uring", "psync"):
        out = subprocess.run(["fio", "--name=floor", f"--filename={image}", f"--rw={rw}", f"--bs={size}",
                              f"--iodepth={depth if engine == 'io_uring' else 1}", f"--ioengine={engine}", "--direct=0", "--invalidate=0", f"--runtime={seconds}",
                              "--time_based", "--output-format=json"], capture_output=True, text=True,
                             check=True).stdout
        job = json.loads(out)["jobs"][0]
        best = max(best, job["write" if rw == "write" else "read"]["iops"])
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--image-mib", type=int, default=256)
    ap.add_argument("--only", action="append", default=[], metavar="WORKLOAD_QDn",
                    help="run only this row (e.g. seqwrite128k_qd32); repeatable")
    args = ap.parse_args()
    have_qemu = shutil.which("qemu-system-x86_64") is not None
    have_fio = shutil.which("fio") is not None
    with tempfile.TemporaryDirectory(prefix="kiln-bench-blk-") as tmp:
        image = os.path.join(tmp, "bench.img")
        with open(image, "wb") as f:
            for _ in range(args.image_mib):
                f.write(os.urandom(1 << 20))
        # Warm the page cache: every target reads the same cached file.
        subprocess.run(["cat", image], stdout=subprocess.DEVNULL, check=True)
        results, notes = {}, []
        qemu_pci_ok = None
        for kind, size in WORKLOADS:
            for depth in (1, 32):
                if args.only and f"{kind}_qd{depth}" not in args.only:
                    continue
                n = (20000 if size == 4096 else 4000) if depth == 1 else (80000 if size == 4096 else 12000)
                n0 = n // 10
                row = {"bytes": size, "depth": depth}
                for transport in ("mmio", "pci"):
                    s, exits = per_request(lambda t, tr=transport: kiln_cmd(args.build, image, tr, t, debug=True),
                                           kind, depth, n, n0, args.runs, (0,))
                    row[f"kiln_{transport}_iops"] = 1 / s
                    row[f"kiln_{transport}_exits_per_req"] = exits
                if have_qemu:
                    s, _ = per_request(lambda t: qemu_cmd(args.build, image, t), kind, depth, n, n0, args.runs, (1,))
                    row["qemu_mmio_iops"] = 1 / s
                    if qemu_pci_ok is None:
                        try:
                            run_timed(qemu_cmd(args.build, image, "virtio-blk-bench randread4k 1 10", "q35"), (1,), 20)
                            qemu_pci_ok = True
                        except RuntimeError as e:
                            qemu_pci_ok = False
                            notes.append(f"QEMU virtio-pci (q35) could not run the guest here: {str(e)[:200]}")
                    if qemu_pci_ok:
                        s, _ = per_request(lambda t: qemu_cmd(args.build, image, t, "q35"), kind, depth, n, n0,
                                           args.runs, (1,))
                        row["qemu_pci_iops"] = 1 / s
                if have_fio:
                    row["fio_iops"] = fio(image, kind, size, depth, 3)
                results[f"{kind}_qd{depth}"] = row
                print(f"{kind} qd{depth}: " + ", ".join(f"{k} {v:.3g}" for k, v in row.items() if isinstance(v, float)),
                      file=sys.stderr)
        rss = peak_rss_kib(kiln_cmd(args.build, image, "mmio", "virtio-blk-bench seqread128k 32 2000"))
    print(f"\nblock I/O, tiny guest polling at CPL3 ({os.uname().nodename}); IOPS (MB/s), ratios kiln/QEMU and kiln/fio")
    print(f"{'workload':<18}{'kiln mmio':>18}{'kiln pci':>18}{'QEMU mmio':>18}{'QEMU pci':>18}{'fio':>18}"
          f"{'mmio/QEMU':>11}{'pci/QEMU':>10}{'mmio/fio':>10}{'exits/req':>10}")
    def cell(row, key):
        v = row.get(key)
        return f"{v:>9.0f} ({v * row['bytes'] / 1e6:>5.0f})" if v else f"{'-':>18}"
    for name, row in results.items():
        q = row.get("qemu_mmio_iops")
        qp = row.get("qemu_pci_iops", q)
        ratio = lambda a, b: f"{a / b:.2f}" if a and b else "-"
        ex = row.get("kiln_mmio_exits_per_req")
        print(f"{name:<18}{cell(row, 'kiln_mmio_iops')}{cell(row, 'kiln_pci_iops')}{cell(row, 'qemu_mmio_iops')}"
              f"{cell(row, 'qemu_pci_iops')}{cell(row, 'fio_iops')}{ratio(row['kiln_mmio_iops'], q):>11}"
              f"{ratio(row['kiln_pci_iops'], qp):>10}{ratio(row['kiln_mmio_iops'], row.get('fio_iops')):>10}"
              f"{(f'{ex:.3f}' if ex is not None else '-'):>10}")
    print(f"kiln peak RSS with one disk (64 MiB guest): {rss / 1024:.1f} MiB")
    for n in notes:
        print("note: " + n)
    out = {"block": results, "kiln_rss_kib": rss, "notes": notes}
    path = args.json or os.path.join(args.build, "bench-block-results.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print(f"(JSON: {path})")


if __name__ == "__main__":
    main()
