# Networking through the guest's own virtio-net driver on kiln's user-mode networking (libslirp).
# The address is set statically (10.0.2.15, what slirp's DHCP hands out: the test kernel has no
# packet sockets for a DHCP client). The guest fetches a file the host serves on its loopback,
# through the gateway 10.0.2.2 (kiln.hostport=), and serves one that the host fetches
# through a hostfwd to port 8080 (the file it got and 64 KiB of its own); the host compares both hashes, then connects to port 8081 (a
# second hostfwd) to say it is done.
echo "KILN-NET-TIME: start at $(cut -d' ' -f1 /proc/uptime)"
step eth0-exists test -e /sys/class/net/eth0
mac=$(cmdline_value kiln.mac)
[ -n "$mac" ] && step eth0-mac sh -c "test \"\$(cat /sys/class/net/eth0/address)\" = $mac"
# Large frames: slirp takes them, and where the guest's kernel code is emulated each frame costs.
mtu=$(cmdline_value kiln.mtu)
step mtu ip link set eth0 mtu "${mtu:-1500}"
step link-up ip link set eth0 up
step address ip addr add 10.0.2.15/24 dev eth0
step route ip route add default via 10.0.2.2
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
echo "KILN-NET-READY"
nc -l -p 8081 > /dev/null
echo "KILN-NET-HOST-DONE at $(cut -d' ' -f1 /proc/uptime)"
grep -E "eth0" /proc/net/dev | sed 's/^/KILN-NETDEV: /'
echo "KILN-SUMMARY: $failures failed"
status=0
[ "$failures" = 0 ] || status=90
kiln_exit "$status"
