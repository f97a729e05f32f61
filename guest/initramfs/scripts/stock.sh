# Debian's stock cloud kernel: its user space at work (kiln's run-time syscall fix makes that
# possible on nested-PVM hosts), then the kernel's own ACPI power-off. Its cloud flavour has no
# /dev/port, so the debug-exit port is not used: success powers off (status 0), a failed step
# reboots (status 2).
step uname sh -c 'uname -r | grep -q "^6\."'
echo "KILN-UNAME: $(uname -r)"
step cpuinfo sh -c 'test "$(grep -c ^processor /proc/cpuinfo)" = "$(nproc)"'
step fork-exec sh -c 'test "$(sh -c "echo hello")" = hello'
step pipes sh -c 'test "$(seq 1 100 | grep -c 7)" = 19'
step file-write sh -c 'echo data > /tmp/f && cp /tmp/f /tmp/g && sync && test "$(cat /tmp/g)" = data && rm /tmp/f /tmp/g'
step signals sh -c 'sleep 30 & pid=$!; kill $pid; wait $pid; test $? -gt 128'
echo "KILN-SUMMARY: $failures failed"
console_drain
if [ "$failures" = 0 ]; then poweroff -f; else reboot -f; fi
