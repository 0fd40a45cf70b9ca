#!/usr/bin/env bash
# A subject access request end to end: after a scenario run, `audit trace`
# for one generated patient prints exactly one audit record per input event
# of theirs (those that carry their valid NHS number), each naming every
# destination's decision, identical to that event's record on the audit
# topic, and nothing of any other patient: none of their audit pseudonyms
# appears in its output.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
ps_setup "$1"

"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 900 --malformed 1 --patients 40 \
    --seed 23 --manifest "$PS_TMP/manifest.jsonl"
# Every patient cleared but every fourth, so the trace shows withholdings too.
python3 - "$PS_TMP" <<'PY'
import json, sys
tmp = sys.argv[1]
with open(f"{tmp}/optout.dat", "w") as cleared:
    for i, line in enumerate(open(f"{tmp}/manifest.jsonl")):
        if i % 4 != 1:
            cleared.write(json.loads(line)["nhs_number"] + ",\r\n")
PY
"$PS_BIN" run -c "$PS_TMP/config.yaml" --exit-when-idle 3000 > "$PS_TMP/run.log"
for topic in hospital.events pseudostream.audit; do
    "$PS_BIN" consume -b "$PS_BOOTSTRAP" -c "$PS_TMP/config.yaml" "$topic" \
        > "$PS_TMP/$topic.jsonl"
done

# Two patients: one cleared (manifest line 0) and one opted out (line 1).
for i in 0 1; do
    nhs=$(sed -n "$((i + 1))p" "$PS_TMP/manifest.jsonl" |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["nhs_number"])')
    # The number goes in on standard input, as the help advises.
    printf '%s\n' "$nhs" | "$PS_BIN" audit trace --nhs-number - -c "$PS_TMP/config.yaml" \
        > "$PS_TMP/trace$i.jsonl" 2> "$PS_TMP/trace$i.err"
    python3 - "$PS_TMP" "$nhs" "$PS_TMP/trace$i.jsonl" <<'PY'
import json, re, sys
tmp, nhs, trace_path = sys.argv[1], sys.argv[2], sys.argv[3]
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)))


def lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def subject(value):
    raw = value["pid"]["nhs_number"] if "pid" in value else value["patient"]["nhsNumber"]
    return re.sub(r"[ -]", "", raw) if raw else None


inputs = {f"hospital.events/{m['partition']}/{m['offset']}": m
          for m in lines(f"{tmp}/hospital.events.jsonl")}
audit, plans = {}, {}
for a in lines(f"{tmp}/pseudostream.audit.jsonl"):
    v = a["value"]
    if a["schema"].endswith(".AuditPlan"):
        plans[v["plan_id"]] = v
        continue
    audit[f"{v['source_topic']}/{v['source_partition']}/{v['source_offset']}"] = v
mine = {s for s, m in inputs.items() if "value" in m and subject(m["value"]) == nhs}
trace_text = open(trace_path).read()
trace_all = lines(trace_path)
trace = [t for t in trace_all if "plan_id" not in t]
trace_plans = [t for t in trace_all if "plan_id" in t]
label = f"patient {nhs[:3]}*******"
check(f"{label}: the scenario has several events of theirs", len(mine) >= 5, len(mine))
check(f"{label}: trace prints exactly one record per input event of theirs",
      len(trace) == len(mine), f"{len(trace)} records for {len(mine)} events")
traced = {f"{t['source_topic']}/{t['source_partition']}/{t['source_offset']}" for t in trace}
check(f"{label}: the records are those of their events", traced == mine)
check(f"{label}: each record equals that event's record on the audit topic",
      all(t == audit[f"{t['source_topic']}/{t['source_partition']}/{t['source_offset']}"]
          for t in trace))
names = {"ward-dashboard", "commissioning", "research"}
check(f"{label}: each record names every destination's decision",
      all({d["name"] for d in t["destinations"]} == names and
          all(d["decision"] in ("DISCLOSED", "WITHHELD") for d in t["destinations"])
          for t in trace))
mine_subjects = {audit[s]["subject"] for s in mine}
check(f"{label}: one audit pseudonym, and it is not the NHS number",
      len(mine_subjects) == 1 and None not in mine_subjects and nhs not in trace_text,
      mine_subjects)
others = {v["subject"] for s, v in audit.items() if s not in mine and v.get("subject")}
leaked = sorted(o for o in others if o in trace_text)
check(f"{label}: no other patient's audit pseudonym in the trace ({len(others)} others)",
      others and not leaked, leaked[:3])
named = {d["plan"] for t in trace for d in t["destinations"] if d["decision"] == "DISCLOSED"}
check(f"{label}: every disclosure names a plan, and the trace ends with each named plan "
      "once, as on the audit topic (its field lists)",
      all((d["decision"] == "DISCLOSED") == bool(d.get("plan"))
          for t in trace for d in t["destinations"]) and
      trace_all[len(trace):] == trace_plans and
      sorted(p["plan_id"] for p in trace_plans) == sorted(named) and
      all(p == plans[p["plan_id"]] and p["kept"] for p in trace_plans),
      f"{len(trace_plans)} plans for {len(named)} named")
decisions = {(d["name"], d["decision"], d.get("reason")) for t in trace for d in t["destinations"]}
print(f"     decisions seen: {sorted(decisions, key=str)}")
failed = results.count(False)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
done
# The cleared patient's secondary-use disclosures and the opted-out patient's
# opt-out withholdings are both on record.
grep -q '"name":"commissioning","topic":"commissioning.events","decision":"DISCLOSED"' \
    "$PS_TMP/trace0.jsonl"
grep -q '"name":"commissioning","topic":"commissioning.events","decision":"WITHHELD","reason":"opt_out"' \
    "$PS_TMP/trace1.jsonl"
echo "PASS traces show disclosures (cleared patient) and opt-out withholdings (opted out)"
