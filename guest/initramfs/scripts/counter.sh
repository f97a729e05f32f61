# Prints a counter every 100 ms, for pause/resume tests; stops after kiln.count=N lines.
n=$(cmdline_value kiln.count); n=${n:-100}
i=0
while [ $i -lt $n ]; do echo "KILN-COUNT: $i"; i=$((i + 1)); usleep 100000; done
kiln_exit 0
