#!/usr/bin/env bash
# End to end on the embedded broker: several thousand generated events with
# malformed ones among them, through the filter with the demo policy and an
# opt-out list that leaves one patient in ten not cleared; then
# check_end_to_end.py searches every output byte for every generated
# identifier and accounts for every event on every topic, the audit included.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
ps_setup "$1"

"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 4000 --malformed 5 \
    --patients 300 --seed 7 --manifest "$PS_TMP/manifest.jsonl"
"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 500 --patients 300 --seed 7 \
    --format single_object
# The MESH reply form: every number cleared for use, one per line with a comma;
# every tenth patient is left out (has opted out).
python3 - "$PS_TMP" <<'PY'
import json, sys
tmp = sys.argv[1]
patients = [json.loads(l) for l in open(f"{tmp}/manifest.jsonl")]
with open(f"{tmp}/optout.dat", "w") as cleared, open(f"{tmp}/opted_out.txt", "w") as out:
    for i, p in enumerate(patients):
        (out if i % 10 == 3 else cleared).write(p["nhs_number"] + ("\n" if i % 10 == 3 else ",\r\n"))
PY
# Debug level, so every log line the service can write is searched for identifiers.
"$PS_BIN" run -c "$PS_TMP/config.yaml" --exit-when-idle 3000 --log-level debug > "$PS_TMP/run.log"

for topic in hospital.events ward.dashboard commissioning.events research.events \
             pseudostream.dead-letter pseudostream.audit; do
    "$PS_BIN" consume -b "$PS_BOOTSTRAP" --raw "$topic" > "$PS_TMP/$topic.raw.jsonl"
    "$PS_BIN" consume -b "$PS_BOOTSTRAP" -c "$PS_TMP/config.yaml" "$topic" \
        > "$PS_TMP/$topic.jsonl"
done
python3 "$here/check_end_to_end.py" "$PS_TMP" 4500 20
