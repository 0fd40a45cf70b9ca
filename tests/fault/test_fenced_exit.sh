#!/usr/bin/env bash
# Fencing seen from the command line. Fault injected: the transaction
# coordinator answers `run`'s first EndTxn with PRODUCER_FENCED (what a real
# broker answers once a second instance with the same transactional.id has
# called init_transactions; the 2.0.2 mock cannot fence by itself, so the
# answer is injected through the broker's --fault-file). The old instance
# must exit 3 (fatal Kafka error) at once, without committing, with one
# error line that names the fence; a restarted instance then processes the
# input in full.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FAULTS=$(mktemp -u /tmp/pseudostream-faults-XXXXXX)
export PS_BROKER_ARGS="--fault-file $FAULTS"
source "$here/../integration/lib.sh"
ps_setup "$1"

"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 500 --patients 50 --seed 3 > /dev/null
echo "fail 26 90 1" > "$FAULTS"
for _ in $(seq 1 50); do [ -e "$FAULTS" ] || break; sleep 0.1; done
[ ! -e "$FAULTS" ] || { echo "FAIL the broker did not take the fault"; exit 1; }

rc=0
"$PS_BIN" run -c "$PS_TMP/config.yaml" --exit-when-idle 3000 > "$PS_TMP/run.log" \
    2> "$PS_TMP/run.err" || rc=$?
cat "$PS_TMP/run.err"
[ "$rc" -eq 3 ] || { echo "FAIL exit $rc, expected 3"; exit 1; }
grep -q "PRODUCER_FENCED\|fenced" "$PS_TMP/run.err" || { echo "FAIL error does not name the fence"; exit 1; }
[ "$(wc -l < "$PS_TMP/run.err")" -eq 1 ] || { echo "FAIL more than one error line"; exit 1; }
echo "PASS fenced instance exited 3 with one line naming the fence"

# The orchestrator restarts it: everything is processed.
"$PS_BIN" run -c "$PS_TMP/config.yaml" --exit-when-idle 3000 > "$PS_TMP/run2.log"
count=$("$PS_BIN" consume -b "$PS_BOOTSTRAP" --raw ward.dashboard | wc -l)
[ "$count" -ge 500 ] || { echo "FAIL ward has $count records after the restart"; exit 1; }
echo "PASS restarted instance delivered every event ($count ward records, duplicates allowed)"
