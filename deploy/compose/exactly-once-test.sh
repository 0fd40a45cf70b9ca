#!/usr/bin/env bash
# Exactly once against a real Kafka (docker-compose.yml), the assertion the
# embedded broker cannot make (it writes no transaction markers and drops
# transactional offsets; docs/DELIVERY.md). Needs Docker with the compose
# plugin; it does not run in CI.
#
# Scenario (the fault suite's replica test, tests/fault/replicas.sh, on a real
# broker): three filter replicas (filter-0..2, transactional, stable
# transactional.id and group.instance.id each) consume a 12-partition input
# while input keeps arriving; filter-1 is killed with SIGKILL mid-stream and
# restarted, filter-2 is stopped with SIGTERM. Once the group has no lag, a
# read_committed reader (pseudostream consume; librdkafka defaults to
# read_committed, and the tool guards it) reads every topic, and the check
# asserts, per destination:
#   - exactly once: no input offset (source= of the pseudostream.lineage header) appears twice
#     on the ward (direct care) topic or the dead-letter topic, and the audit
#     topic holds exactly one record per input event;
#   - no loss: every valid input event is on the ward topic, every malformed
#     one on the dead-letter topic.
# A Java consumer reads read_uncommitted by default and would see the aborted
# copies too: readers must set isolation.level=read_committed.
#
# Usage: deploy/compose/exactly-once-test.sh [EVENTS_PER_CHUNK] [CHUNKS]
#   (from the repository root; the image is built on first use). Leaves the
#   stack running for inspection; `docker compose -p pseudostream-eo down -v`
#   removes it.
set -euo pipefail
cd "$(dirname "$0")/../.."
CHUNK=${1:-2000}
CHUNKS=${2:-10}
PROJECT=pseudostream-eo
TMP=$(mktemp -d /tmp/pseudostream-eo-XXXXXX)
dc() { docker compose -p "$PROJECT" -f docker-compose.yml -f "$TMP/override.yml" "$@"; }

# A throw-away keyring, an empty opted-out list (everyone cleared), and a
# configuration with an audit topic; mounted over the compose defaults.
python3 - "$TMP" <<'PY'
import base64, os, sys
tmp = sys.argv[1]
with open(f"{tmp}/keyring.yaml", "w") as f:
    f.write("keys:\n  - id: 1\n    not_before: \"2020-01-01T00:00:00Z\"\n"
            f"    secret: \"{base64.b64encode(os.urandom(32)).decode()}\"\n")
os.chmod(f"{tmp}/keyring.yaml", 0o600)
open(f"{tmp}/optout.dat", "w").close()
PY
sed -e 's/^dead_letter_topic:.*/&\naudit_topic: pseudostream.audit/' \
    -e "s|^delivery:|opt_out:\n  file: /etc/pseudostream/optout.dat\n  form: opted_out\n  as_of: \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"\n  max_age_hours: 24\ndelivery:|" \
    deploy/compose/config.yaml > "$TMP/config.yaml"
# The containers run as uid 10001 (deploy/Dockerfile); the keyring stays
# 0600 and is handed to that uid, as a Kubernetes secret would be.
chmod 644 "$TMP/config.yaml" "$TMP/optout.dat"
chmod 755 "$TMP"
if [ "$(id -u)" -eq 0 ]; then
    chown 10001 "$TMP/keyring.yaml"
else
    sudo chown 10001 "$TMP/keyring.yaml"
fi
cat > "$TMP/override.yml" <<YAML
x-config: &config
  - $TMP/config.yaml:/etc/pseudostream/config.yaml:ro
  - $TMP/keyring.yaml:/etc/pseudostream/keyring.yaml:ro
  - $TMP/optout.dat:/etc/pseudostream/optout.dat:ro
  - ./policy:/usr/share/pseudostream/policy:ro
  - ./schemas:/usr/share/pseudostream/schemas:ro
