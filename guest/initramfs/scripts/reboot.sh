# The guest reboots (reboot=k: through the i8042's reset line): kiln should exit with its reboot status.
echo "KILN-RESULT: about-to-reboot ok"
reboot -f
