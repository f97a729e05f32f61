#!/bin/busybox sh
# /init of scripts/nested-kvm.sh's VM: loads kvm_amd and the 9p root, makes the host's / the root
# of a chroot with its own /proc, /sys, /dev and a tmpfs /tmp, runs the job's command there and
# leaves its status in the job's folder (kiln.nest=DIR on the kernel command line).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# Loopback up: tests reach the guests' forwarded ports (slirp's hostfwd) on 127.0.0.1.
ip link set lo up || echo "nested-kvm: the loopback interface could not be brought up"
for m in /mods/*.ko; do insmod "$m" || echo "nested-kvm: insmod $m failed"; done
job=$(sed -n 's/.*kiln\.nest=\([^ ]*\).*/\1/p' /proc/cmdline)
finish() { poweroff -f; sleep 10; }
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none host /host; then
  echo "nested-kvm: the host's / could not be mounted"; finish
fi
# Unix sockets cannot be bound on 9p: /tmp becomes a tmpfs, and the kept folders (the job's first)
# are bound back into it.
dirs=$(cat "/host$job/keep")
i=0
for d in $dirs; do
  i=$((i + 1)); mkdir -p "/keep/$i"; mount --bind "/host$d" "/keep/$i"
done
mount -t tmpfs -o mode=1777 tmp /host/tmp
i=0
for d in $dirs; do
  i=$((i + 1)); mkdir -p "/host$d"; mount --move "/keep/$i" "/host$d"
done
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o ptmxmode=0666 devpts /host/dev/pts
ln -sf pts/ptmx /host/dev/ptmx 2>/dev/null
mount -t tmpfs shm /host/dev/shm
if ! [ -c /dev/kvm ]; then
  echo "nested-kvm: no /dev/kvm in the VM (does this QEMU's CPU model offer SVM?)"
  echo 125 > "/host$job/rc"; finish
fi
echo "nested-kvm: /dev/kvm (kvm_amd under TCG), $(nproc) CPUs; running the job"
setsid chroot /host /bin/bash -c "cd / && . $job/cmd" </dev/null
echo $? > "/host$job/rc"
sync
finish
