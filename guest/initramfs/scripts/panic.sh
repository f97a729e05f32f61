# The guest kernel panics on purpose: kiln should exit with its panic status.
echo "KILN-RESULT: about-to-panic ok"
echo c > /proc/sysrq-trigger
