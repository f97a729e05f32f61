# The machine test: what the kernel found (CPUs, clock, ACPI tables), then the ending that
# kiln.then= names: poweroff or reboot (the kernel's own paths, through ACPI), panic (sysrq), or
# exit (the debug-exit port, status 0).
echo "KILN-NPROC: $(nproc)"
# One line per CPU: its APIC id, package and core, as the kernel derived them from CPUID.
sed -n 's/^\(processor\|physical id\|core id\|apicid\)[[:space:]]*: /\1=/p' /proc/cpuinfo | tr ' ' '_' |
  while read -r a; read -r b; read -r c; read -r d; do echo "KILN-CPU: $a $b $c $d"; done
echo "KILN-CLOCKSOURCE: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
# What glibc was told (kiln adds GLIBC_TUNABLES on nested-PVM hosts; the kernel hands it to init).
echo "KILN-GLIBC-TUNABLES: ${GLIBC_TUNABLES:-none}"
echo "KILN-ACPI-TABLES: $(ls /sys/firmware/acpi/tables 2>/dev/null | tr '\n' ' ')"
# With more than one CPU, every other CPU takes an NMI (sysrq l: "NMI backtrace for cpu N"): the
# NMI entry is code KVM's emulator cannot always run (lsl, for its CPU number), and the kernel's own
# reboot and panic paths send NMIs to CPUs that do not stop in time.
if [ "$(nproc)" -gt 1 ]; then echo l > /proc/sysrq-trigger; fi
then=$(cmdline_value kiln.then)
echo "KILN-THEN: ${then:-exit}"
console_drain
case "$then" in
  poweroff) poweroff -f; kiln_exit 95 ;;
  reboot) reboot -f; kiln_exit 95 ;;
  panic) echo c > /proc/sysrq-trigger; kiln_exit 95 ;;
esac
kiln_exit 0
