#!/usr/bin/env python3
"""Boot-time figures: when a Linux guest reaches each milestone under this build of kiln, beside the
same boots under a baseline build of kiln (a git ref, by default origin/main or main: the previous
main) and QEMU, in one run.

Milestones are read off the serial console as it arrives, in seconds from the VMM's start:
  entry   "Linux version", the kernel's first line. It reaches the console when the kernel's console
          comes up (before that the kernel keeps its lines in its buffer), so this is later than the
          kernel's first instruction; the decompressor, if it runs, is before it.
  init    "Run /init as init process"
  end     the VM's exit (test kernel only: its machine script prints what it found and powers off)

Boots:
  test      the test kernel's vmlinux (PVH) with the test initramfs, 1 vCPU, 128 MiB,
            kiln.script=machine kiln.then=poweroff; the median of --runs boots a build.
  test-bz   the same from the test kernel's bzImage (kiln unpacks it on nested-PVM hosts).
  stock     Debian's cloud bzImage, 1 vCPU, 256 MiB, to "Run /init", once a build (--stock; the
            boot stops there: what follows is the e2e test's business).
  stock-2   the same with 2 vCPUs (--stock).

Boots run one at a time: two at once on a 2-core host slow each other by 2-4x. QEMU
(qemu-system-x86_64 -M microvm -enable-kvm) boots the same kernel and initramfs; on nested-PVM
hosts its KVM mode cannot run Linux (shared/guide/this-host.md), and the row says so when it
reaches no milestone within --qemu-deadline.

  python3 bench/boot.py [--runs 3] [--baseline REF] [--baseline-test-kernel DIR] [--stock] [--json FILE]
"""
import argparse, json, os, selectors, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("KILN_CACHE") or "/var/cache/kiln"
MILESTONES = [("entry", b"Linux version"), ("init", b"Run /init as init process")]


