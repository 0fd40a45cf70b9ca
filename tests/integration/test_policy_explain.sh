#!/usr/bin/env bash
# `policy explain` is the DPIA's data-flow table: this test holds it to what
# the stream really carries. It explains the demo policy, runs the filter on
# generated events (every patient cleared under the opt-out, so secondary use
# receives records), consumes every destination topic and the input, and
# check_policy_explain.py compares them field by field: a field the table
# says is dropped never appears, "clear" equals the input event's value,
# "pseudonym", "generalised to ...", "age band", "date-shifted" and "district"
# have the shape and the relation to the input that the table promises, and
# no field appears that the table does not name.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
ps_setup "$1"

"$PS_BIN" policy explain "$PS_SRC/policy/demo.yaml" -c "$PS_TMP/config.yaml" \
    > "$PS_TMP/explain.md"
"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 1500 --patients 150 --seed 11 \
    --manifest "$PS_TMP/manifest.jsonl"
# Every patient cleared for secondary use (the MESH reply form).
python3 - "$PS_TMP" <<'PY'
import json, sys
tmp = sys.argv[1]
with open(f"{tmp}/optout.dat", "w") as cleared:
    for line in open(f"{tmp}/manifest.jsonl"):
        cleared.write(json.loads(line)["nhs_number"] + ",\r\n")
PY
"$PS_BIN" run -c "$PS_TMP/config.yaml" --exit-when-idle 3000 > "$PS_TMP/run.log"
for topic in hospital.events ward.dashboard commissioning.events research.events; do
    "$PS_BIN" consume -b "$PS_BOOTSTRAP" -c "$PS_TMP/config.yaml" "$topic" \
        > "$PS_TMP/$topic.jsonl"
done
python3 "$here/check_policy_explain.py" "$PS_TMP" "$PS_TMP/explain.md"
