# Real work through the guest kernel, each step one KILN-RESULT line (sourced by smoke scripts).
step uname sh -c 'uname -r | grep -q "^6\."'
step proc test -r /proc/self/status
step fork-exec sh -c 'test "$(sh -c "echo hello")" = hello'
step pipes sh -c 'test "$(seq 1 100 | grep -c 7)" = 19'
step tmpfs-files sh -c 'echo data > /tmp/f && cp /tmp/f /tmp/g && test "$(cat /tmp/g)" = data && rm /tmp/f /tmp/g'
step signals sh -c 'sleep 30 & pid=$!; kill $pid; wait $pid; test $? -gt 128'
step rtc-date sh -c 'test "$(date +%Y)" -ge 2024'
step devport test -c /dev/port
echo "KILN-SUMMARY: $failures failed"
