#!/usr/bin/env python3
"""Checks the topics of an end-to-end run (see test_end_to_end.sh).

Usage: check_end_to_end.py [--at-least-once] TMPDIR VALID_COUNT MALFORMED_COUNT

Prints one line per check and 'N passed, N failed'; exits non-zero on a failure.
--at-least-once relaxes "exactly once" to "at least once" (duplicates allowed:
the fault tests kill replicas, and the embedded broker re-delivers), keeping
every other check: nothing lost, nothing outside the rules, one pseudonym per
patient whichever replica handled it.
"""
import json
import os
import re
import sys
from collections import defaultdict

AT_LEAST_ONCE = "--at-least-once" in sys.argv
args = [a for a in sys.argv[1:] if not a.startswith("--")]
tmp, valid_count, malformed_count = args[0], int(args[1]), int(args[2])
SECONDARY = ["commissioning.events", "research.events"]
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + detail))


def lines(name):
    with open(os.path.join(tmp, name)) as f:
        return [json.loads(line) for line in f if line.strip()]


def nhs_valid(text):
    if text is None or len(text) != 10 or not text.isdigit():
        return False
    total = sum(int(text[i]) * (10 - i) for i in range(9))
    check_digit = 11 - total % 11
    check_digit = 0 if check_digit == 11 else check_digit
    return check_digit != 10 and check_digit == int(text[9])


manifest = lines("manifest.jsonl")
opted_out = {l.strip() for l in open(os.path.join(tmp, "opted_out.txt")) if l.strip()}
RESTRICTED = ["A50", "A51", "A52", "A53", "A54", "A55", "A56", "A57", "A58", "A59", "A60", "A63",
              "A64", "Z202", "Z224", "B20", "B21", "B22", "B23", "B24", "Z21", "R75", "Z206",
              "O987", "O04", "O05", "O06", "O07", "Z303", "Z31", "N97", "F64"]
raw = {t: lines(t + ".raw.jsonl") for t in
       ["hospital.events", "ward.dashboard", "pseudostream.dead-letter",
        "pseudostream.audit"] + SECONDARY}
decoded = {t: lines(t + ".jsonl") for t in
           ["hospital.events", "ward.dashboard", "pseudostream.dead-letter",
            "pseudostream.audit"] + SECONDARY}

# 1. Every generated identifier, searched in every byte of secondary-use topics.
needles = set()
for p in manifest:
    for field in ["nhs_number", "nhs_number_spaced", "invalid_nhs_number", "family", "given",
                  "postcode", "address_line", "phone", "landline", "email", "local_id",
                  "fhir_id", "next_of_kin_family", "next_of_kin_phone", "merged_nhs_number",
                  "merged_local_id", "birth_date"]:
        needles.add(p[field].encode())
for topic in SECONDARY:
    blobs = []
    for m in raw[topic]:
        blobs.append(bytes.fromhex(m["key_hex"]))
        blobs.append(bytes.fromhex(m["value_hex"]))
        for name, value in m["headers"]:
            blobs.append(name.encode())
            blobs.append(bytes.fromhex(value))
    joined = b"\x00".join(blobs)
    text = "\n".join(json.dumps(m["value"]) for m in decoded[topic] if "value" in m).encode()
    leaks = sorted(n.decode() for n in needles if n in joined or n in text)
    check(f"{topic}: no generated identifier in keys, values, headers or decoded values",
          not leaks, f"{len(leaks)} found, e.g. {leaks[:3]}")
    headers = {name for m in raw[topic] for name, _ in m["headers"]}
    check(f"{topic}: only pseudostream headers", all(h.startswith("pseudostream.") for h in headers),
          str(headers))

# 2. The run's log lines carry no identifier either.
with open(os.path.join(tmp, "run.log"), "rb") as f:
    log = f.read()
