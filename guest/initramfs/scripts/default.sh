# The default guest: show the machine, then a shell on the console. Leave with `exit` (or Ctrl-A x).
echo
echo "kiln test guest: $(uname -sr), $(nproc) CPU(s), $(sed -n 's/MemTotal: *//p' /proc/meminfo) RAM, up $(cut -d' ' -f1 /proc/uptime) s"
# User-mode networking (scripts/run.sh gives it): the address slirp's DHCP would hand out, set
# statically (the test kernel has no packet sockets for a DHCP client), and a web server on port 80
# that the host reaches through its forward.
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 mtu 65520 && ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 &&
    ip route add default via 10.0.2.2 && { mkdir -p /etc; echo "nameserver 10.0.2.3" > /etc/resolv.conf; }
  mkdir -p /tmp/www && echo "hello from the kiln guest" > /tmp/www/index.html && httpd -p 80 -h /tmp/www
  port=$(cmdline_value kiln.http_port)
  echo "network: eth0 10.0.2.15 (user-mode networking; the host is 10.0.2.2)${port:+; this guest's http://127.0.0.1:$port/ on the host}"
fi
echo "Type commands; 'exit' ends the VM."
setsid cttyhack sh
kiln_exit 0
