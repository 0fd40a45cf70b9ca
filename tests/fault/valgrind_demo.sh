#!/usr/bin/env bash
# valgrind finds no definite leak (and no invalid access) in a run of the
# demo: embedded broker, generator, filter with the demo policy, consumers,
# all in one process. Possible leaks are not errors: librdkafka and libsodium
# keep some process-wide state until exit by design.
# Usage: tests/fault/valgrind_demo.sh BINARY [EVENTS]
# The binary must be built without sanitizers (valgrind and ASan exclude each
# other); CI uses the build of scripts/test.sh.
set -euo pipefail
BIN=$1
EVENTS=${2:-500}
LOG=$(mktemp /tmp/pseudostream-valgrind-XXXXXX.log)
rc=0
valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
    --log-file="$LOG" "$BIN" demo --events "$EVENTS" > /dev/null || rc=$?
grep -E "definitely lost|ERROR SUMMARY" "$LOG" || true
if [ "$rc" -ne 0 ]; then
    echo "FAIL valgrind reported errors (exit $rc); log: $LOG"
    exit 1
fi
rm -f "$LOG"
echo "PASS no definite leak, no invalid access in the demo ($EVENTS events)"
