# End-to-end smoke test; the run ends with the status given as kiln.status=N.
. /scripts/smoke-steps.sh
status=$(cmdline_value kiln.status)
[ "$failures" = 0 ] || status=90
kiln_exit "${status:-0}"