leaks = sorted(n.decode() for n in needles if n in log)
check("run log (debug level): no generated identifier", not leaks, str(leaks[:3]))
check("run log: the keyring secret never appears",
      b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" not in log)
check("run log: debug lines were written and searched", log.count(b'"level":"debug"') > 0)

# 3. Input accounting: every input is on the ward topic or the dead-letter topic.
inputs = decoded["hospital.events"]
good = [m for m in inputs if "value" in m]
bad = [m for m in inputs if "value" not in m]
check("input: valid and malformed counts as generated",
      len(good) == valid_count and len(bad) == malformed_count, f"{len(good)} / {len(bad)}")


def source_of(m):
    return m.get("source")  # consume parses it from pseudostream.lineage


ward_sources = {source_of(m) for m in decoded["ward.dashboard"]}
dlq = decoded["pseudostream.dead-letter"]
dlq_sources = {source_of(m) for m in dlq}
input_source = {f"hospital.events/{m['partition']}/{m['offset']}": m for m in inputs}
check("ward: every valid event, once", (AT_LEAST_ONCE or
                                        len(decoded["ward.dashboard"]) == valid_count) and
      ward_sources == {s for s, m in input_source.items() if "value" in m},
      f"{len(decoded['ward.dashboard'])} records")
check("dead letter: every malformed event, once",
      (AT_LEAST_ONCE or len(dlq) == malformed_count) and
      dlq_sources == {s for s, m in input_source.items() if "value" not in m}, f"{len(dlq)}")
reasons = defaultdict(int)
for m in dlq:
    reasons[m["headers"].get("pseudostream.reason")] += 1
check("dead letter: every record has a reason", None not in reasons and len(reasons) >= 3,
      str(dict(reasons)))


def subject_nhs(event):
    value = event["value"]
    return value["pid"]["nhs_number"] if "pid" in value else value["patient"]["nhsNumber"]


# 4. Ward keeps identifiers intact.
ward_ok = all(subject_nhs(m) == subject_nhs(input_source[source_of(m)])
              and m["key"] == input_source[source_of(m)]["key"]
              for m in decoded["ward.dashboard"])
check("ward: identifiers and input key intact", ward_ok)

def restricted(event):
    codes = [d["code"] for d in event["value"].get("dg1", [])]
    folded = [c.replace(".", "").upper() for c in codes]
    return any(c.startswith(p) for c in folded for p in RESTRICTED)


# 5. Secondary use: exactly the events with a valid NHS number, of a patient who
#    has not opted out, with no restricted-category code; one pseudonym per
#    patient per domain, different across domains and patients.
valid_events = {s: m for s, m in input_source.items() if "value" in m}
expect = {s for s, m in valid_events.items()
          if nhs_valid(subject_nhs(m)) and subject_nhs(m) not in opted_out and not restricted(m)}
optout_events = {s for s, m in valid_events.items() if subject_nhs(m) in opted_out}
restricted_events = {s for s, m in valid_events.items() if restricted(m)}
check("input: the scenario has opted-out patients and restricted codes",
      len(optout_events) > 20 and len(restricted_events) > 10,
      f"{len(optout_events)} / {len(restricted_events)}")
check("ward: every event of opted-out patients and restricted codes",
      optout_events | restricted_events <= ward_sources)
tokens = {}
for topic in SECONDARY:
    got = {source_of(m) for m in decoded[topic]}
    check(f"{topic}: no event of an opted-out patient or with a restricted code",
          not (got & (optout_events | restricted_events)))
    check(f"{topic}: every event with a valid NHS number, cleared, unrestricted; nothing else",
          got == expect and (AT_LEAST_ONCE or len(decoded[topic]) == len(expect)),
          f"{len(got)} vs {len(expect)} expected")
    per_patient = defaultdict(set)
    for m in decoded[topic]:
        per_patient[subject_nhs(input_source[source_of(m)])].add(m["key"])
        value = m["value"]
        field = value["pid"]["nhs_number"] if "pid" in value else value["patient"]["nhsNumber"]
        if field != m["key"]:
            per_patient["mismatch"].add(m["key"])
    check(f"{topic}: key is the subject's pseudonym field", "mismatch" not in per_patient)
    check(f"{topic}: one pseudonym per patient",
          all(len(v) == 1 for v in per_patient.values()))
    flat = {k: next(iter(v)) for k, v in per_patient.items()}
    check(f"{topic}: different patients, different pseudonyms",
          len(set(flat.values())) == len(flat))
    tokens[topic] = flat
common = set(tokens[SECONDARY[0]]) & set(tokens[SECONDARY[1]])
check("pseudonyms differ across domains",
      common and all(tokens[SECONDARY[0]][n] != tokens[SECONDARY[1]][n] for n in common))

# 6. Commissioning: birth year, postcode district; no names or addresses at all.
sample = next(m["value"] for m in decoded["commissioning.events"] if "pid" in m["value"])
check("commissioning: birth year only", isinstance(sample["pid"].get("date_of_birth"), int))
check("commissioning: no name, address lines or local ids in its schema",
      not {"name", "local_identifiers", "telecom"} & set(sample["pid"]))
districts = {a["postcode"] for m in decoded["commissioning.events"] if "pid" in m["value"]
             for a in m["value"]["pid"].get("address", [])}
check("commissioning: postcodes are districts", districts and
      all(" " not in d and len(d) <= 4 for d in districts), str(sorted(districts)[:5]))

# 7. Audit: exactly one record per input event, saying why.
audit_all = decoded["pseudostream.audit"]
audit = [a for a in audit_all if not a.get("schema", "").endswith(".AuditPlan")]
plans = {a["value"]["plan_id"]: a["value"] for a in audit_all
         if a.get("schema", "").endswith(".AuditPlan")}
audit_sources = [f"{a['value']['source_topic']}/{a['value']['source_partition']}/"
                 f"{a['value']['source_offset']}" for a in audit if "value" in a]
check("audit: exactly one record per input event",
      (AT_LEAST_ONCE or len(audit_sources) == len(inputs)) and
      set(audit_sources) == set(input_source),
      f"{len(audit_sources)} records for {len(inputs)} events")
by_source = {src: a["value"] for src, a in zip(audit_sources, audit)}


def decision(src, dest):
    for d in by_source[src]["destinations"]:
        if d["name"] == dest:
            return d["decision"], d.get("reason")
    return None, None


check("audit: opt-out withholding recorded with its reason",
      all(decision(s, "commissioning") == ("WITHHELD", "opt_out") for s in optout_events
          if nhs_valid(subject_nhs(valid_events[s]))))
check("audit: restricted codes recorded as predicate",
      all(decision(s, "research")[1] in ("predicate", "opt_out", "nhs_number_invalid")
          for s in restricted_events) and
      any(decision(s, "research")[1] == "predicate" for s in restricted_events))
check("audit: disclosures recorded", all(decision(s, "ward-dashboard")[0] == "DISCLOSED"
                                         for s in valid_events))
# 8. Lineage: one header on every derived record, naming its input record,
# the policy the audit names for that event, and the key its pseudonym used.
LINEAGE = re.compile(r"^source=([^;]+);policy=([0-9a-f]{64});key_id=([0-9]+)$")
lineage_bad = []
for topic in ["ward.dashboard"] + SECONDARY:
    for m in decoded[topic]:
        names = set(m["headers"]) - ({"pseudostream.lineage"} if topic in SECONDARY else set())
        match = LINEAGE.match(m["headers"].get("pseudostream.lineage", ""))
        if (topic in SECONDARY and names) or not match or match.group(1) != m.get("source") \
                or match.group(2) != by_source[match.group(1)]["policy_hash"] \
                or (topic in SECONDARY and not m["key"].startswith(match.group(3) + ".")):
            lineage_bad.append((topic, m["headers"]))
check("lineage: one pseudostream.lineage header (source, policy, key id) on every derived "
      "record, agreeing with the audit record and the pseudonym", not lineage_bad,
      str(lineage_bad[:2]))
check("audit: records carry no header (the policy is in the record)",
      all(not m["headers"] for m in raw["pseudostream.audit"]))

named = {d["plan"] for a in by_source.values() for d in a["destinations"]
         if d["decision"] == "DISCLOSED"}
check("audit: every disclosure names its plan, and every plan named is on the audit topic "
      "with its field lists (plan records: a few per replica, not one per event)",
      all((d["decision"] == "DISCLOSED") == bool(d.get("plan"))
          for a in by_source.values() for d in a["destinations"]) and
      named and named <= set(plans) and
      all(plans[p]["kept"] or plans[p]["pseudonymised"] for p in named) and
      len(audit_all) - len(audit) <= len(audit) // 100,
      f"{len(named)} named, {len(plans)} on the topic")
check("audit: a plan's lists name every leaf once (kept, pseudonymised, generalised, dropped)",
      all(len(set(p["kept"]) | set(p["pseudonymised"]) | {g.split(":")[0] for g in p["generalised"]}
              | set(p["dropped"])) == len(p["kept"]) + len(p["pseudonymised"]) +
          len(p["generalised"]) + len(p["dropped"]) for p in plans.values()))

check("audit: dead letters recorded with their reason",
      all(by_source[s]["dead_letter_reason"] for s, m in input_source.items() if "value" not in m))
audit_bytes = b"".join(bytes.fromhex(m["value_hex"]) + bytes.fromhex(m["key_hex"])
                       for m in lines("pseudostream.audit.raw.jsonl"))
leaks = sorted(n.decode() for n in needles if n in audit_bytes)
check("audit: no generated identifier in its bytes", not leaks, str(leaks[:3]))

failed = results.count(False)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
