#!/usr/bin/env bash
# Memory over a million malformed messages (a bench, not a timed unit test).
#
# Fault injected: TOTAL malformed messages (the generator's four kinds in
# turn: bad frame, unknown schema id, truncated Avro, hostile array count)
# fed to `pseudostream run` on the embedded broker while it runs. Every
# EVERY messages consumed (the pseudostream_events_consumed_total metric) the
# run process's resident set size is read from /proc/PID/status. After a
# warm-up of WARMUP messages the RSS must not grow by more than BOUND_MB:
# poison input must not leak (Avro C 1.11.1 leaks a declared string length per
# truncated message without our validator, reliability.md §5).
#
# Usage: malformed_memory.sh BINARY [TOTAL] [EVERY] [WARMUP] [BOUND_MB]
# Use a build without sanitizers for the figures: AddressSanitizer's
# quarantine grows the RSS by design. docs/DELIVERY.md has measured figures.
set -euo pipefail
BIN=$(realpath "$1")
TOTAL=${2:-1000000}
EVERY=${3:-50000}
WARMUP=${4:-200000}
BOUND_MB=${5:-16}
SRC=${PS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
TMP=$(mktemp -d /tmp/pseudostream-mem-XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${PS_KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

# 64 input partitions: the mock keeps 5 MiB per partition, and the input must
# not be evicted before it is read.
"$BIN" broker --topic hospital.events:64 --topic ward.dashboard:6 \
    --topic commissioning.events:6 --topic research.events:6 \
    --topic pseudostream.dead-letter:12 --topic pseudostream.audit:12 \
    --bootstrap-file "$TMP/bootstrap" > /dev/null 2> "$TMP/broker.log" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$TMP/bootstrap" ] && break; sleep 0.1; done
BOOTSTRAP=$(cat "$TMP/bootstrap")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$TMP/keyring.yaml" <<KEYRING
keys:
  - id: 1
    not_before: "2020-01-01T00:00:00Z"
    secret: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
KEYRING
chmod 600 "$TMP/keyring.yaml"
: > "$TMP/optout.dat"
cat > "$TMP/config.yaml" <<CONFIG
kafka:
  bootstrap_servers: "$BOOTSTRAP"
  group_id: pseudostream-mem
  transactional_id: pseudostream-mem-0
  properties:
    session.timeout.ms: "6000"
input:
  topics: [hospital.events]
dead_letter_topic: pseudostream.dead-letter
audit_topic: pseudostream.audit
opt_out:
  file: "$TMP/optout.dat"
  form: cleared
  as_of: "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  max_age_hours: 24
schemas:
  - file: "$SRC/schemas/hl7v2/hl7v2_event.avsc"
    id: 1
  - file: "$SRC/schemas/fhir/fhir_event.avsc"
    id: 2
policy: "$SRC/policy/demo.yaml"
keyring: "$TMP/keyring.yaml"
metrics:
  listen: "127.0.0.1:$PORT"
delivery:
  mode: transactional
  batch_max_events: 10000
  transaction_interval_ms: 500
CONFIG

"$BIN" run -c "$TMP/config.yaml" --log-level warn > "$TMP/run.log" 2>&1 &
RUN=$!
PIDS+=($RUN)

# The generator keys every malformed message "malformed", so they all land on
# one partition, where the mock keeps 5 MiB: the input is fed in chunks of
# 10,000 messages, each once the filter has caught up with the previous one.
python3 - "$RUN" "$PORT" "$TOTAL" "$EVERY" "$WARMUP" "$BOUND_MB" "$BIN" "$BOOTSTRAP" \
    "$TMP/config.yaml" <<'PY'
import re, subprocess, sys, time, urllib.request
pid, port = sys.argv[1], sys.argv[2]
total, every, warmup, bound = map(int, sys.argv[3:7])
binary, bootstrap, config = sys.argv[7:10]
CHUNK = 10000
def rss_kb():
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
# Loopback only: no proxy from the environment.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def consumed():
    try:
        body = opener.open(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return 0
    return int(sum(float(m) for m in re.findall(r"^pseudostream_events_consumed_total\{[^}]*\} (\S+)", body, re.M)))
samples, next_mark, start, produced = [], every, time.time(), 0
while True:
    n = consumed()
    if produced < total and n >= produced:
        subprocess.run([binary, "generate", "-b", bootstrap, "-t", "hospital.events", "-n", "0",
                        "--malformed", str(CHUNK // 4), "-c", config],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        produced += CHUNK
    if n >= next_mark:
        samples.append((n, rss_kb()))
        print(f"{n:>9} messages  RSS {samples[-1][1] / 1024:7.1f} MiB  {time.time() - start:6.1f} s", flush=True)
        while next_mark <= n:
            next_mark += every
    if n >= total:
        break
    if time.time() - start > 1800:
        sys.exit("FAIL: not done in 30 minutes")
    time.sleep(0.05)
base = [kb for n, kb in samples if n >= warmup]
growth = (max(base) - base[0]) / 1024
print(f"after the warm-up ({warmup} messages): RSS {base[0] / 1024:.1f} -> max {max(base) / 1024:.1f} MiB, "
      f"growth {growth:.1f} MiB (bound {bound} MiB); {total / (time.time() - start):.0f} messages/s")
sys.exit(0 if growth <= bound else f"FAIL: RSS grew {growth:.1f} MiB after the warm-up")
PY
kill -TERM "$RUN"
rc=0
wait "$RUN" || rc=$?
[ "$rc" -eq 0 ] || { echo "FAIL run exited $rc"; tail -5 "$TMP/run.log"; exit 1; }
echo "PASS memory flat over $TOTAL malformed messages"
