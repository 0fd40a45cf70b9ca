# Three replicas in one group over a 12-partition input, on the embedded
# broker, while input keeps arriving. Faults injected: replica B is killed
# with SIGKILL mid-stream and restarted (same transactional.id); replica C is
# stopped with SIGTERM mid-stream (it must finish or abort its batch, leave
# the group and exit 0 within its grace period).
#
# Then check_end_to_end.py --at-least-once: every input event reaches every
# destination it should at least once, nothing outside the rules leaks (no
# generated identifier in any secondary-use byte or in any replica's log), a
# patient has one pseudonym per domain whichever replica handled it, every
# dead-letter record has a reason, and every input event has an audit record.
# Replicas log at debug level, so that the identifier search covers the event
# lines too.
# Duplicates are allowed: the mock cluster drops transactional offsets and
# writes no transaction markers (DESIGN.md §10); exactly once is asserted
# against a real broker by deploy/compose/exactly-once-test.sh.
#
# Usage: source replicas.sh from a test_*.sh after setting PS_FAULT_MODE
# (transactional or at_least_once); $1 is the pseudostream binary.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../integration/lib.sh"
ps_setup "$1"
MODE=${PS_FAULT_MODE:-transactional}
CHUNKS=10
CHUNK_EVENTS=300
GRACE_MS=10000
IDLE_MS=15000

gen_chunk() {
    "$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n "$CHUNK_EVENTS" --malformed 1 \
        --patients 300 --seed 7 "$@" > /dev/null
}
# The first chunk writes the manifest; every chunk has the same 300 patients.
gen_chunk --manifest "$PS_TMP/manifest.jsonl"
python3 - "$PS_TMP" <<'PY'
import json, sys
tmp = sys.argv[1]
patients = [json.loads(l) for l in open(f"{tmp}/manifest.jsonl")]
with open(f"{tmp}/optout.dat", "w") as cleared, open(f"{tmp}/opted_out.txt", "w") as out:
    for i, p in enumerate(patients):
        (out if i % 10 == 3 else cleared).write(p["nhs_number"] + ("\n" if i % 10 == 3 else ",\r\n"))
PY

declare -A PIDS
start_replica() {
    local name=$1
    PSEUDOSTREAM_KAFKA_TRANSACTIONAL_ID="pseudostream-fault-$name" \
    PSEUDOSTREAM_DELIVERY_MODE="$MODE" \
        "$PS_BIN" run -c "$PS_TMP/config.yaml" --exit-when-idle "$IDLE_MS" --grace-ms "$GRACE_MS" \
            --log-level debug \
        >> "$PS_TMP/run-$name.log" 2>> "$PS_TMP/run-$name.err" &
    PIDS[$name]=$!
}
fail() {
    echo "FAIL $*"
    for f in "$PS_TMP"/run-*.err; do echo "== $f"; tail -5 "$f"; done
    exit 1
}

start_replica a
start_replica b
start_replica c
echo "mode $MODE: replicas a=${PIDS[a]} b=${PIDS[b]} c=${PIDS[c]}"

# Input keeps arriving for about 20 s.
(
    for _ in $(seq 2 "$CHUNKS"); do
        sleep 1.5
        gen_chunk
    done
) &
PRODUCER=$!

sleep 8
echo "fault: SIGKILL replica b (pid ${PIDS[b]})"
kill -KILL "${PIDS[b]}"
wait "${PIDS[b]}" 2>/dev/null || true
sleep 5
echo "fault: restart replica b"
start_replica b
sleep 4
echo "fault: SIGTERM replica c (pid ${PIDS[c]})"
t0=$(date +%s%N)
kill -TERM "${PIDS[c]}"
rc=0
wait "${PIDS[c]}" || rc=$?
elapsed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "replica c exited $rc after ${elapsed_ms} ms (grace ${GRACE_MS} ms)"
[ "$rc" -eq 0 ] || fail "replica c: exit $rc after SIGTERM"
# The grace covers the open batch; leaving the group and closing the clients
# may add a few seconds.
[ "$elapsed_ms" -le $((GRACE_MS + 5000)) ] || fail "replica c took ${elapsed_ms} ms to stop"
grep -q '"code":"stopping"' "$PS_TMP/run-c.log" || fail "replica c did not log its stop"

wait "$PRODUCER"
# a and the restarted b stop once idle; a bound keeps a hang from passing.
deadline=$(( $(date +%s) + 180 ))
for name in a b; do
    while kill -0 "${PIDS[$name]}" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || { kill -TERM "${PIDS[$name]}"; fail "replica $name hangs"; }
        sleep 1
    done
    rc=0
    wait "${PIDS[$name]}" || rc=$?
    [ "$rc" -eq 0 ] || fail "replica $name exited $rc"
done

for topic in hospital.events ward.dashboard commissioning.events research.events \
             pseudostream.dead-letter pseudostream.audit; do
    "$PS_BIN" consume -b "$PS_BOOTSTRAP" --raw "$topic" > "$PS_TMP/$topic.raw.jsonl"
    "$PS_BIN" consume -b "$PS_BOOTSTRAP" -c "$PS_TMP/config.yaml" "$topic" \
        > "$PS_TMP/$topic.jsonl"
done
cat "$PS_TMP"/run-*.log "$PS_TMP"/run-*.err > "$PS_TMP/run.log"
echo "records: $(wc -l < "$PS_TMP/ward.dashboard.jsonl") ward, $(wc -l < "$PS_TMP/pseudostream.audit.jsonl") audit for $(wc -l < "$PS_TMP/hospital.events.jsonl") inputs"
python3 "$here/../integration/check_end_to_end.py" --at-least-once "$PS_TMP" \
    $((CHUNKS * CHUNK_EVENTS)) $((CHUNKS * 4))
