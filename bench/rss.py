"""kiln's peak resident memory for the benchmarks.

getrusage's ru_maxrss cannot give it when Python starts kiln: the high-water mark carries over
exec, so the forked Python (~14-20 MiB) would count as kiln. Instead, VmHWM of kiln's own address
space is read from /proc while it runs (only once the process is kiln: a launcher such as
`ip netns exec` execs it in the same process), and the last reading before it ends is the peak.
"""
import os, subprocess, time


def peak_rss_kib(cmd, name="kiln", poll_s=0.002):
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while p.poll() is None:
        try:
            if os.path.basename(os.readlink(f"/proc/{p.pid}/exe")) == name:
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(poll_s)
    return peak
