# The default guest: show the machine, then a shell on the console. Leave with `exit` (or Ctrl-A x).
echo
echo "kiln test guest: $(uname -sr), $(nproc) CPU(s), $(sed -n 's/MemTotal: *//p' /proc/meminfo) RAM, up $(cut -d' ' -f1 /proc/uptime) s"
echo "Type commands; 'exit' ends the VM."
setsid cttyhack sh
kiln_exit 0
