# The smoke steps, then a shell on the console for a test that types into it; the run ends with
# kiln.status=N once that shell exits.
. /scripts/smoke-steps.sh
echo "KILN-READY"
sh
status=$(cmdline_value kiln.status)
[ "$failures" = 0 ] || status=90
kiln_exit "${status:-0}"