services:
  consume: {volumes: *config}
  filter-0: {volumes: *config, command: [run, -c, /etc/pseudostream/config.yaml, -X, transactional.id=pseudostream-0, -X, group.instance.id=pseudostream-0, -X, session.timeout.ms=10000, --grace-ms, "20000"]}
  filter-1: {volumes: *config, command: [run, -c, /etc/pseudostream/config.yaml, -X, transactional.id=pseudostream-1, -X, group.instance.id=pseudostream-1, -X, session.timeout.ms=10000, --grace-ms, "20000"]}
  filter-2: {volumes: *config, command: [run, -c, /etc/pseudostream/config.yaml, -X, transactional.id=pseudostream-2, -X, group.instance.id=pseudostream-2, -X, session.timeout.ms=10000, --grace-ms, "20000"]}
YAML

echo "== Kafka and topics"
dc build generator
dc up -d --wait kafka
topics() { dc exec -T kafka /opt/kafka/bin/kafka-topics.sh --bootstrap-server localhost:9092 "$@"; }
for t in hospital.events:12 ward.dashboard:6 commissioning.events:6 research.events:6 \
         pseudostream.dead-letter:6 pseudostream.audit:6 pseudostream.escrow:3; do
    topics --create --if-not-exists --topic "${t%%:*}" --partitions "${t##*:}" > /dev/null
done

gen() { dc run --rm -T generator generate -b kafka:9092 -t hospital.events -n "$CHUNK" \
            --malformed 1 --patients 500 --seed "$1" > /dev/null; }
gen 1
echo "== three replicas"
dc up -d filter-0 filter-1 filter-2
( for i in $(seq 2 "$CHUNKS"); do sleep 3; gen "$i"; done ) &
producer=$!
sleep 15
echo "fault: SIGKILL filter-1"
dc kill -s SIGKILL filter-1
sleep 10
echo "fault: restart filter-1"
dc up -d filter-1
sleep 10
echo "fault: SIGTERM filter-2 (grace 20 s)"
dc stop -t 30 filter-2
wait "$producer"

echo "== waiting for the group to catch up"
for _ in $(seq 1 120); do
    lag=$(dc exec -T kafka /opt/kafka/bin/kafka-consumer-groups.sh --bootstrap-server localhost:9092 \
          --describe --group pseudostream 2>/dev/null | awk '$6 ~ /^[0-9]+$/ {s += $6} END {print s + 0}')
    [ "$lag" -eq 0 ] && break
    sleep 5
done
[ "$lag" -eq 0 ] || { echo "FAIL the group still lags by $lag"; exit 1; }

echo "== read_committed reads"
for t in hospital.events ward.dashboard pseudostream.dead-letter pseudostream.audit; do
    dc run --rm -T consume "$t" > "$TMP/$t.jsonl"
done
python3 - "$TMP" $((CHUNK * CHUNKS)) $((CHUNKS * 4)) <<'PY'
import collections, json, sys
tmp, valid, malformed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def lines(t):
    return [json.loads(l) for l in open(f"{tmp}/{t}.jsonl") if l.strip()]
inputs = lines("hospital.events")
src = lambda m: m.get("source")  # consume parses it from pseudostream.lineage
good = {f"hospital.events/{m['partition']}/{m['offset']}" for m in inputs if "value" in m}
bad = {f"hospital.events/{m['partition']}/{m['offset']}" for m in inputs if "value" not in m}
failed = 0
def check(name, ok, detail=""):
    global failed
    failed += not ok
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + detail))
check("input as generated", len(good) == valid and len(bad) == malformed, f"{len(good)}/{len(bad)}")
for topic, expect in (("ward.dashboard", good), ("pseudostream.dead-letter", bad)):
    counts = collections.Counter(src(m) for m in lines(topic))
    dups = {s: n for s, n in counts.items() if n > 1}
    check(f"{topic}: no duplicate (read_committed)", not dups, f"{len(dups)} sources, e.g. {list(dups)[:3]}")
    check(f"{topic}: nothing lost", set(counts) == expect, f"{len(expect - set(counts))} missing")
audit = collections.Counter(f"{a['value']['source_topic']}/{a['value']['source_partition']}/"
                            f"{a['value']['source_offset']}" for a in lines("pseudostream.audit"))
check("audit: exactly one record per input event",
      set(audit) == good | bad and max(audit.values()) == 1, f"{len(audit)} sources")
print(f"{'FAILED' if failed else 'PASSED'}: exactly once for read_committed readers")
sys.exit(1 if failed else 0)
PY
