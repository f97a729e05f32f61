# Networking through the guest's own virtio-net drivers, in one boot.
#
# User-mode networking (libslirp; the interface with MAC kiln.mac): the address from slirp's DHCP
# server (busybox udhcpc over a packet socket). The guest fetches a file the host serves on its
# loopback through the gateway 10.0.2.2 (kiln.hostport=) and serves one that the host fetches
# through a hostfwd to port 8080 (the file it got and 64 KiB of its own). With kiln.tap=HOSTADDR
# a second interface (MAC kiln.tapmac) on a tap whose host side is HOSTADDR/24: the guest takes
# .2, fetches the same file from HOSTADDR:kiln.tapport and serves its own on port 8080 there too.
# The metadata service (kiln.mmds=1) and vsock (kiln.vsock=1) between; the host compares hashes.
# Then, with kiln.stall=1: servers on ports 8082 (hostfwd), 8083 (tap) and vsock 5003 that send
# 32 MiB each to host peers that connect and never read, and, once the host says so (a connection
# to port 8081), a flood of raw frames through each interface; a connection to 8084 ends it.
echo "KILN-NET-TIME: start at $(cut -d' ' -f1 /proc/uptime)"
iface_with_mac() {
  for i in /sys/class/net/*; do [ "$(cat "$i/address")" = "$1" ] && echo "${i##*/}"; done
}
mac=$(cmdline_value kiln.mac)
dev=eth0
[ -n "$mac" ] && dev=$(iface_with_mac "$mac")
step user-interface test -n "$dev"
# Large frames: slirp takes them, and where the guest's kernel code is emulated each frame costs.
mtu=$(cmdline_value kiln.mtu)
step mtu ip link set "$dev" mtu "${mtu:-1500}"
step link-up ip link set "$dev" up
step dhcp udhcpc -i "$dev" -f -q -n -t 5 -T 2 -s /bin/udhcpc.script
echo "KILN-DHCP: $(cat /tmp/dhcp-lease)"
# The features the driver took (bit i is character i): offloads, for the host to check.
echo "KILN-FEATURES-USER: $(cat /sys/class/net/$dev/device/features)"
# The metadata service (kiln.mmds=1; kiln runs with --mmds version=V2 and --metadata): V2's token
# dance. busybox wget cannot PUT, so the token comes through nc; the GETs are wget's.
if [ -n "$(cmdline_value kiln.mmds)" ]; then
  mmds=169.254.169.254
  token=$( (printf 'PUT /latest/api/token HTTP/1.0\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n'; sleep 3) | nc $mmds 80 | sed -n '$p')
  echo "KILN-MMDS-TOKEN-LENGTH: ${#token}"
  step mmds-wants-a-token sh -c "! wget -q -O /dev/null http://$mmds/latest/meta-data/ami-id"
  echo "KILN-MMDS-AMI: $(wget -q -O - --header "X-metadata-token: $token" http://$mmds/latest/meta-data/ami-id)"
  echo "KILN-MMDS-LIST: $(wget -q -O - --header "X-metadata-token: $token" http://$mmds/latest/meta-data/ | tr '\n' ' ')"
  echo "KILN-MMDS-JSON: $(wget -q -O - --header "X-metadata-token: $token" --header 'Accept: application/json' http://$mmds/latest/meta-data/network)"
fi
port=$(cmdline_value kiln.hostport)
step wget-from-host wget -q -O /tmp/from-host.bin "http://10.0.2.2:$port/from-host.bin"
echo "KILN-NET-TIME: fetched at $(cut -d' ' -f1 /proc/uptime)"
echo "KILN-SHA-FROM-HOST: $(sha256sum /tmp/from-host.bin | cut -d' ' -f1)"
tap_host=$(cmdline_value kiln.tap)
if [ -n "$tap_host" ]; then
  tdev=$(iface_with_mac "$(cmdline_value kiln.tapmac)")
  step tap-interface test -n "$tdev"
  echo "KILN-FEATURES-TAP: $(cat /sys/class/net/$tdev/device/features)"
  step tap-address sh -c "ip link set $tdev up && ip addr add ${tap_host%.*}.2/24 dev $tdev"
  step wget-over-tap wget -q -O /tmp/over-tap.bin "http://$tap_host:$(cmdline_value kiln.tapport)/from-host.bin"
  echo "KILN-NET-TIME: fetched over the tap at $(cut -d' ' -f1 /proc/uptime)"
  echo "KILN-SHA-OVER-TAP: $(sha256sum /tmp/over-tap.bin | cut -d' ' -f1)"
  rm -f /tmp/over-tap.bin
fi
mkdir -p /tmp/www
# What the host got, then 64 KiB of the guest's own (urandom is slow where kernel code is emulated).
step make-payload sh -c 'dd if=/dev/urandom of=/tmp/seed bs=65536 count=1 2>/dev/null && cat /tmp/from-host.bin /tmp/seed > /tmp/www/to-host.bin'
echo "KILN-SHA-TO-HOST: $(sha256sum /tmp/www/to-host.bin | cut -d' ' -f1)"
step httpd httpd -p 8080 -h /tmp/www
# vsock (kiln.vsock=1; kiln runs with --vsock): the first 2 MiB of what the host sent go back to
# the host's port 5001 over a guest connection; then the guest listens on port 5002 for what the
# host sends it, and both hashes are printed for the host to compare.
if [ -n "$(cmdline_value kiln.vsock)" ]; then
  kiln-vsock listen 5002 < /dev/null > /tmp/vsock-in.bin &
  listener=$!
  step vsock-to-host sh -c 'head -c 2097152 /tmp/from-host.bin | kiln-vsock connect 2 5001 > /dev/null'
  echo "KILN-VSOCK-LISTENING"
  step vsock-from-host wait $listener
  echo "KILN-VSOCK-SHA-IN: $(sha256sum /tmp/vsock-in.bin | cut -d' ' -f1)"
fi
stall=$(cmdline_value kiln.stall)
if [ -n "$stall" ]; then
  (head -c 33554432 /dev/zero | nc -l -p 8082 > /dev/null) &
  [ -n "$tap_host" ] && (head -c 33554432 /dev/zero | nc -l -p 8083 > /dev/null) &
  [ -n "$(cmdline_value kiln.vsock)" ] && (head -c 33554432 /dev/zero | kiln-vsock listen 5003 > /dev/null) &
fi
# The host's signals: a connection to port 8081 once it has fetched everything (then the floods),
# and one to 8084 once it has measured (then the end). Both listen before the host can knock.
nc -l -p 8081 < /dev/null > /dev/null &
go=$!
[ -n "$stall" ] && { nc -l -p 8084 < /dev/null > /dev/null & done_listener=$!; }
echo "KILN-NET-READY"
wait $go
echo "KILN-NET-HOST-DONE at $(cut -d' ' -f1 /proc/uptime)"
if [ -n "$stall" ]; then
  echo "KILN-FLOOD-USER: $(kiln-vsock flood "$dev" 5)"
  [ -n "$tap_host" ] && echo "KILN-FLOOD-TAP: $(kiln-vsock flood "$tdev" 5)"
  echo "KILN-FLOOD-DONE"
  wait $done_listener
fi
grep -E "eth[0-9]" /proc/net/dev | sed 's/^/KILN-NETDEV: /'
echo "KILN-SUMMARY: $failures failed"
status=0
[ "$failures" = 0 ] || status=90
kiln_exit "$status"
