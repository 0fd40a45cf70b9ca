#!/usr/bin/env bash
# Fail closed on a stale national data opt-out state (DESIGN.md section 7): the
# opt-out file is dated two days ago and may be at most 24 hours old. Every
# patient is on it as cleared, so the state's age is the only reason to
# withhold. The destinations the opt-out applies to (commissioning, research)
# receive nothing; the ward (direct care) receives every valid event; every
# audit record says why for both; and the run logs an error line
# "optout_stale" (the alarm an operator sees).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
ps_setup "$1"

"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 600 --malformed 2 --patients 80 \
    --seed 5 --manifest "$PS_TMP/manifest.jsonl"
python3 - "$PS_TMP" <<'PY'
import json, sys
tmp = sys.argv[1]
with open(f"{tmp}/optout.dat", "w") as cleared:
    for line in open(f"{tmp}/manifest.jsonl"):
        cleared.write(json.loads(line)["nhs_number"] + ",\r\n")
PY
PS_OPTOUT_AS_OF=$(date -u -d '2 days ago' +%Y-%m-%dT%H:%M:%SZ)
ps_write_config "$PS_SRC/policy/demo.yaml"
grep -q "max_age_hours: 24" "$PS_TMP/config.yaml"
"$PS_BIN" run -c "$PS_TMP/config.yaml" --exit-when-idle 3000 > "$PS_TMP/run.log"
for topic in hospital.events ward.dashboard commissioning.events research.events \
             pseudostream.audit; do
    "$PS_BIN" consume -b "$PS_BOOTSTRAP" -c "$PS_TMP/config.yaml" "$topic" \
        > "$PS_TMP/$topic.jsonl"
done

python3 - "$PS_TMP" "$PS_OPTOUT_AS_OF" <<'PY'
import json, sys
tmp, as_of = sys.argv[1], sys.argv[2]
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)))


def lines(name):
    with open(f"{tmp}/{name}") as f:
        return [json.loads(line) for line in f if line.strip()]


def nhs_valid(text):
    digits = (text or "").replace(" ", "")
    if len(digits) != 10 or not digits.isdigit():
        return False
    check_digit = 11 - sum(int(digits[i]) * (10 - i) for i in range(9)) % 11
    check_digit = 0 if check_digit == 11 else check_digit
    return check_digit != 10 and check_digit == int(digits[9])


def subject(value):
    return value["pid"]["nhs_number"] if "pid" in value else value["patient"]["nhsNumber"]


inputs = {f"hospital.events/{m['partition']}/{m['offset']}": m
          for m in lines("hospital.events.jsonl")}
valid = {s for s, m in inputs.items() if "value" in m}
check("input: 600 valid events and 2 rounds of malformed ones",
      len(valid) == 600 and len(inputs) > 600, f"{len(valid)} / {len(inputs)}")
for topic in ["commissioning.events", "research.events"]:
    got = lines(topic + ".jsonl")
    check(f"{topic}: receives nothing while the opt-out state is stale", not got, len(got))
ward = lines("ward.dashboard.jsonl")
ward_sources = [m.get("source") for m in ward]
check("ward.dashboard: every valid event, once",
      len(ward) == len(valid) and set(ward_sources) == valid, f"{len(ward)} records")

audit = [a["value"] for a in lines("pseudostream.audit.jsonl")
         if "value" in a and not a["schema"].endswith(".AuditPlan")]
by_source = {f"{a['source_topic']}/{a['source_partition']}/{a['source_offset']}": a
             for a in audit}
check("audit: one record per input event",
      len(audit) == len(inputs) and set(by_source) == set(inputs), f"{len(audit)}")
stale_wrong, other_wrong, ward_wrong = [], [], []
for src in valid:
    decisions = {d["name"]: d for d in by_source[src]["destinations"]}
    numbered = nhs_valid(subject(inputs[src]["value"]))
    for name in ["commissioning", "research"]:
        d = decisions[name]
        # The engine checks the subject's NHS number before the opt-out state,
        # so an event without a valid number says so; every other one says
        # the state is stale.
        want = "opt_out_stale" if numbered else "nhs_number_invalid"
        if d["decision"] != "WITHHELD" or d.get("reason") != want:
            (stale_wrong if numbered else other_wrong).append((src, name, d.get("reason")))
    if decisions["ward-dashboard"]["decision"] != "DISCLOSED":
        ward_wrong.append(src)
numbered = sum(nhs_valid(subject(inputs[s]["value"])) for s in valid)
check(f"audit: commissioning and research withheld with reason opt_out_stale "
      f"({numbered} events with a valid NHS number)",
      not stale_wrong and numbered > 500, stale_wrong[:3])
check("audit: events without a valid NHS number withheld as nhs_number_invalid",
      not other_wrong, other_wrong[:3])
check("audit: ward-dashboard disclosed every valid event", not ward_wrong, ward_wrong[:3])
check("audit: every record carries the stale state's date",
      all((a.get("opt_out_as_of") or "")[:19] == as_of[:19] for a in audit),
      (audit[0].get("opt_out_as_of"), as_of))

log = []
for line in open(f"{tmp}/run.log"):
    try:
        log.append(json.loads(line))
    except ValueError:
        pass
stale = [l for l in log if l.get("code") == "optout_stale"]
check("run log: an optout_stale line at level error",
      stale and all(l.get("level") == "error" for l in stale), stale[:1])
failed = results.count(False)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
