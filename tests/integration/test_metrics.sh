#!/usr/bin/env bash
# Metrics and health on the operations port while the scenario runs: the
# counters add up (per destination: consumed = produced + withheld + dead
# lettered), /readyz turns ready once partitions are assigned, /healthz is
# live while the loop ticks, and no metric label carries an identifier.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
ps_setup "$1"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 2000 --malformed 3 --patients 200 \
    --seed 9 --manifest "$PS_TMP/manifest.jsonl" > /dev/null 2>&1
python3 -c "
import json
with open('$PS_TMP/optout.dat', 'w') as f:
    for i, l in enumerate(open('$PS_TMP/manifest.jsonl')):
        if i % 7: f.write(json.loads(l)['nhs_number'] + ',\n')
"
printf 'metrics:\n  listen: "127.0.0.1:%s"\n' "$port" >> "$PS_TMP/config.yaml"
"$PS_BIN" run -c "$PS_TMP/config.yaml" > "$PS_TMP/run.log" &
run_pid=$!
trap 'kill -TERM $run_pid 2>/dev/null; wait $run_pid 2>/dev/null; ps_cleanup' EXIT
rc=0
python3 "$here/check_metrics.py" "$port" 2012 "$PS_TMP/manifest.jsonl" || rc=$?
kill -TERM "$run_pid"
wait "$run_pid" || rc=1
trap ps_cleanup EXIT
exit $rc