def boot(cmd, deadline, stop_at_init=False):
    """{milestone: seconds} of one boot, plus 'end' when the VMM exits by itself before `deadline`."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen, buf = {}, b""
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    try:
        while True:
            left = deadline - (time.monotonic() - t0)
            if left <= 0:
                break
            if not sel.select(timeout=min(left, 1.0)):
                continue
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                p.wait()
                seen["end"] = time.monotonic() - t0
                seen["status"] = p.returncode
                break
            # The whole chunk is searched (a fast console hands over several KiB at once); the
            # tail kept before it catches a marker split between two reads.
            buf = buf[-256:] + chunk
            for name, marker in MILESTONES:
                if name not in seen and marker in buf:
                    seen[name] = time.monotonic() - t0
            if stop_at_init and "init" in seen:
                break
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return seen


def kiln_cmd(kiln, kernel, initrd, memory, cmdline, cpus):
    return [kiln, "run", "--kernel", kernel, "--initrd", initrd, "--memory", memory, "--cpus", str(cpus), "--cmdline",
            cmdline]


def qemu_cmd(kernel, initrd, memory, cmdline, cpus):
    return ["qemu-system-x86_64", "-M", "microvm,acpi=off", "-enable-kvm", "-cpu", "host", "-m", memory,
            "-smp", str(cpus),
            "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-kernel", kernel, "-initrd", initrd,
            "-append", cmdline + " reboot=t", "-device", "isa-debug-exit,iobase=0xf4,iosize=1", "-no-reboot"]


def build_baseline(ref, out):
    """Builds kiln at `ref` in a throw-away worktree; returns the binary's path."""
    wt = os.path.join(out, "src")
    if os.path.isdir(wt):
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", wt], check=False)
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", wt, ref], check=True, stdout=subprocess.DEVNULL)
    try:
        build = os.path.join(out, "build")
        subprocess.run(["cmake", "-S", wt, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", build, "--target", "kiln"], check=True, stdout=subprocess.DEVNULL)
        return os.path.join(build, "kiln")
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", wt], check=False)


def fmt(v):
    return "-" if v is None else f"{v:7.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="the build whose kiln is measured")
    ap.add_argument("--baseline", default=None, help="git ref of the baseline kiln (default: origin/main, else main)")
    ap.add_argument("--baseline-kiln", default=None, help="a baseline kiln binary already built (instead of --baseline)")
    ap.add_argument("--runs", type=int, default=3, help="test-kernel boots a build (median)")
    ap.add_argument("--baseline-test-kernel", default=None,
                    help="a test-kernel directory for the baseline's boots (an earlier build kept in the cache, "
                         "$KILN_CACHE/test-kernel/<hash>), so a change to the test kernel shows beside the previous one")
    ap.add_argument("--stock", action="store_true",
                    help="also boot Debian's stock kernel once a build, with 1 and with 2 vCPUs")
    ap.add_argument("--deadline", type=float, default=900, help="seconds a boot may take")
    ap.add_argument("--qemu-deadline", type=float, default=60, help="seconds QEMU gets to reach a milestone")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    test_vmlinux = os.path.join(CACHE, "test-kernel/current/vmlinux")
    test_bz = os.path.join(CACHE, "test-kernel/current/bzImage")
    initrd = os.path.join(CACHE, "initramfs/current/initramfs.cpio")
    stock_bz = os.path.join(CACHE, "stock-kernel/current/bzImage")
    for f in [test_vmlinux, test_bz, initrd] + ([stock_bz] if a.stock else []):
        if not os.path.exists(f):
            sys.exit(f"boot.py: {f} is missing: run guest/prepare.sh{' --stock' if a.stock else ''} first")

    kiln = os.path.join(a.build, "kiln")
    tmp = tempfile.mkdtemp(prefix="kiln-boot-bench-")
    try:
        if a.baseline_kiln:
            base = a.baseline_kiln
            base_name = a.baseline_kiln
        else:
            ref = a.baseline
            if ref is None:
                ok = subprocess.run(["git", "-C", ROOT, "rev-parse", "--verify", "-q", "origin/main"],
                                    stdout=subprocess.DEVNULL).returncode == 0
                ref = "origin/main" if ok else "main"
            sha = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", ref], check=True, capture_output=True,
                                 text=True).stdout.strip()
            print(f"boot.py: building the baseline kiln at {ref} ({sha})", flush=True)
            base = build_baseline(ref, tmp)
            base_name = f"{ref} ({sha})"

        test_line = "console=ttyS0 panic=1 kiln.script=machine kiln.then=poweroff"
        rows = [("test", test_vmlinux, initrd, "128M", test_line, 1, a.runs, False),
                ("test-bz", test_bz, initrd, "128M", test_line, 1, a.runs, False)]
        if a.stock:
            rows.append(("stock", stock_bz, initrd, "256M", "console=ttyS0 panic=1", 1, 1, True))
            rows.append(("stock-2", stock_bz, initrd, "256M", "console=ttyS0 panic=1", 2, 1, True))

        results = {"baseline": base_name, "rows": {}}
        for name, kernel, rd, mem, line, cpus, runs, stop in rows:
            per = {"kiln": [], "baseline": []}
            for i in range(runs):
                # Alternate, so a slow spell on the host hits both builds alike.
                for who, binary in (("kiln", kiln), ("baseline", base)):
                    image = kernel
                    if who == "baseline" and a.baseline_test_kernel and name.startswith("test"):
                        image = os.path.join(a.baseline_test_kernel, os.path.basename(kernel))
                    s = boot(kiln_cmd(binary, image, rd, mem, line, cpus), a.deadline, stop_at_init=stop)
                    per[who].append(s)
                    print(f"boot.py: {name} {who} run {i + 1}: " +
                          ", ".join(f"{k} {v:.1f} s" if isinstance(v, float) else f"{k} {v}" for k, v in s.items()),
                          flush=True)
            q = None
            if shutil.which("qemu-system-x86_64") and name != "test-bz":
                q = boot(qemu_cmd(kernel, rd, mem, line, cpus), a.qemu_deadline, stop_at_init=stop)
                print(f"boot.py: {name} qemu: {q or 'no milestone within the deadline'}", flush=True)
            med = {}
            for who in per:
                med[who] = {}
                for m in ("entry", "init", "end"):
                    vals = [s[m] for s in per[who] if m in s]
                    med[who][m] = statistics.median(vals) if len(vals) == len(per[who]) else None
            results["rows"][name] = {"runs": per, "median": med, "qemu": q}

        print()
        tk = f", its test kernel from {a.baseline_test_kernel}" if a.baseline_test_kernel else ""
        print(f"baseline: {base_name}{tk}; seconds from start, median of {a.runs} (stock rows: 1)")
        print(f"{'boot':8} {'milestone':9} {'kiln':>7} {'baseline':>8} {'ratio':>6} {'QEMU':>7}")
        for name, r in results["rows"].items():
            for m in ("entry", "init", "end"):
                k, b = r["median"]["kiln"][m], r["median"]["baseline"][m]
                if k is None and b is None:
                    continue
                ratio = f"{k / b:6.2f}" if k is not None and b else "     -"
                q = r["qemu"]
                if q is None:
                    qs = "    n/a"
                elif "entry" not in q:
                    # No kernel line at all: QEMU ended (or hung) before the guest ran.
                    qs = f"st {q['status']}" if "status" in q else "  none"
                else:
                    qs = fmt(q.get(m))
                print(f"{name:8} {m:9} {fmt(k)} {fmt(b):>8} {ratio} {qs:>7}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(results, f, indent=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
