#!/usr/bin/env bash
# End to end on the embedded broker: several thousand generated events with
# malformed ones among them, through the filter with the demo policy; then
# check_end_to_end.py searches every output byte for every generated
# identifier and accounts for every event.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
ps_setup "$1"

"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 4000 --malformed 5 \
    --patients 300 --seed 7 --manifest "$PS_TMP/manifest.jsonl"
"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 500 --patients 300 --seed 7 \
    --format single_object
"$PS_BIN" run -c "$PS_TMP/config.yaml" --exit-when-idle 3000 > "$PS_TMP/run.log"

for topic in hospital.events ward.dashboard commissioning.events research.events \
             pseudostream.dead-letter; do
    "$PS_BIN" consume -b "$PS_BOOTSTRAP" --raw "$topic" > "$PS_TMP/$topic.raw.jsonl"
    "$PS_BIN" consume -b "$PS_BOOTSTRAP" -c "$PS_TMP/config.yaml" "$topic" \
        > "$PS_TMP/$topic.jsonl"
done
python3 "$here/check_end_to_end.py" "$PS_TMP" 4500 20
