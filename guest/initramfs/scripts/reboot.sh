# The guest reboots (through ACPI's reset register, or the i8042 with reboot=k): kiln should exit with its reboot status.
echo "KILN-RESULT: about-to-reboot ok"
reboot -f
