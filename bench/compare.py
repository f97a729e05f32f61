#!/usr/bin/env python3
"""kiln's benchmarks, side by side with QEMU and the floor in one run (medians, ratios).

(a) exec -> first guest instruction: the boot-timer guest writes port 0x3f0 with its first
    instruction; kiln prints the CLOCK_MONOTONIC time of that write, taken against the time just
    before exec. QEMU has no boot timer, so the side-by-side figure is exec -> end of the VM for a
    guest that ends at its first instructions (debug-exit port), for both.
(b) cost of one port-I/O exit: the tiny guest writes port 0x80 N times at CPL3 (IOPL 3); per exit
    = (T(N) - T(0)) / N of whole runs, for kiln, QEMU and a bare KVM_RUN loop (the floor).
"""
import argparse, json, os, re, shutil, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def qemu_cmd(guest, cmdline=None):
    cmd = ["qemu-system-x86_64", "-M", "microvm", "-enable-kvm", "-cpu", "host,-arch-capabilities",
           "-m", "64M", "-nodefaults", "-no-user-config", "-nographic", "-serial", "none",
           "-kernel", guest, "-device", "isa-debug-exit,iobase=0xf4,iosize=1"]
    if cmdline is not None:
        cmd += ["-append", cmdline]
    return cmd

def timed(cmd, ok_codes=(0,)):
    t0 = time.monotonic_ns()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t1 = time.monotonic_ns()
    if p.returncode not in ok_codes:
        raise RuntimeError(f"{cmd[0]} exited {p.returncode}: {p.stderr.strip()[-400:]}")
    return t0, t1, p.stderr

def median_ms(samples_ns):
    return statistics.median(samples_ns) / 1e6

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--exits", type=int, default=200000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    kiln = os.path.join(args.build, "kiln")
    bare = os.path.join(args.build, "bench", "bare_kvm_loop")
    boot_guest = os.path.join(args.build, "guests", "boot-timer.elf")
    tiny = os.path.join(args.build, "guests", "tiny.elf")
    have_qemu = shutil.which("qemu-system-x86_64") is not None
    results = {"host": os.uname().nodename, "kernel": os.uname().release,
               "pvm": os.path.isdir("/sys/module/kvm_pvm"), "runs": args.runs}

    # (a) exec -> first instruction, and exec -> end.
    first, kiln_end, qemu_end = [], [], []
    for _ in range(args.runs):
        t0, t1, err = timed([kiln, "run", "--kernel", boot_guest, "--memory", "64M", "--boot-timer"])
        m = re.search(r"monotonic (\d+) ns", err)
        if not m:
            raise RuntimeError("kiln printed no boot-timer line:\n" + err)
        first.append(int(m.group(1)) - t0)
        kiln_end.append(t1 - t0)
        if have_qemu:
            q0, q1, _ = timed(qemu_cmd(boot_guest), ok_codes=(1,))  # debug-exit 0 -> status 1
            qemu_end.append(q1 - q0)
    results["exec_to_first_instruction_ms"] = {"kiln": median_ms(first)}
    results["exec_to_vm_end_ms"] = {"kiln": median_ms(kiln_end)}
    if qemu_end:
        results["exec_to_vm_end_ms"]["qemu"] = median_ms(qemu_end)

    # (b) port-I/O exit cost.
    def per_exit(make_cmd, ok=(0,)):
        base, loaded = [], []
        for _ in range(max(3, args.runs // 4)):
            a0, a1, _ = timed(make_cmd(0), ok)
            b0, b1, _ = timed(make_cmd(args.exits), ok)
            base.append(a1 - a0)
            loaded.append(b1 - b0)
        return (statistics.median(loaded) - statistics.median(base)) / args.exits / 1e3  # us
    exit_us = {
        "floor": per_exit(lambda n: [bare, tiny, f"pio {n}"]),
        "kiln": per_exit(lambda n: [kiln, "run", "--kernel", tiny, "--memory", "64M", "--cmdline", f"pio {n}",
                                    "--log-level", "warn"]),
    }
    if have_qemu:
        exit_us["qemu"] = per_exit(lambda n: qemu_cmd(tiny, f"pio {n}"), ok=(1,))
    results["port_io_exit_us"] = exit_us

    # The table.
    def cell(v, fmt="10.2f"):
        return format(v, fmt) if v is not None else "-".rjust(10)
    def ratio(a, b):
        return cell(a / b, "10.3f") if (a is not None and b) else "-".rjust(10)
    f = results["exec_to_first_instruction_ms"]["kiln"]
    e = results["exec_to_vm_end_ms"]
    x = results["port_io_exit_us"]
    print(f"host: {results['kernel']}{' (nested PVM)' if results['pvm'] else ''}; medians of {args.runs} runs")
    print(f"{'benchmark':46} {'kiln':>10} {'QEMU':>10} {'floor':>10} {'kiln/QEMU':>10} {'kiln/floor':>10}")
    rows = [
        ("(a) exec -> first guest instruction (ms)", f, None, None),
        ("(a) exec -> VM end, guest ends at once (ms)", e["kiln"], e.get("qemu"), None),
        ("(b) one port-I/O exit from CPL3 (us)", x["kiln"], x.get("qemu"), x["floor"]),
    ]
    for name, k, q, fl in rows:
        print(f"{name:46} {cell(k)} {cell(q)} {cell(fl)} {ratio(k, q)} {ratio(k, fl)}")
    out = args.json or os.path.join(args.build, "bench-results.json")
    with open(out, "w") as fh:
        json.dump(results, fh, indent=2)
    print(f"written: {out}")

if __name__ == "__main__":
    sys.exit(main())
