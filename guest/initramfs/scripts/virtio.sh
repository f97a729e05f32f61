# Virtio through the guest's own drivers, with the root drive as / (init mounted it): files written,
# synced and read back on the root disk, a read-only second disk, the disk's serial (GET_ID),
# discard (fstrim) and /dev/hwrng. The host checks the image after the run (e2fsck, the file's hash).
step root-on-vda sh -c 'grep -q "^/dev/vda / ext4 rw" /proc/mounts'
step vda-serial sh -c "test \"\$(cat /sys/block/vda/serial)\" = '$(cmdline_value kiln.serial)'"
step write-fsync dd if=/dev/urandom of=/written.bin bs=4096 count=256 conv=fsync
step sync sync
sha=$(sha256sum /written.bin | cut -d' ' -f1)
echo "KILN-SHA: $sha"
# Read again from the disk, not the page cache.
step read-back-uncached sh -c "echo 3 > /proc/sys/vm/drop_caches && test \"\$(sha256sum /written.bin | cut -d' ' -f1)\" = $sha"
step fstrim fstrim /
step ro-disk-flag sh -c 'test "$(blockdev --getro /dev/vdb)" = 1'
mkdir -p /mnt
step ro-disk-mount mount -t ext4 -o ro /dev/vdb /mnt
step ro-disk-read sh -c 'test "$(cat /mnt/hello.txt)" = "kiln read-only disk"'
step ro-disk-refuses-writes sh -c '! dd if=/dev/zero of=/dev/vdb bs=512 count=1 2>/dev/null'
step ro-fs-refuses-writes sh -c '! touch /mnt/new 2>/dev/null'
umount /mnt
step hwrng-is-virtio sh -c 'grep -q virtio_rng /sys/class/misc/hw_random/rng_current'
step hwrng-bytes sh -c 'test "$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | wc -c)" = 32'
# How the devices interrupt: MSI-X on virtio-pci, the edge-triggered line on virtio-mmio.
grep virtio /proc/interrupts | sed 's/^/KILN-IRQ: /'
case "$(cmdline_value kiln.transport)" in
  pci) step interrupts-msix sh -c 'grep -q "PCI-MSI.*virtio0-req" /proc/interrupts' ;;
  mmio) step interrupts-line sh -c 'grep -q "IO-APIC.*edge.*virtio0" /proc/interrupts' ;;
esac
echo "KILN-SUMMARY: $failures failed"
status=0
[ "$failures" = 0 ] || status=90
kiln_exit "$status"
